package suites

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/scenario"
	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/internal/xconflict"
)

// bodySpec declares a 409 for each way a rejection may be worded: problem+json, text/plain, no
// content, text/plain or problem+json, and a 422 nobody declared a 409 for.
const bodySpec = `
openapi: 3.0.3
info: {title: bodies, version: "1"}
paths:
  /problem:
    post:
      operationId: problem
      responses:
        '201': {description: created}
        '409':
          description: conflict
          content:
            application/problem+json:
              schema: {type: object, required: [status], properties: {status: {type: integer}}}
  /text:
    post:
      operationId: text
      responses:
        '201': {description: created}
        '409':
          description: conflict
          content:
            text/plain:
              schema: {type: string}
  /empty:
    post:
      operationId: empty
      responses:
        '201': {description: created}
        '409': {description: conflict, no body}
  /either:
    post:
      operationId: either
      responses:
        '201': {description: created}
        '409':
          description: conflict
          content:
            text/plain:
              schema: {type: string}
            application/problem+json:
              schema: {type: object, required: [status], properties: {status: {type: integer}}}
  /ranged:
    post:
      operationId: ranged
      responses:
        '201': {description: created}
        '4XX':
          description: any refusal
          content:
            text/plain:
              schema: {type: string}
`

// rejectedBy is a duplicate-create on operation op whose two losers got status with header ct
// (none when empty) and body.
func rejectedBy(op string, status int, ct, body string) Evidence {
	call := plan.Call{Operation: op, Method: http.MethodPost, Path: "/" + op}
	header := http.Header{}
	if ct != "" {
		header.Set("Content-Type", ct)
	}
	url := "http://127.0.0.1:1/" + op
	sc := plan.Scenario{ID: "duplicate-create/" + op, Kind: xconflict.DuplicateCreate, Expect: []int{status}, Racers: []plan.Call{call}, Concurrency: 3}
	return Evidence{Scenario: sc, Result: scenario.Result{
		Scenario: sc.ID,
		Race: engine.Outcome{Exchanges: []engine.Exchange{
			exch("POST", url, `{}`, 201, nil, "", 0),
			exch("POST", url, `{}`, status, header, body, 10),
			exch("POST", url, `{}`, status, header.Clone(), body, 20),
		}},
		Attempts: 1, Overlapped: true,
	}}
}

// TestConflictBodyByDeclaration: a rejection is judged by what its operation declares for the
// status: a declared text/plain or bodiless 409 answered that way passes; one answered otherwise
// fails with a message naming what came and what is declared; an empty body never crashes.
func TestConflictBodyByDeclaration(t *testing.T) {
	doc, err := specload.LoadBytes(t.Context(), "bodies.yaml", []byte(bodySpec), specload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		ev     Evidence
		detail string // "" when the check holds, else the first racer's detail line
	}{
		{"problem answered problem", rejectedBy("problem", 409, "application/problem+json", `{"status":409}`), ""},
		{"text answered text", rejectedBy("text", 409, "text/plain; charset=utf-8", "409 Conflict: the name is taken\n"), ""},
		{"text answered empty text", rejectedBy("text", 409, "text/plain", ""), ""},
		{"no content answered empty", rejectedBy("empty", 409, "", ""), ""},
		{"no content answered text", rejectedBy("empty", 409, "text/plain", "taken"), ""},
		{"either answered text", rejectedBy("either", 409, "text/plain", "taken"), ""},
		{"either answered problem", rejectedBy("either", 409, "application/problem+json", `{"status":409}`), ""},
		{"range answered text", rejectedBy("ranged", 409, "text/plain", "taken"), ""},

		{"problem answered empty", rejectedBy("problem", 409, "", ""),
			`racer 1 (409): answered no body and no Content-Type; the spec declares application/problem+json for 409`},
		{"problem answered whitespace", rejectedBy("problem", 409, "", "\r\n"),
			`racer 1 (409): answered no body and no Content-Type; the spec declares application/problem+json for 409`},
		{"problem answered text", rejectedBy("problem", 409, "text/plain; charset=utf-8", "409 Conflict\n"),
			`racer 1 (409): answered Content-Type "text/plain; charset=utf-8"; the spec declares application/problem+json for 409`},
		{"problem answered empty problem", rejectedBy("problem", 409, "application/problem+json", ""),
			`racer 1 (409): answered an empty body with Content-Type "application/problem+json"; the spec declares a body of application/problem+json for 409`},
		{"problem answered a bad problem", rejectedBy("problem", 409, "application/problem+json", `{"status":400}`),
			`racer 1 (409): problem status member 400, want 409`},
		{"problem answered broken JSON", rejectedBy("problem", 409, "application/problem+json", `{"status":`),
			`racer 1 (409): failed to decode response body: unexpected EOF`},
		{"text answered empty", rejectedBy("text", 409, "", ""),
			`racer 1 (409): answered no body and no Content-Type; the spec declares text/plain for 409`},
		{"problem answered JSON without a type", rejectedBy("problem", 409, "", `{"status":409}`),
			`racer 1 (409): answered a body without Content-Type; the spec declares application/problem+json for 409`},
		{"text answered problem", rejectedBy("text", 409, "application/problem+json", `{"status":409}`),
			`racer 1 (409): answered Content-Type "application/problem+json"; the spec declares text/plain for 409`},
		{"either answered empty", rejectedBy("either", 409, "", ""),
			`racer 1 (409): answered no body and no Content-Type; the spec declares application/problem+json or text/plain for 409`},
		{"undeclared status", rejectedBy("text", 412, "text/plain", "stale"),
			`racer 1 (412): status 412 is not declared for text`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := RejectWithDeclaredBody(doc)
			ok, err := m.Match(c.ev)
			if err != nil {
				t.Fatalf("err %v", err)
			}
			msg := m.FailureMessage(c.ev)
			switch {
			case c.detail == "" && !ok:
				t.Errorf("failed, want it to hold:\n%s", msg)
			case c.detail != "" && ok:
				t.Errorf("held, want a failure with %q", c.detail)
			case c.detail != "":
				lines := strings.Split(msg, "\n")
				want := "conflict-body failed for " + c.ev.Scenario.ID + ": 2 of 2 rejections break the declared response"
				if lines[0] != want || len(lines) < 3 || !strings.HasPrefix(lines[1], "  "+c.detail) || !strings.HasPrefix(lines[2], "  racer 2 ") {
					t.Errorf("failure:\n%s\nwant the heading %q and the detail %q", msg, want, c.detail)
				}
			}
		})
	}
}

// TestConflictBodyNoOperation: a rejection of an operation the document lacks is a failure
// that names it, not a crash.
func TestConflictBodyNoOperation(t *testing.T) {
	doc, err := specload.LoadBytes(t.Context(), "bodies.yaml", []byte(bodySpec), specload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := RejectWithDeclaredBody(doc)
	ev := rejectedBy("missing", 409, "", "")
	if ok, err := m.Match(ev); ok || err != nil {
		t.Fatalf("ok %v, err %v; want a failure", ok, err)
	}
	if msg := m.FailureMessage(ev); !strings.Contains(msg, "operation missing is not in the document") {
		t.Errorf("failure:\n%s", msg)
	}
	if _, err := RejectWithDeclaredBody(nil).Match(ev); !errors.Is(err, ErrNoEvidence) {
		t.Errorf("no document: err %v, want ErrNoEvidence", err)
	}
}

package reports

import (
	"bytes"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/suites"
)

// update rewrites the golden files of testdata with the current output: go test ./reports -update.
var update = flag.Bool("update", false, "rewrite reports/testdata/*.golden with the current output")

// goldenRun is a fixed run with every status and verdict: a failed scenario (failed, passed and
// skipped checks, a racer with a transport error, evidence with characters Markdown, HTML and
// XML treat specially), an inconclusive one, a passing one with a binary body, one with no
// operation line, and one that stopped before any check. Its times are fixed ("normalised").
func goldenRun() Run {
	race := func(racer, status int, body string, firstByte Micros) Exchange {
		return Exchange{
			Phase: "race", Racer: racer, Target: "http://127.0.0.1:8080", Method: "POST", URL: "http://127.0.0.1:8080/items",
			RequestHeader: http.Header{"Content-Type": {"application/json"}, "Authorization": {"[redacted]"}},
			RequestBody:   `{"sku":"SKU-1"}`, Status: status, Proto: "HTTP/2.0",
			Header: http.Header{"Content-Type": {"application/json"}}, Body: body,
			WriteStart: 10, Release: 200, FirstByte: firstByte, Done: firstByte + 40,
		}
	}
	dupTable := "racer  status  start µs  release µs  first-byte µs  done µs  body\n" +
		"0      201     10        200         1400           1440     {\"id\":\"a1\",\"sku\":\"SKU-1\"}\n" +
		"1      201     10        200         1500           1540     {\"id\":\"b2\",\"sku\":\"SKU-1\"}\n" +
		"2      -       10        200         0              0        timeout: no response in 5s\n"
	transitionMsg := "conflict-body failed for transition/cancel|Order: racer 1's 409 body is not problem+json: <html>```</html> & more\n" +
		"racer  status  body\n1      409     <html>```</html>\n"
	return Run{
		Meta: Meta{
			Spec: "specs/inventory.yaml", Title: "Inventory | API <v1>",
			Targets: []string{"http://127.0.0.1:8080", "http://127.0.0.1:8081"},
			Started: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), Duration: 1234567,
		},
		Summary: Summary{Scenarios: 5, Checks: 32, Passed: 25, Failed: 3, Inconclusive: 1, Skipped: 3},
		Scenarios: []Scenario{
			{
				ID: "duplicate-create/createItem", Name: "duplicate-create createItem", Kind: "duplicate-create",
				Operation: "createItem", Method: "POST", Path: "/items", Line: 31, Verdict: suites.VerdictFail,
				Checks: passedBut(
					suites.CheckOutcome{ID: suites.CheckConflictStatus, Status: suites.Failed, Message: "conflict-status failed for duplicate-create/createItem: 1 of 2 losers got a status outside [409]: racer 1 got 201\n" + dupTable},
					suites.CheckOutcome{ID: suites.CheckSingleWinner, Status: suites.Failed, Message: "single-winner failed for duplicate-create/createItem: 2 racers won, want exactly 1\n" + dupTable},
					suites.CheckOutcome{ID: suites.CheckRetrySucceeds, Status: suites.Skipped, Message: "retry-succeeds: duplicate-create/createItem: not applicable: the plan has no retry"},
				),
				Strategy: "h2", Attempts: 1, Overlapped: true,
				Exchanges: []Exchange{
					{Phase: "probe", Target: "http://127.0.0.1:8080", Method: "POST", URL: "http://127.0.0.1:8080/items", Status: 201, WriteStart: 1, Release: 1, FirstByte: 90, Done: 95},
					race(0, 201, `{"id":"a1","sku":"SKU-1"}`, 1400),
					race(1, 201, `{"id":"b2","sku":"SKU-1"}`, 1500),
					{Phase: "race", Racer: 2, Target: "http://127.0.0.1:8081", Method: "POST", URL: "http://127.0.0.1:8081/items", Error: "timeout: no response in 5s", WriteStart: 10, Release: 200},
					{Phase: "list", Target: "http://127.0.0.1:8080", Method: "GET", URL: "http://127.0.0.1:8080/items?sku=SKU-1", Status: 200, Body: "{\"items\": [\n  {\"id\":\"a1\"},\n  {\"id\":\"b2\"}\n]}", WriteStart: 5, Release: 5, FirstByte: 80, Done: 90},
					{Phase: "cleanup", Target: "http://127.0.0.1:8080", Method: "DELETE", URL: "http://127.0.0.1:8080/items/a1", Status: 204, WriteStart: 1, Release: 1, FirstByte: 50, Done: 51},
				},
				Leftovers: []string{"http://127.0.0.1:8080/items/b2"},
			},
			{
				ID: "stale-update/patchItem", Name: "stale-update patchItem", Kind: "stale-update",
				Operation: "patchItem", Method: "PATCH", Path: "/items/{id}", Line: 256, Verdict: suites.VerdictInconclusive,
				Checks: passedBut(
					suites.CheckOutcome{ID: suites.CheckConflictStatus, Status: suites.Inconclusive, Message: "conflict-status inconclusive for stale-update/patchItem: the racers never overlapped in 3 attempts (sync barrier)"},
				),
				Strategy: "barrier", Attempts: 3, Overlapped: false,
				Exchanges: []Exchange{
					{Phase: "before", Target: "http://127.0.0.1:8080", Method: "GET", URL: "http://127.0.0.1:8080/items/a1", Status: 200, Header: http.Header{"Etag": {`"v1"`}}, Body: `{"version":1}`, WriteStart: 2, Release: 2, FirstByte: 60, Done: 61},
					{Phase: "race", Racer: 0, Target: "http://127.0.0.1:8080", Method: "PATCH", URL: "http://127.0.0.1:8080/items/a1", Status: 200, WriteStart: 3, Release: 3, FirstByte: 100, Done: 120},
					{Phase: "race", Racer: 1, Target: "http://127.0.0.1:8080", Method: "PATCH", URL: "http://127.0.0.1:8080/items/a1", Status: 409, WriteStart: 130, Release: 130, FirstByte: 220, Done: 230},
				},
			},
			{
				ID: "idempotency-key/createOrder", Name: "idempotency-key createOrder", Kind: "idempotency-key",
				Operation: "createOrder", Method: "POST", Path: "/orders", Line: 374, Verdict: suites.VerdictPass,
				Checks: passedBut(
					suites.CheckOutcome{ID: suites.CheckRetrySucceeds, Status: suites.Skipped, Message: "retry-succeeds: idempotency-key/createOrder: not applicable: the plan has no retry"},
					suites.CheckOutcome{ID: suites.CheckLinearizable, Status: suites.Skipped, Message: "linearizable: idempotency-key/createOrder: no model for kind idempotency-key"},
				),
				Strategy: "lastbyte", Attempts: 1, Overlapped: true,
				Exchanges: []Exchange{
					{Phase: "race", Racer: 0, Target: "http://127.0.0.1:8080", Method: "POST", URL: "http://127.0.0.1:8080/orders", Status: 201, Body: "AAEC/w==", BodyEncoding: "base64", Truncated: true, WriteStart: 4, Release: 50, FirstByte: 300, Done: 310},
				},
			},
			{
				ID: "transition/cancel|Order", Name: "transition cancel|Order", Kind: "transition",
				Operation: "cancel|Order", Method: "POST", Path: "/orders/{id}/cancel", Verdict: suites.VerdictFail,
				Checks:   passedBut(suites.CheckOutcome{ID: suites.CheckConflictBody, Status: suites.Failed, Message: transitionMsg}),
				Strategy: "h2", Attempts: 1, Overlapped: true,
				Exchanges: []Exchange{
					{Phase: "race", Racer: 1, Target: "http://127.0.0.1:8080", Method: "POST", URL: "http://127.0.0.1:8080/orders/o1/cancel", Status: 409, Header: http.Header{"Content-Type": {"text/html"}}, Body: "<html>```</html>", WriteStart: 7, Release: 90, FirstByte: 400, Done: 410},
				},
			},
			{
				ID: "capacity/createOrder", Name: "capacity createOrder", Kind: "capacity",
				Operation: "createOrder", Method: "POST", Path: "/orders", Line: 374, Verdict: suites.VerdictInconclusive,
				Checks: []suites.CheckOutcome{}, Exchanges: []Exchange{},
				Error: "setup: POST /items answered 503",
			},
		},
	}
}

// passedBut is every check of suites.CheckIDs, in run order, passed but for those given.
func passedBut(others ...suites.CheckOutcome) []suites.CheckOutcome {
	out := make([]suites.CheckOutcome, len(suites.CheckIDs))
	for i, id := range suites.CheckIDs {
		out[i] = suites.CheckOutcome{ID: id, Status: suites.Passed}
		if j := slices.IndexFunc(others, func(c suites.CheckOutcome) bool { return c.ID == id }); j >= 0 {
			out[i] = others[j]
		}
	}
	return out
}

// writeFile writes run with write into a fresh dir and returns the bytes of the file name.
func writeFile(t *testing.T, write func(string, Run) error, name string, run Run) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := write(dir, run); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// golden compares got with testdata/name.golden, or rewrites the file under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reports -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (run go test ./reports -update if the change is intended)\n--- got\n%s", name, path, got)
	}
}

// TestGolden writes the fixed run with each writer and compares the files with the golden ones.
func TestGolden(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		write func(string, Run) error
	}{
		{"junit.xml", JUnitFile, WriteJUnit},
		{"report.json", JSONFile, WriteJSON},
		{"summary.md", MarkdownFile, WriteMarkdown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := writeFile(t, tc.write, tc.file, goldenRun())
			golden(t, tc.name, got)
			// The same run written again gives the same bytes: nothing depends on the clock
			// or on map order.
			if again := writeFile(t, tc.write, tc.file, goldenRun()); !bytes.Equal(got, again) {
				t.Errorf("%s: two writes of one run differ", tc.name)
			}
		})
	}
}

// TestGoldenJSONRoundTrip checks that report.json reads back as the run written, the
// operation's line included.
func TestGoldenJSONRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if err := WriteJSON(dir, goldenRun()); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSON(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, goldenRun()) {
		t.Errorf("report.json read back differs:\n%+v\nwant\n%+v", got, goldenRun())
	}
	if got.Scenarios[0].Line != 31 || got.Scenarios[3].Line != 0 {
		t.Errorf("lines %d, %d, want 31, 0", got.Scenarios[0].Line, got.Scenarios[3].Line)
	}
}

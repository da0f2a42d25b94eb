package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// planScenario is a scenario of `plan --json` as the profile tests read it.
type planScenario struct {
	ID     string
	Expect []int
	Notes  []string
}

// planJSON runs `plan --spec ref --json args…` in-process and returns its scenarios by id.
func planJSON(t *testing.T, ref string, args ...string) map[string]planScenario {
	t.Helper()
	var out, errb bytes.Buffer
	if code := executeIO(t.Context(), append([]string{"plan", "--spec", ref, "--json"}, args...), &out, &errb); code != exitOK {
		t.Fatalf("plan %v: exit %d: %s", args, code, errb.String())
	}
	var p struct{ Scenarios []planScenario }
	if err := json.Unmarshal(out.Bytes(), &p); err != nil {
		t.Fatalf("plan %v --json: %v\n%s", args, err, out.String())
	}
	m := map[string]planScenario{}
	for _, s := range p.Scenarios {
		m[s.ID] = s
	}
	return m
}

// hasNote reports whether s has a note containing text.
func hasNote(s planScenario, text string) bool {
	return slices.ContainsFunc(s.Notes, func(n string) bool { return strings.Contains(n, text) })
}

func TestPlanProfileFlags(t *testing.T) {
	ref := referenceSpecFile(t, t.TempDir())
	tests := []struct {
		name       string
		args       []string
		id         string
		expect     []int
		note       string
		probeNotes string // a note of the idempotency-key scenario, when not empty
	}{
		{"default is rfc9110", nil, "transition/shipOrder", []int{409},
			"expect [409]: profile rfc9110, transition (RFC 9110 §15.5.10", "must get [422]: profile rfc9110"},
		{"google", []string{"--profile", "google"}, "transition/shipOrder", []int{400},
			"expect [400]: profile google, transition (AIP-216 FAILED_PRECONDITION)", "must get [400 422]: profile google"},
		{"zalando probe", []string{"--profile", "zalando"}, "transition/shipOrder", []int{409},
			"profile zalando, transition", "must get [400]: profile zalando"},
		{"expect over profile", []string{"--profile", "google", "--expect", "transition=422"}, "transition/shipOrder", []int{422},
			"expect [422]: --expect transition=422, over profile google's [400]", ""},
		{"later expect wins", []string{"--expect", "transition=400", "--expect", "transition=409,422"}, "transition/shipOrder", []int{409, 422},
			"--expect transition=409,422", ""},
		{"x-conflict over expect", []string{"--expect", "transition=422"}, "transition/cancelOrder", []int{409},
			"expect [409]: x-conflict's, which wins over --expect transition=422", ""},
		{"expect reaches the probe", []string{"--expect", "idempotency-key=409"}, "idempotency-key/createOrder", []int{409},
			"", "must get [409]: --expect idempotency-key=409"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := planJSON(t, ref, tt.args...)
			s, ok := got[tt.id]
			if !ok {
				t.Fatalf("no scenario %s", tt.id)
			}
			if !reflect.DeepEqual(s.Expect, tt.expect) {
				t.Errorf("%s expect %v; want %v", tt.id, s.Expect, tt.expect)
			}
			if tt.note != "" && !hasNote(s, tt.note) {
				t.Errorf("%s notes %q; want one with %q", tt.id, s.Notes, tt.note)
			}
			if idem := got["idempotency-key/createOrder"]; tt.probeNotes != "" && !hasNote(idem, tt.probeNotes) {
				t.Errorf("idempotency-key notes %q; want one with %q", idem.Notes, tt.probeNotes)
			}
		})
	}
	// The default plans exactly as --profile rfc9110.
	if a, b := planJSON(t, ref), planJSON(t, ref, "--profile", "rfc9110"); !reflect.DeepEqual(a, b) {
		t.Error("plan without --profile differs from --profile rfc9110")
	}
}

func TestPlanProfileFlagErrors(t *testing.T) {
	ref := referenceSpecFile(t, t.TempDir())
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown profile", []string{"--profile", "aws"}, []string{"--profile", `"aws"`, "rfc9110, kubernetes, couchdb, google, zalando"}},
		{"no equals", []string{"--expect", "transition"}, []string{"--expect", "KIND=CODES"}},
		{"unknown kind", []string{"--expect", "dupe=409"}, []string{"--expect", `unknown kind "dupe"`, "duplicate-create, stale-update"}},
		{"out of range", []string{"--expect", "capacity=700"}, []string{"--expect", "700 is not within 100..599"}},
		{"not a number", []string{"--expect", "capacity=409,x"}, []string{"--expect", `"x" is not a status code`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := executeIO(t.Context(), append([]string{"plan", "--spec", ref}, tt.args...), &out, &errb)
			if code != exitBadInput || out.Len() != 0 {
				t.Fatalf("exit %d, stdout %q; want 2 and nothing planned", code, out.String())
			}
			msg := errb.String()
			if strings.Count(msg, "\n") != 1 {
				t.Errorf("stderr %q; want one line", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr %q; want it to say %q", msg, w)
				}
			}
		})
	}
	// The same through the built binary, as a user runs it.
	r := runCLI(t, "", "plan", "--spec", ref, "--profile", "GOOGLE", "--expect", "stale-update=")
	if r.code != exitBadInput || !strings.Contains(r.stderr, "--expect") || !strings.Contains(r.stderr, "empty status code") {
		t.Errorf("exit %d, stderr %q; want 2 naming --expect", r.code, r.stderr)
	}
}

func TestPlanHelpListsProfiles(t *testing.T) {
	var out, errb bytes.Buffer
	if code := executeIO(t.Context(), []string{"plan", "--help"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"--profile", "rfc9110, kubernetes, couchdb, google, zalando", `(default "rfc9110")`, "--expect", "transition=400,409", "repeatable"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan --help lacks %q:\n%s", want, out.String())
		}
	}
}

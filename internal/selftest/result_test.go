package selftest

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/reference-server/fault"
	"github.com/conflictcheck/conflictcheck/reports"
	"github.com/conflictcheck/conflictcheck/suites"
)

// scenario is a report scenario whose checks have the given statuses; unnamed checks passed.
func scenario(statuses map[string]suites.Status) reports.Scenario {
	var s reports.Scenario
	for _, id := range suites.CheckIDs {
		st, ok := statuses[id]
		if !ok {
			st = suites.Passed
		}
		s.Checks = append(s.Checks, suites.CheckOutcome{ID: id, Status: st})
	}
	return s
}

func mustFault(t *testing.T, name fault.Name) fault.Fault {
	t.Helper()
	f, err := fault.Parse(string(name))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestEvaluate(t *testing.T) {
	const (
		F = suites.Failed
		I = suites.Inconclusive
		S = suites.Skipped
	)
	tests := []struct {
		name       string
		fault      fault.Name
		scenarios  []map[string]suites.Status
		wantFailed []string
		wantCaught bool
		// wantChecks are aggregated statuses to assert (others are not asserted).
		wantChecks map[string]suites.Status
	}{
		{
			name: "expected check failed in one scenario of several", fault: fault.Race,
			scenarios:  []map[string]suites.Status{{}, {"single-winner": F, "conflict-status": F}, {}},
			wantFailed: []string{"conflict-status", "single-winner"}, wantCaught: true,
			wantChecks: map[string]suites.Status{"single-winner": F, "retry-succeeds": suites.Passed},
		},
		{
			name: "a later expected check is enough", fault: fault.Race,
			scenarios:  []map[string]suites.Status{{"linearizable": F}},
			wantFailed: []string{"linearizable"}, wantCaught: true,
		},
		{
			name: "only unexpected checks failed: not caught", fault: fault.BadBody,
			scenarios:  []map[string]suites.Status{{"state-intact": F, "no-server-error": F}},
			wantFailed: []string{"no-server-error", "state-intact"}, wantCaught: false,
		},
		{
			name: "inconclusive is not failed", fault: fault.BadBody,
			scenarios:  []map[string]suites.Status{{"conflict-body": I}, {"conflict-body": I}},
			wantFailed: []string{}, wantCaught: false,
			wantChecks: map[string]suites.Status{"conflict-body": I},
		},
		{
			name: "failed outweighs inconclusive and skipped elsewhere", fault: fault.StaleETag,
			scenarios:  []map[string]suites.Status{{"retry-succeeds": I}, {"retry-succeeds": S}, {"retry-succeeds": F}},
			wantFailed: []string{"retry-succeeds"}, wantCaught: true,
			wantChecks: map[string]suites.Status{"retry-succeeds": F},
		},
		{
			name: "skipped everywhere stays skipped", fault: fault.StaleETag,
			scenarios:  []map[string]suites.Status{{"conflict-body": S}, {"conflict-body": S}},
			wantFailed: []string{}, wantCaught: false,
			wantChecks: map[string]suites.Status{"conflict-body": S},
		},
		{
			name: "no scenario at all", fault: fault.Race,
			wantFailed: []string{}, wantCaught: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var run reports.Run
			for _, s := range tt.scenarios {
				run.Scenarios = append(run.Scenarios, scenario(s))
			}
			row := evaluate(mustFault(t, tt.fault), 1, run, 0)
			if failed := row.Failed(); failed == nil || !slices.Equal(failed, tt.wantFailed) {
				t.Errorf("Failed = %#v; want %#v", failed, tt.wantFailed)
			}
			if got := row.Caught(); got != tt.wantCaught {
				t.Errorf("Caught() = %v; want %v", got, tt.wantCaught)
			}
			for id, want := range tt.wantChecks {
				if got := row.Checks[id]; got != want {
					t.Errorf("Checks[%s] = %q; want %q", id, got, want)
				}
			}
		})
	}
}

func TestPassed(t *testing.T) {
	race := Row{Fault: fault.All[0], ExitCode: 1, Checks: map[string]suites.Status{"single-winner": suites.Failed}}
	uncaught := Row{Fault: fault.All[0], ExitCode: 1, Checks: map[string]suites.Status{"no-server-error": suites.Failed}}
	passedFault := Row{Fault: fault.All[0], ExitCode: 0}
	skipped := Row{Fault: mustFault(t, fault.PerReplicaLock), Skip: "needs --store postgres"}
	cleanPass := Row{ExitCode: 0}
	cleanFail := Row{ExitCode: 1, Checks: map[string]suites.Status{"single-winner": suites.Failed}}
	tests := []struct {
		name  string
		res   Result
		want  bool
		clean string
	}{
		{"clean passes, every fault caught", Result{Clean: cleanPass, Faults: []Row{race, race}}, true, "pass"},
		{"skipped faults do not count", Result{Clean: cleanPass, Faults: []Row{race, skipped}}, true, "pass"},
		{"a fault not caught fails (exit 1)", Result{Clean: cleanPass, Faults: []Row{race, uncaught}}, false, "pass"},
		{"a fault whose run passed fails (exit 1)", Result{Clean: cleanPass, Faults: []Row{passedFault}}, false, "pass"},
		{"a failing clean run fails (exit 1)", Result{Clean: cleanFail, Faults: []Row{race}}, false, "fail"},
		{"a clean run that exits 1 fails even without failed checks", Result{Clean: Row{ExitCode: 1}, Faults: []Row{race}}, false, "fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.res.Passed(); got != tt.want {
				t.Errorf("Passed() = %v; want %v", got, tt.want)
			}
			if got := tt.res.JSON().Clean; got != tt.clean {
				t.Errorf("JSON().Clean = %q; want %q", got, tt.clean)
			}
		})
	}
}

// sampleResult has a clean run, a caught fault, an uncaught one and a skipped one.
func sampleResult(t *testing.T) *Result {
	t.Helper()
	clean := evaluate(fault.Fault{}, 0, reports.Run{Scenarios: []reports.Scenario{scenario(map[string]suites.Status{"conflict-body": suites.Skipped})}}, 0)
	race := evaluate(mustFault(t, fault.Race), 1, reports.Run{Scenarios: []reports.Scenario{
		scenario(map[string]suites.Status{"single-winner": suites.Failed, "conflict-status": suites.Failed}),
		scenario(map[string]suites.Status{"linearizable": suites.Inconclusive}),
	}}, 0)
	badBody := evaluate(mustFault(t, fault.BadBody), 1, reports.Run{Scenarios: []reports.Scenario{
		scenario(map[string]suites.Status{"no-server-error": suites.Failed, "conflict-body": suites.Inconclusive}),
	}}, 0)
	return &Result{Store: StoreMemory, Clean: clean, Faults: []Row{
		race, badBody, {Fault: mustFault(t, fault.PerReplicaLock), Skip: "needs --store postgres"},
	}}
}

func TestWriteMatrix(t *testing.T) {
	var b bytes.Buffer
	if err := sampleResult(t).WriteMatrix(&b); err != nil {
		t.Fatal(err)
	}
	want := `run                1    2    3    4    5    6    7    8   caught
clean              .    .    .    .    -    .    .    .   pass
race               .    X   [X]   .    .   [.]   .   [?]  yes
bad-body           .    .    .    X   [?]   .    .    .   NO
per-replica-lock  skipped: needs --store postgres

checks: 1 sequential-conflict, 2 conflict-status, 3 single-winner, 4 no-server-error, 5 conflict-body, 6 state-intact, 7 retry-succeeds, 8 linearizable
cells:  X failed  ? inconclusive  . passed  - not run;  [ ] marks the checks that must catch the fault
caught: yes when one of the fault's bracketed checks failed (the clean run says pass or FAIL)
selftest FAILED (memory store): clean run pass, 1 of 2 faults caught, 1 skipped
`
	if got := b.String(); got != want {
		t.Errorf("matrix:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := sampleResult(t).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	want := `{"clean":"pass","faults":{` +
		`"bad-body":{"expected":["conflict-body"],"failed":["no-server-error"],"caught":false},` +
		`"race":{"expected":["single-winner","state-intact","linearizable"],"failed":["conflict-status","single-winner"],"caught":true}},` +
		`"skipped":{"per-replica-lock":"needs --store postgres"}}` + "\n"
	if got := b.String(); got != want {
		t.Errorf("JSON:\n%s\nwant:\n%s", got, want)
	}

	// Nothing failed and nothing skipped: [] and {}, never null.
	empty := &Result{Clean: Row{}, Faults: []Row{{Fault: mustFault(t, fault.BadBody)}}}
	b.Reset()
	if err := empty.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	want = `{"clean":"pass","faults":{"bad-body":{"expected":["conflict-body"],"failed":[],"caught":false}},"skipped":{}}` + "\n"
	if got := b.String(); got != want {
		t.Errorf("JSON:\n%s\nwant:\n%s", got, want)
	}
}

func TestProgressLine(t *testing.T) {
	res := sampleResult(t)
	tests := []struct {
		row  Row
		want string
	}{
		{res.Clean, "selftest: clean            pass (exit 0, 0s)"},
		{Row{ExitCode: 1, Checks: map[string]suites.Status{"single-winner": suites.Failed}}, "selftest: clean            FAIL: failed single-winner (exit 1, 0s)"},
		{res.Faults[0], "selftest: race             caught: failed conflict-status, single-winner (exit 1, 0s)"},
		{res.Faults[1], "selftest: bad-body         NOT CAUGHT: expected conflict-body to fail, failed no-server-error (exit 1, 0s)"},
		{res.Faults[2], "selftest: per-replica-lock skipped: needs --store postgres"},
	}
	for _, tt := range tests {
		if got := tt.row.progressLine(); got != tt.want {
			t.Errorf("progressLine() =\n%q; want\n%q", got, tt.want)
		}
		if strings.Contains(tt.row.progressLine(), "\n") {
			t.Errorf("progress line %q spans lines", tt.row.progressLine())
		}
	}
}

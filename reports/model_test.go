package reports

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/scenario"
	"github.com/conflictcheck/conflictcheck/suites"
)

// x is an exchange told apart by its URL, which names the phase it is meant for.
func x(url string, status int) engine.Exchange {
	return engine.Exchange{
		Target:  "http://127.0.0.1:1",
		Request: engine.Captured{Method: "POST", URL: url, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"sku":"a"}`)},
		Status:  status, Proto: "HTTP/1.1",
		Header:     http.Header{"Content-Type": {"application/problem+json"}},
		Body:       []byte(`{"status":409}`),
		WriteStart: time.Millisecond, Release: 2 * time.Millisecond, FirstByte: 3 * time.Millisecond, Done: 4 * time.Millisecond,
	}
}

func xp(url string, status int) *engine.Exchange {
	e := x(url, status)
	return &e
}

// fullResult has every step of a scenario set, each exchange's URL naming its phase.
func fullResult(id string) scenario.Result {
	return scenario.Result{
		Scenario:   id,
		ProbeSetup: []engine.Exchange{x("/probe-setup/1", 201), x("/probe-setup/2", 200)},
		Probe:      []engine.Exchange{x("/probe/1", 201), x("/probe/2", 409)},
		Setup:      []engine.Exchange{x("/setup/1", 201)},
		Before:     xp("/before", 200),
		Race: engine.Outcome{
			Strategy:  engine.Strategy("lastbyte"),
			Start:     time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
			Exchanges: []engine.Exchange{x("/race/0", 201), x("/race/1", 409), x("/race/2", 409)},
		},
		Attempts:       2,
		Overlapped:     true,
		After:          xp("/after", 200),
		InvariantAfter: xp("/invariant", 200),
		Resolve:        xp("/resolve", 204),
		Retry:          xp("/retry", 201),
		Final:          xp("/final", 200),
		Cleanup:        []engine.Exchange{x("/cleanup/1", 204), x("/cleanup/2", 404)},
		Leftovers:      []string{"http://127.0.0.1:1/items/7"},
		Error:          "",
	}
}

// outcomes are three scenarios covering every check status and verdict.
func outcomes() []suites.Outcome {
	passed := suites.Outcome{
		Scenario: "duplicate-create/createItem", Name: "duplicate-create createItem", Kind: "duplicate-create", Operation: "createItem",
		Verdict: suites.VerdictPass,
		Checks: []suites.CheckOutcome{
			{ID: suites.CheckSequentialConflict, Status: suites.Passed},
			{ID: suites.CheckSingleWinner, Status: suites.Passed},
			{ID: suites.CheckRetrySucceeds, Status: suites.Skipped, Message: "not applicable: no resolve"},
		},
		Result: fullResult("duplicate-create/createItem"),
	}
	failed := suites.Outcome{
		Scenario: "stale-update/patchItem", Name: "stale-update patchItem", Kind: "stale-update", Operation: "patchItem",
		Verdict: suites.VerdictFail,
		Checks: []suites.CheckOutcome{
			{ID: suites.CheckNoServerError, Status: suites.Failed, Message: "a 500"},
			{ID: suites.CheckConflictStatus, Status: suites.Failed, Message: "a 500 again"},
			{ID: suites.CheckConflictBody, Status: suites.Inconclusive, Message: "no rejection"},
			{ID: suites.CheckLinearizable, Status: suites.Passed},
		},
		Result: scenario.Result{Scenario: "stale-update/patchItem", Setup: []engine.Exchange{x("/setup", 201)}, Race: engine.Outcome{Exchanges: []engine.Exchange{x("/race", 500)}}, Attempts: 1},
	}
	stopped := suites.Outcome{
		Scenario: "transition/shipOrder", Name: "transition shipOrder", Kind: "transition", Operation: "shipOrder",
		Verdict: suites.VerdictInconclusive,
		Checks:  []suites.CheckOutcome{{ID: suites.CheckSingleWinner, Status: suites.Inconclusive, Message: "no race"}},
		Result:  scenario.Result{Scenario: "transition/shipOrder", Error: "setup createItem answered 400"},
	}
	return []suites.Outcome{passed, failed, stopped}
}

func phases(s Scenario) []string {
	var out []string
	for _, e := range s.Exchanges {
		out = append(out, e.Phase)
	}
	return out
}

func TestFromOutcomes(t *testing.T) {
	outs := outcomes()
	run := FromOutcomes(testMeta, outs)

	want := Summary{Scenarios: 3, Checks: 8, Passed: 3, Failed: 2, Inconclusive: 2, Skipped: 1}
	if run.Summary != want {
		t.Errorf("summary %+v; want %+v", run.Summary, want)
	}
	if !run.Failed() {
		t.Error("Failed() = false for a run with failed checks")
	}
	if len(run.Scenarios) != len(outs) {
		t.Fatalf("%d scenarios; want %d", len(run.Scenarios), len(outs))
	}
	for i, o := range outs {
		s := run.Scenarios[i]
		if s.ID != o.Scenario || s.Name != o.Name || s.Kind != o.Kind || s.Operation != o.Operation || s.Verdict != o.Verdict {
			t.Errorf("scenario %d = {%s %s %s %s %s}; want the outcome's {%s %s %s %s %s}", i,
				s.ID, s.Name, s.Kind, s.Operation, s.Verdict, o.Scenario, o.Name, o.Kind, o.Operation, o.Verdict)
		}
		if !reflect.DeepEqual(s.Checks, o.Checks) {
			t.Errorf("scenario %s checks %+v; want %+v", s.Name, s.Checks, o.Checks)
		}
		if !slices.Equal(s.Leftovers, o.Result.Leftovers) || s.Error != o.Result.Error {
			t.Errorf("scenario %s leftovers %v error %q; want %v %q", s.Name, s.Leftovers, s.Error, o.Result.Leftovers, o.Result.Error)
		}
	}

	// Every step of the full scenario, in the order the scenario sent them.
	wantPhases := []string{
		"probe-setup", "probe-setup", "probe", "probe", "setup", "before", "race", "race", "race",
		"after", "invariant", "resolve", "retry", "final", "cleanup", "cleanup",
	}
	full := run.Scenarios[0]
	if got := phases(full); !slices.Equal(got, wantPhases) {
		t.Errorf("phases %v; want %v", got, wantPhases)
	}
	for _, e := range full.Exchanges {
		// The URL names the phase the exchange was built for: a phase must carry its own
		// exchange, not a neighbour's.
		if !strings.HasPrefix(e.URL, "/"+e.Phase) {
			t.Errorf("phase %s carries the exchange of %s", e.Phase, e.URL)
		}
	}
	if got := full.Exchanges[8]; got.URL != "/race/2" || got.Status != 409 || got.Done != 4000 {
		t.Errorf("last racer %+v; want /race/2 with its status and times", got)
	}
	if got := phases(run.Scenarios[1]); !slices.Equal(got, []string{"setup", "race"}) {
		t.Errorf("phases of a partial scenario %v; want [setup race] (absent steps add nothing)", got)
	}
	if got := run.Scenarios[2]; len(got.Exchanges) != 0 || got.Error != "setup createItem answered 400" {
		t.Errorf("stopped scenario: %d exchanges, error %q; want none and the result's error", len(got.Exchanges), got.Error)
	}
}

func TestRunFailed(t *testing.T) {
	tests := []struct {
		name string
		sum  Summary
		want bool
	}{
		{"every check passed or skipped", Summary{Scenarios: 1, Checks: 3, Passed: 2, Skipped: 1}, false},
		{"a check failed", Summary{Scenarios: 1, Checks: 2, Passed: 1, Failed: 1}, true},
		{"a check was inconclusive", Summary{Scenarios: 1, Checks: 2, Passed: 1, Inconclusive: 1}, true},
		{"empty", Summary{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Run{Summary: tt.sum}).Failed(); got != tt.want {
				t.Errorf("Failed() = %v; want %v", got, tt.want)
			}
		})
	}
}

// ginkgoReport is a Ginkgo report of outcomes as the suite builds it: each scenario's entry on
// one of its specs, specs listed out of start order, with unrelated entries and specs between.
func ginkgoReport(outs []suites.Outcome) types.Report {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var specs types.SpecReports
	for i, o := range outs {
		specs = append(specs,
			types.SpecReport{
				ContainerHierarchyTexts: []string{suites.SuiteDescription, o.Name},
				LeafNodeText:            suites.CheckSingleWinner,
				StartTime:               t0.Add(time.Duration(i) * time.Second),
				State:                   types.SpecStatePassed,
			},
			types.SpecReport{
				ContainerHierarchyTexts: []string{suites.SuiteDescription, o.Name},
				LeafNodeText:            suites.CheckLinearizable,
				StartTime:               t0.Add(time.Duration(i)*time.Second + time.Millisecond),
				State:                   types.SpecStatePassed,
				ReportEntries: types.ReportEntries{
					{Name: "something else", Value: types.WrapEntryValue(map[string]int{"n": 1})},
					{Name: suites.OutcomeEntry, Value: types.WrapEntryValue(o)},
				},
			})
	}
	// Ginkgo lists specs in no promised order; FromGinkgo orders them by start time.
	slices.Reverse(specs)
	return types.Report{SuiteDescription: suites.SuiteDescription, SuiteSucceeded: false, SpecReports: specs}
}

// testMeta is the Meta of the test runs; its times are set so FromGinkgo keeps them.
var testMeta = Meta{Spec: "openapi.yaml", Targets: []string{"http://127.0.0.1:1"}, Started: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), Duration: 1500}

func TestFromGinkgo(t *testing.T) {
	outs := outcomes()
	want := FromOutcomes(testMeta, outs)
	inProcess := ginkgoReport(outs)

	// A report read back from JSON (a file, or a parallel run's report) holds the entries as
	// JSON only: FromGinkgo must decode them into the same Run.
	b, err := json.Marshal(inProcess)
	if err != nil {
		t.Fatal(err)
	}
	var decoded types.Report
	if err := json.Unmarshal(b, &decoded); err != nil {
		t.Fatal(err)
	}
	for _, s := range decoded.SpecReports {
		for _, e := range s.ReportEntries {
			if e.Name == suites.OutcomeEntry {
				if _, ok := e.Value.GetRawValue().(suites.Outcome); ok || e.Value.AsJSON == "" {
					t.Fatalf("the decoded entry still holds the Outcome (AsJSON %q): the JSON path is not tested", e.Value.AsJSON)
				}
			}
		}
	}

	for name, r := range map[string]types.Report{"in process": inProcess, "through JSON": decoded} {
		t.Run(name, func(t *testing.T) {
			got, err := FromGinkgo(r, testMeta)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				gb, _ := json.MarshalIndent(got, "", " ")
				wb, _ := json.MarshalIndent(want, "", " ")
				t.Errorf("FromGinkgo:\n%s\nwant FromOutcomes:\n%s", gb, wb)
			}
		})
	}
}

func TestFromGinkgoCorruptEntry(t *testing.T) {
	r := types.Report{SpecReports: types.SpecReports{{
		ContainerHierarchyTexts: []string{suites.SuiteDescription, "duplicate-create createItem"},
		LeafNodeText:            suites.CheckLinearizable,
		ReportEntries: types.ReportEntries{{
			Name:  suites.OutcomeEntry,
			Value: types.ReportEntryValue{AsJSON: `{"checks": "not a list"}`},
		}},
	}}}
	_, err := FromGinkgo(r, testMeta)
	if err == nil {
		t.Fatal("FromGinkgo of an undecodable outcome entry: no error")
	}
	for _, want := range []string{"duplicate-create createItem linearizable", suites.OutcomeEntry} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestFromGinkgoNoOutcomes(t *testing.T) {
	run, err := FromGinkgo(types.Report{SpecReports: types.SpecReports{{LeafNodeText: "x", State: types.SpecStateSkipped}}}, testMeta)
	if err != nil {
		t.Fatal(err)
	}
	if run.Summary != (Summary{}) || len(run.Scenarios) != 0 || run.Failed() {
		t.Errorf("run of a report without outcomes %+v; want empty and not failed", run)
	}
}

// TestExchangeBodies: bodies are text when UTF-8, base64 flagged as such otherwise, and a
// transport error is its message.
func TestExchangeBodies(t *testing.T) {
	x := engine.Exchange{
		Request: engine.Captured{Method: "POST", URL: "/a", Body: []byte{0xff, 0x00}},
		Body:    []byte("héllo"),
		Err:     &engine.TransportError{Kind: engine.ErrTimeout, Message: "no answer"},
		Done:    1500 * time.Microsecond,
	}
	e := exchangeOf("race", x)
	if e.RequestBody != "/wA=" || e.RequestBodyEncoding != "base64" || e.Body != "héllo" || e.BodyEncoding != "" {
		t.Errorf("bodies %q (%s), %q (%s); want base64 for binary, text for UTF-8", e.RequestBody, e.RequestBodyEncoding, e.Body, e.BodyEncoding)
	}
	if e.Error != "timeout: no answer" || e.Done != 1500 || e.Phase != "race" {
		t.Errorf("exchange %+v; want the error message, done 1500 µs, phase race", e)
	}
}

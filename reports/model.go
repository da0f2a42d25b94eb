// Package reports renders a conflictcheck run for the people and CI systems that read it. Every
// format is a pure function of Run, a neutral model rebuilt from the Ginkgo report and the
// outcome each scenario attached to it.
package reports

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/scenario"
	"github.com/conflictcheck/conflictcheck/suites"
)

// Run is one conflictcheck run: what was checked, its totals and every scenario, in the order
// they ran.
type Run struct {
	Meta      Meta       `json:"meta"`
	Summary   Summary    `json:"summary"`
	Scenarios []Scenario `json:"scenarios"`
}

// Meta says what a run checked: the spec (its source as given, a file path or URL, for
// locations in it), the targets, and when it started.
type Meta struct {
	Spec     string    `json:"spec"`
	Title    string    `json:"title,omitempty"`
	Targets  []string  `json:"targets"`
	Started  time.Time `json:"started"`
	Duration Micros    `json:"duration_us"`
	// Requests is how many requests the run sent; MaxRequests its budget (0: none).
	Requests    int `json:"requests,omitempty"`
	MaxRequests int `json:"max_requests,omitempty"`
	// Stopped says why the run stopped before its end (an interrupt, its deadline, its
	// budget), empty when it ran to the end.
	Stopped string `json:"stopped,omitempty"`
}

// Micros is a duration in microseconds, as reports show them.
type Micros int64

// MicrosOf is d in whole microseconds.
func MicrosOf(d time.Duration) Micros { return Micros(d / time.Microsecond) }

// Summary counts scenarios, and checks by status.
type Summary struct {
	Scenarios    int `json:"scenarios"`
	Checks       int `json:"checks"`
	Passed       int `json:"passed"`
	Failed       int `json:"failed"`
	Inconclusive int `json:"inconclusive"`
	Skipped      int `json:"skipped"`
}

// Scenario is one scenario's verdict, checks and exchanges. Method and Path locate its
// operation in the spec; Strategy, Attempts and Overlapped describe its last race.
type Scenario struct {
	ID         string                `json:"id"`
	Name       string                `json:"name"`
	Kind       string                `json:"kind"`
	Operation  string                `json:"operation"`
	Method     string                `json:"method,omitempty"`
	Path       string                `json:"path,omitempty"`
	Line       int                   `json:"line,omitempty"` // the operation's 1-based line in the spec file, when known
	Verdict    suites.Verdict        `json:"verdict"`
	Checks     []suites.CheckOutcome `json:"checks"`
	Strategy   string                `json:"strategy,omitempty"`
	Attempts   int                   `json:"attempts"`
	Overlapped bool                  `json:"overlapped"`
	Exchanges  []Exchange            `json:"exchanges"`
	// Leftovers are resources the scenario created and could not delete.
	Leftovers []string `json:"leftovers,omitempty"`
	// Backoffs are the waits on 429 Too Many Requests; AuthRefreshes the credentials renewed
	// after a 401.
	Backoffs      []Backoff `json:"backoffs,omitempty"`
	AuthRefreshes int       `json:"auth_refreshes,omitempty"`
	// Error says why the scenario stopped before its end, if it did.
	Error string `json:"error,omitempty"`
}

// Backoff is one wait on a 429 before the scenario sent a request (or its race) again.
type Backoff struct {
	Phase      string `json:"phase"`
	RetryAfter string `json:"retry_after,omitempty"`
	Waited     Micros `json:"waited_us"`
}

// Exchange is one request and its response, labelled with the step of the scenario that sent
// it (setup, probe-setup, probe, before, race, after, invariant, list, resolve, retry,
// final, cleanup). Headers are as captured: secrets are already redacted. Bodies are text,
// or base64 with the matching *Encoding set when they are not UTF-8. Times are microseconds
// since the start of the exchange's own race (each sequential request is a race of one).
type Exchange struct {
	Phase         string      `json:"phase"`
	Racer         int         `json:"racer"`
	Target        string      `json:"target"`
	Method        string      `json:"method"`
	URL           string      `json:"url"`
	RequestHeader http.Header `json:"request_header,omitempty"`
	RequestBody   string      `json:"request_body,omitempty"`
	// RequestBodyEncoding is "base64" for a request body that is not UTF-8.
	RequestBodyEncoding string      `json:"request_body_encoding,omitempty"`
	Status              int         `json:"status,omitempty"`
	Proto               string      `json:"proto,omitempty"`
	Header              http.Header `json:"header,omitempty"`
	Body                string      `json:"body,omitempty"`
	// BodyEncoding is "base64" for a response body that is not UTF-8.
	BodyEncoding string `json:"body_encoding,omitempty"`
	Truncated    bool   `json:"truncated,omitempty"`
	// Error is a transport failure ("timeout: …"); there is then no status.
	Error      string `json:"error,omitempty"`
	WriteStart Micros `json:"write_start_us"`
	Release    Micros `json:"release_us"`
	FirstByte  Micros `json:"first_byte_us"`
	Done       Micros `json:"done_us"`
}

// exchangeOf is x as a report shows it.
func exchangeOf(phase string, x engine.Exchange) Exchange {
	e := Exchange{
		Phase: phase, Racer: x.Racer, Target: x.Target, Method: x.Request.Method, URL: x.Request.URL,
		RequestHeader: x.Request.Header, Status: x.Status, Proto: x.Proto, Header: x.Header,
		Truncated: x.Truncated, WriteStart: MicrosOf(x.WriteStart), Release: MicrosOf(x.Release),
		FirstByte: MicrosOf(x.FirstByte), Done: MicrosOf(x.Done),
	}
	e.RequestBody, e.RequestBodyEncoding = text(x.Request.Body)
	e.Body, e.BodyEncoding = text(x.Body)
	if x.Err != nil {
		e.Error = x.Err.Error()
	}
	return e
}

// text is b as a string, or its base64 and "base64" when it is not UTF-8.
func text(b []byte) (string, string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return base64.StdEncoding.EncodeToString(b), "base64"
}

// FromGinkgo rebuilds a Run from a Ginkgo report: one Scenario per OutcomeEntry the suite
// attached, in the order the specs ran; meta says what was checked (its times are taken from
// the report when zero).
func FromGinkgo(r types.Report, meta Meta) (Run, error) {
	specs := append(types.SpecReports(nil), r.SpecReports...)
	sort.SliceStable(specs, func(i, j int) bool { return specs[i].StartTime.Before(specs[j].StartTime) })
	if meta.Started.IsZero() {
		meta.Started = r.StartTime
	}
	if meta.Duration == 0 {
		meta.Duration = MicrosOf(r.RunTime)
	}
	var outcomes []suites.Outcome
	for _, s := range specs {
		for _, e := range s.ReportEntries {
			if e.Name != suites.OutcomeEntry {
				continue
			}
			o, err := suites.OutcomeOf(e.Value)
			if err != nil {
				return Run{}, fmt.Errorf("spec %q: %w", s.FullText(), err)
			}
			outcomes = append(outcomes, o)
		}
	}
	return FromOutcomes(meta, outcomes), nil
}

// FromOutcomes is the Run of outcomes given directly, in order.
func FromOutcomes(meta Meta, outcomes []suites.Outcome) Run {
	run := Run{Meta: meta, Scenarios: []Scenario{}}
	for _, o := range outcomes {
		run.add(o)
	}
	return run
}

func (run *Run) add(o suites.Outcome) {
	run.Summary.count(o.Checks)
	run.Scenarios = append(run.Scenarios, ScenarioOf(o))
}

// ScenarioOf is the report's view of one scenario's outcome.
func ScenarioOf(o suites.Outcome) Scenario {
	return Scenario{
		ID: o.Scenario, Name: o.Name, Kind: o.Kind, Operation: o.Operation, Method: o.Method, Path: o.Path,
		Line: o.Line, Verdict: o.Verdict, Checks: o.Checks, Strategy: string(o.Result.Race.Strategy),
		Attempts: o.Result.Attempts, Overlapped: o.Result.Overlapped, Exchanges: exchanges(&o.Result),
		Leftovers: o.Result.Leftovers, Error: o.Result.Error, AuthRefreshes: o.Result.AuthRefreshes,
		Backoffs: backoffs(o.Result.Backoffs),
	}
}

// backoffs are bs as a report shows them.
func backoffs(bs []scenario.Backoff) []Backoff {
	var out []Backoff
	for _, b := range bs {
		out = append(out, Backoff{Phase: b.Phase, RetryAfter: b.RetryAfter, Waited: MicrosOf(b.Waited)})
	}
	return out
}

// PushBack says in one phrase how the target pushed back during the scenario, e.g. "2
// answers 429 waited out (3s); credentials renewed once after a 401"; empty when it did not.
func (s Scenario) PushBack() string {
	var parts []string
	if n := len(s.Backoffs); n > 0 {
		var d time.Duration
		for _, b := range s.Backoffs {
			d += time.Duration(b.Waited) * time.Microsecond
		}
		parts = append(parts, fmt.Sprintf("%d× 429 waited out (%s)", n, d.Round(time.Millisecond)))
	}
	if n := s.AuthRefreshes; n > 0 {
		parts = append(parts, fmt.Sprintf("credentials renewed %d× after a 401", n))
	}
	return strings.Join(parts, "; ")
}

// count adds a scenario with checks to the summary.
func (sum *Summary) count(checks []suites.CheckOutcome) {
	sum.Scenarios++
	for _, c := range checks {
		sum.Checks++
		switch c.Status {
		case suites.Passed:
			sum.Passed++
		case suites.Failed:
			sum.Failed++
		case suites.Inconclusive:
			sum.Inconclusive++
		case suites.Skipped:
			sum.Skipped++
		}
	}
}

// Verdicts counts the run's scenarios by verdict (an unknown verdict counts as inconclusive).
func (run Run) Verdicts() (pass, fail, inconclusive int) {
	for _, s := range run.Scenarios {
		switch s.Verdict {
		case suites.VerdictPass:
			pass++
		case suites.VerdictFail:
			fail++
		default:
			inconclusive++
		}
	}
	return pass, fail, inconclusive
}

// Totals is the run's counts in one phrase, as the console and the Markdown summary say them:
// "8 scenarios: 7 pass, 1 fail, 0 inconclusive; 64 checks: …".
func (run Run) Totals() string {
	pass, fail, inc := run.Verdicts()
	sum := run.Summary
	return fmt.Sprintf("%d scenarios: %d pass, %d fail, %d inconclusive; %d checks: %d passed, %d failed, %d inconclusive, %d skipped",
		sum.Scenarios, pass, fail, inc, sum.Checks, sum.Passed, sum.Failed, sum.Inconclusive, sum.Skipped)
}

// Title is how reports name the scenario: "<kind> <operationId>", else its ID.
func (s Scenario) Title() string {
	if s.Name != "" {
		return s.Name
	}
	return s.ID
}

// ChecksWith lists the IDs of s's checks whose status is st, in run order.
func (s Scenario) ChecksWith(st suites.Status) []string {
	return suites.IDsWith(s.Checks, st)
}

// exchanges lists every exchange of r in the order the scenario sent them.
func exchanges(r *scenario.Result) []Exchange {
	out := []Exchange{}
	many := func(phase string, xs []engine.Exchange) {
		for _, x := range xs {
			out = append(out, exchangeOf(phase, x))
		}
	}
	one := func(phase string, x *engine.Exchange) {
		if x != nil {
			out = append(out, exchangeOf(phase, *x))
		}
	}
	many("probe-setup", r.ProbeSetup)
	many("probe", r.Probe)
	many("setup", r.Setup)
	one("before", r.Before)
	many("race", r.Race.Exchanges)
	one("after", r.After)
	one("invariant", r.InvariantAfter)
	one("list", r.List)
	one("resolve", r.Resolve)
	one("retry", r.Retry)
	one("final", r.Final)
	many("cleanup", r.Cleanup)
	return out
}

// Failed reports whether the run fails: a check failed or was inconclusive, or a scenario
// stopped before any check judged it.
func (run Run) Failed() bool {
	if run.Summary.Failed > 0 || run.Summary.Inconclusive > 0 {
		return true
	}
	for _, s := range run.Scenarios {
		if s.Verdict != suites.VerdictPass {
			return true
		}
	}
	return false
}

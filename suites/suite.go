package suites

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/onsi/ginkgo/v2"
	ginkgotypes "github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega/types"

	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/scenario"
)

// SuiteDescription names the Ginkgo suite and its top-level container.
const SuiteDescription = "conflictcheck"

// OutcomeEntry is the name of the report entry that carries each scenario's Outcome.
const OutcomeEntry = "conflictcheck.outcome"

// CheckIDs are the check IDs in the order the suite runs them for every scenario.
var CheckIDs = []string{
	CheckSequentialConflict, CheckConflictStatus, CheckSingleWinner, CheckNoServerError,
	CheckConflictBody, CheckStateIntact, CheckRetrySucceeds, CheckLinearizable,
}

// Status is the result of one check on one scenario.
type Status string

// The statuses of a check. Inconclusive fails the run like Failed: no evidence is not a pass.
const (
	Passed       Status = "passed"
	Failed       Status = "failed"
	Inconclusive Status = "inconclusive"
	Skipped      Status = "skipped"
)

// Verdict is a scenario's overall result.
type Verdict string

// The verdicts of DESIGN.md.
const (
	VerdictPass         Verdict = "pass"
	VerdictFail         Verdict = "fail"
	VerdictInconclusive Verdict = "inconclusive"
)

// CheckOutcome is how one check judged a scenario; Message is the failure evidence or the
// reason it was inconclusive or skipped.
type CheckOutcome struct {
	ID      string `json:"id"`
	Status  Status `json:"status"`
	Message string `json:"message,omitempty"`
}

// Outcome is one scenario's verdict, its checks and everything it observed. The suite
// attaches it to the Ginkgo report (entry OutcomeEntry) so reports can be rebuilt from the
// report alone; it round-trips through JSON.
type Outcome struct {
	Scenario  string `json:"scenario"`
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Operation string `json:"operation"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	// Line is the operation's 1-based line in the spec's text, 0 when unknown.
	Line    int             `json:"line,omitempty"`
	Verdict Verdict         `json:"verdict"`
	Checks  []CheckOutcome  `json:"checks"`
	Result  scenario.Result `json:"result"`
}

// String is the one-line form Ginkgo shows for the report entry.
func (o Outcome) String() string {
	line := fmt.Sprintf("%s: %s", o.Name, o.Verdict)
	if f := IDsWith(o.Checks, Failed, Inconclusive); len(f) > 0 {
		line += " (" + strings.Join(f, ", ") + ")"
	}
	return line
}

// IDsWith lists the IDs of the checks whose status is one of statuses, in run order.
func IDsWith(checks []CheckOutcome, statuses ...Status) []string {
	var out []string
	for _, c := range checks {
		if slices.Contains(statuses, c.Status) {
			out = append(out, c.ID)
		}
	}
	return out
}

// verdict is the scenario's verdict from its checks: fail when one failed, else inconclusive
// when one was or none was judged (the run was interrupted), else pass.
func (o Outcome) verdict() Verdict {
	if len(o.Checks) == 0 {
		return VerdictInconclusive
	}
	v := VerdictPass
	for _, c := range o.Checks {
		switch c.Status {
		case Failed:
			return VerdictFail
		case Inconclusive:
			v = VerdictInconclusive
		}
	}
	return v
}

// OutcomeOf is the Outcome an OutcomeEntry report entry holds: the value itself in the process
// that ran the suite, else decoded from the entry's JSON (a report read back from a file).
func OutcomeOf(v ginkgotypes.ReportEntryValue) (Outcome, error) {
	if o, ok := v.GetRawValue().(Outcome); ok {
		return o, nil
	}
	var o Outcome
	if err := json.Unmarshal([]byte(v.AsJSON), &o); err != nil {
		return Outcome{}, fmt.Errorf("decode %s report entry: %w", OutcomeEntry, err)
	}
	return o, nil
}

// Config is what the suite checks: every scenario of Plan, run in Env.
type Config struct {
	Plan *plan.Plan
	Env  scenario.Env
	// ReportDir, when set, receives porcupine's view of every history that is not linearizable.
	ReportDir string
	// OnScenario, when set, is called as each scenario finishes (for progress lines).
	OnScenario func(Outcome)
	// Context, when set, bounds every scenario on top of Ginkgo's own spec context: once it
	// is done (an interrupt, the run's deadline) scenarios stop firing, clean up, and report
	// its cause.
	Context context.Context
}

// scenarioContext is the context a scenario runs under: spec, also done when cfg's is.
func (cfg Config) scenarioContext(spec context.Context) (context.Context, func()) {
	if cfg.Context == nil {
		return spec, func() {}
	}
	ctx, cancel := context.WithCancelCause(spec)
	stop := context.AfterFunc(cfg.Context, func() { cancel(context.Cause(cfg.Context)) })
	return ctx, func() { stop(); cancel(nil) }
}

// Build declares the spec tree for cfg: a Describe "<kind> <operationId>" per scenario, an It
// per check labelled with the check ID and the kind. It must run before ginkgo.RunSpecs (the
// tree is never built in BeforeSuite). Each scenario runs once, in its container's BeforeAll,
// and every check judges that one run; names are made unique, since duplicates under
// `ginkgo -p` make Ginkgo run some specs twice and skip others.
func Build(cfg Config) {
	names := ScenarioNames(cfg.Plan)
	ginkgo.Describe(SuiteDescription, func() {
		for i, sc := range cfg.Plan.Scenarios {
			declare(cfg, sc, names[i])
		}
	})
}

// ScenarioNames are the names of p's scenarios' containers, in plan order: "<kind>
// <operationId>", with " #2", " #3"… on repeats so that every spec name is unique.
func ScenarioNames(p *plan.Plan) []string {
	seen := map[string]int{}
	names := make([]string, len(p.Scenarios))
	for i, sc := range p.Scenarios {
		name := fmt.Sprintf("%s %s", sc.Kind, sc.Operation)
		if seen[name]++; seen[name] > 1 {
			name = fmt.Sprintf("%s #%d", name, seen[name])
		}
		names[i] = name
	}
	return names
}

// SpecText is the text Ginkgo's focus and skip expressions are matched against for the check
// id of the scenario named name.
func SpecText(name, id string) string {
	return SuiteDescription + " " + SuiteDescription + " " + name + " " + id
}

// Matchers are the checks' matchers for cfg's scenarios, keyed by check ID. A matcher keeps
// its last failure message, so each scenario gets its own set.
func Matchers(cfg Config) map[string]types.GomegaMatcher {
	return map[string]types.GomegaMatcher{
		CheckSequentialConflict: RejectSequentialConflict(),
		CheckConflictStatus:     RejectEveryLoserWith(),
		CheckSingleWinner:       HaveExactlyOneWinner(),
		CheckNoServerError:      HaveNoServerError(),
		CheckConflictBody:       RejectWithDeclaredBody(cfg.Env.Doc),
		CheckStateIntact:        HoldOnlyTheWinnersWrite(),
		CheckRetrySucceeds:      SucceedAfterResolution(),
		CheckLinearizable:       BeLinearizableIn(cfg.ReportDir),
	}
}

// declare is one scenario's container.
func declare(cfg Config, sc plan.Scenario, name string) {
	kind := string(sc.Kind)
	var (
		ev      *Evidence
		outcome Outcome
	)
	ginkgo.Describe(name, ginkgo.Ordered, ginkgo.ContinueOnFailure, ginkgo.Label(kind), func() {
		ginkgo.BeforeAll(func(spec ginkgo.SpecContext) {
			ctx, done := cfg.scenarioContext(spec)
			defer done()
			ev = &Evidence{Scenario: sc, Result: scenario.Run(ctx, sc, cfg.Env)}
			outcome = Outcome{Scenario: sc.ID, Name: name, Kind: kind, Operation: sc.Operation, Method: sc.Method, Path: sc.Path}
			if cfg.Env.Doc != nil {
				outcome.Line = cfg.Env.Doc.Line(sc.Operation)
			}
		})
		matchers := Matchers(cfg)
		for _, id := range CheckIDs {
			m := matchers[id]
			ginkgo.It(id, ginkgo.Label(id), func() {
				c := judge(id, m, ev)
				outcome.Checks = append(outcome.Checks, c)
				switch c.Status {
				case Skipped:
					ginkgo.Skip(c.Message)
				case Failed:
					ginkgo.Fail(c.Message)
				case Inconclusive:
					ginkgo.Fail("inconclusive: " + c.Message)
				}
			})
		}
		ginkgo.AfterAll(func() {
			outcome.Verdict = outcome.verdict()
			outcome.Result = ev.Result
			ginkgo.AddReportEntry(OutcomeEntry, outcome, ginkgo.ReportEntryVisibilityFailureOrVerbose)
			if cfg.OnScenario != nil {
				cfg.OnScenario(outcome)
			}
		})
	})
}

// judge runs one matcher on the evidence: a matcher's error is a skip when the check does not
// apply, else inconclusive (nothing usable was observed), never a pass.
func judge(id string, m types.GomegaMatcher, ev *Evidence) CheckOutcome {
	ok, err := m.Match(ev)
	switch {
	case errors.Is(err, ErrNotApplicable):
		return CheckOutcome{ID: id, Status: Skipped, Message: err.Error()}
	case err != nil:
		return CheckOutcome{ID: id, Status: Inconclusive, Message: err.Error()}
	case !ok:
		return CheckOutcome{ID: id, Status: Failed, Message: m.FailureMessage(ev)}
	}
	return CheckOutcome{ID: id, Status: Passed}
}

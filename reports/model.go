// Package reports renders a conflictcheck run for the people and CI systems that read it. Every
// format is a pure function of Run, a neutral model rebuilt from the Ginkgo report and the
// outcome each scenario attached to it.
package reports

import (
	"fmt"
	"sort"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/scenario"
	"github.com/conflictcheck/conflictcheck/suites"
)

// Run is one conflictcheck run: its totals and every scenario, in the order they ran.
type Run struct {
	Summary   Summary    `json:"summary"`
	Scenarios []Scenario `json:"scenarios"`
}

// Summary counts scenarios, and checks by status.
type Summary struct {
	Scenarios    int `json:"scenarios"`
	Checks       int `json:"checks"`
	Passed       int `json:"passed"`
	Failed       int `json:"failed"`
	Inconclusive int `json:"inconclusive"`
	Skipped      int `json:"skipped"`
}

// Scenario is one scenario's verdict, checks and exchanges.
type Scenario struct {
	ID        string                `json:"id"`
	Name      string                `json:"name"`
	Kind      string                `json:"kind"`
	Operation string                `json:"operation"`
	Verdict   suites.Verdict        `json:"verdict"`
	Checks    []suites.CheckOutcome `json:"checks"`
	Exchanges []Exchange            `json:"exchanges"`
	// Leftovers are resources the scenario created and could not delete.
	Leftovers []string `json:"leftovers,omitempty"`
	// Error says why the scenario stopped before its end, if it did.
	Error string `json:"error,omitempty"`
}

// Exchange is one request and its response, labelled with the step of the scenario that sent
// it (setup, probe-setup, probe, before, race, after, invariant, list, resolve, retry,
// final, cleanup).
type Exchange struct {
	Phase string `json:"phase"`
	engine.Exchange
}

// FromGinkgo rebuilds a Run from a Ginkgo report: one Scenario per OutcomeEntry the suite
// attached, in the order the specs ran.
func FromGinkgo(r types.Report) (Run, error) {
	specs := append(types.SpecReports(nil), r.SpecReports...)
	sort.SliceStable(specs, func(i, j int) bool { return specs[i].StartTime.Before(specs[j].StartTime) })
	run := Run{Scenarios: []Scenario{}}
	for _, s := range specs {
		for _, e := range s.ReportEntries {
			if e.Name != suites.OutcomeEntry {
				continue
			}
			o, err := suites.OutcomeOf(e.Value)
			if err != nil {
				return Run{}, fmt.Errorf("spec %q: %w", s.FullText(), err)
			}
			run.add(o)
		}
	}
	return run, nil
}

// FromOutcomes is the Run of outcomes given directly, in order.
func FromOutcomes(outcomes []suites.Outcome) Run {
	run := Run{Scenarios: []Scenario{}}
	for _, o := range outcomes {
		run.add(o)
	}
	return run
}

func (run *Run) add(o suites.Outcome) {
	run.Summary.Scenarios++
	for _, c := range o.Checks {
		run.Summary.Checks++
		switch c.Status {
		case suites.Passed:
			run.Summary.Passed++
		case suites.Failed:
			run.Summary.Failed++
		case suites.Inconclusive:
			run.Summary.Inconclusive++
		case suites.Skipped:
			run.Summary.Skipped++
		}
	}
	run.Scenarios = append(run.Scenarios, Scenario{
		ID: o.Scenario, Name: o.Name, Kind: o.Kind, Operation: o.Operation, Verdict: o.Verdict,
		Checks: o.Checks, Exchanges: exchanges(&o.Result), Leftovers: o.Result.Leftovers, Error: o.Result.Error,
	})
}

// exchanges lists every exchange of r in the order the scenario sent them.
func exchanges(r *scenario.Result) []Exchange {
	var out []Exchange
	many := func(phase string, xs []engine.Exchange) {
		for _, x := range xs {
			out = append(out, Exchange{Phase: phase, Exchange: x})
		}
	}
	one := func(phase string, x *engine.Exchange) {
		if x != nil {
			out = append(out, Exchange{Phase: phase, Exchange: *x})
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

// Failed reports whether the run fails: a check failed or was inconclusive.
func (run Run) Failed() bool {
	return run.Summary.Failed > 0 || run.Summary.Inconclusive > 0
}

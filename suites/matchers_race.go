package suites

import (
	"fmt"
	"slices"
	"strings"

	"github.com/onsi/gomega/types"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/xconflict"
)

// RejectSequentialConflict is the sequential-conflict check: every probe call but the last
// succeeded and the last, the plain conflicting request, got a status in Probe.Expect.
func RejectSequentialConflict() types.GomegaMatcher {
	return newCheck(CheckSequentialConflict, func(ev *Evidence) (string, error) {
		if err := ran(ev); err != nil {
			return "", err
		}
		p := ev.Scenario.Probe
		if p == nil {
			return "", fmt.Errorf("%w: the scenario plans no sequential probe", ErrNotApplicable)
		}
		xs := ev.Result.Probe
		if len(xs) == 0 {
			return "", fmt.Errorf("%w: the probe sent nothing", ErrNoEvidence)
		}
		rows := make([]row, len(xs))
		for i := range xs {
			rows[i] = row{label: fmt.Sprintf("probe %d", i), x: &xs[i]}
		}
		if p.UntilRejected == 0 {
			for i := range xs[:len(xs)-1] {
				if !xs[i].OK() {
					return failf(CheckSequentialConflict, ev, rows, nil, "probe call %d answered %s before the conflicting call, want 2xx", i, statusOf(&xs[i])), nil
				}
			}
		}
		last := &xs[len(xs)-1]
		if !rejectedWith(last, p.Expect) {
			return failf(CheckSequentialConflict, ev, rows, nil, "the conflicting call answered %s, want one of %v", statusOf(last), p.Expect), nil
		}
		return "", nil
	})
}

// RejectEveryLoserWith is the conflict-status check: every racer that did not win got a
// status in the scenario's Expect. Winners: the one earliest-answered 2xx for kinds with a
// single winner (duplicate-create, stale-update, transition); every 2xx for capacity and
// delete-in-use (single-winner bounds them); for idempotency-key, every 2xx replaying the
// first one's resource (same id, or Idempotent-Replayed: true).
func RejectEveryLoserWith() types.GomegaMatcher {
	return newCheck(CheckConflictStatus, func(ev *Evidence) (string, error) {
		if err := raced(ev); err != nil {
			return "", err
		}
		sc := ev.Scenario
		xs := ev.Result.Race.Exchanges
		won := raceWinners(ev)
		var bad []string
		losers := 0
		for i := range xs {
			if slices.Contains(won, i) {
				continue
			}
			losers++
			if !rejectedWith(&xs[i], sc.Expect) {
				bad = append(bad, fmt.Sprintf("racer %d got %s", i, statusOf(&xs[i])))
			}
		}
		if len(bad) == 0 {
			return "", nil
		}
		return failf(CheckConflictStatus, ev, racerRows(ev), nil, "%d of %d losers got a status outside %v: %s", len(bad), losers, sc.Expect, strings.Join(bad, ", ")), nil
	})
}

// raceWinners are the racers that count as winners for conflict-status.
func raceWinners(ev *Evidence) []int {
	xs := ev.Result.Race.Exchanges
	all := winners(xs)
	switch ev.Scenario.Kind {
	case xconflict.Capacity, xconflict.DeleteInUse:
		return all
	case xconflict.IdempotencyKey:
		first := earliest(xs, all)
		if first < 0 {
			return nil
		}
		id := createdID(&xs[first])
		var out []int
		for _, i := range all {
			if i == first || replayed(&xs[i]) || (id != "" && createdID(&xs[i]) == id) {
				out = append(out, i)
			}
		}
		return out
	}
	if first := earliest(xs, all); first >= 0 {
		return []int{first}
	}
	return nil
}

// earliest is the index among idx whose response began first (the lowest index on a tie), or -1.
func earliest(xs []engine.Exchange, idx []int) int {
	best := -1
	for _, i := range idx {
		if best < 0 || xs[i].FirstByte < xs[best].FirstByte {
			best = i
		}
	}
	return best
}

// HaveExactlyOneWinner is the single-winner check: exactly one racer got a 2xx. For
// idempotency-key, exactly one distinct resource among the 2xx; for capacity, the invariant
// read after the race is within its bounds and, when the initial quantity is known (the
// subject's creation response), no more racers won than it allowed, each win taking at least
// one unit; for delete-in-use, at most one delete won and not both a delete and a dependent
// creation (whatever their order, one of them must have been refused).
func HaveExactlyOneWinner() types.GomegaMatcher {
	return newCheck(CheckSingleWinner, func(ev *Evidence) (string, error) {
		if err := raced(ev); err != nil {
			return "", err
		}
		sc := ev.Scenario
		xs := ev.Result.Race.Exchanges
		won := winners(xs)
		rows := racerRows(ev)
		switch sc.Kind {
		case xconflict.IdempotencyKey:
			var ids []string
			for _, i := range won {
				id := createdID(&xs[i])
				if id == "" {
					id = fmt.Sprintf("(racer %d: no id)", i)
				}
				if !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
			if len(ids) != 1 {
				return failf(CheckSingleWinner, ev, rows, nil, "%d distinct resources among %d winners, want exactly 1", len(ids), len(won)), nil
			}
			return "", nil
		case xconflict.Capacity:
			return capacityWinners(ev, won)
		case xconflict.DeleteInUse:
			deleted, dependents := 0, 0
			for _, i := range won {
				if deletes(sc, i) {
					deleted++
				} else {
					dependents++
				}
			}
			switch {
			case deleted > 1:
				return failf(CheckSingleWinner, ev, rows, nil, "%d deletes won, want at most 1", deleted), nil
			case deleted > 0 && dependents > 0:
				return failf(CheckSingleWinner, ev, rows, nil, "the delete and %d dependent creation(s) all won, want one side refused", dependents), nil
			case deleted+dependents == 0:
				return failf(CheckSingleWinner, ev, rows, nil, "no racer won, want the delete or the dependent creation to win"), nil
			}
			return "", nil
		}
		if len(won) != 1 {
			return failf(CheckSingleWinner, ev, rows, nil, "%d racers won, want exactly 1", len(won)), nil
		}
		return "", nil
	})
}

// capacityWinners judges single-winner for capacity.
func capacityWinners(ev *Evidence, won []int) (string, error) {
	inv := ev.Scenario.Invariant
	if inv == nil {
		return "", fmt.Errorf("%w: capacity scenario without an invariant", ErrNotApplicable)
	}
	final, err := invariantAfter(ev)
	if err != nil {
		return "", err
	}
	rows := append(racerRows(ev), row{label: "invariant", x: ev.Result.InvariantAfter})
	if msg := outOfBounds(inv.Field, final, inv.Min, inv.Max); msg != "" {
		return failf(CheckSingleWinner, ev, rows, nil, "%s after %d wins", msg, len(won)), nil
	}
	if initial, ok := initialQuantity(ev); ok {
		if allowed := initial - floor(inv); float64(len(won)) > allowed {
			return failf(CheckSingleWinner, ev, rows, nil, "%d racers won, but %s = %s allowed at most %s", len(won), inv.Field, fnum(initial), fnum(allowed)), nil
		}
	}
	return "", nil
}

// invariantAfter is the invariant's value read after the race.
func invariantAfter(ev *Evidence) (float64, error) {
	x := ev.Result.InvariantAfter
	if !x.OK() {
		return 0, fmt.Errorf("%w: the invariant read after the race answered %s", ErrNoEvidence, statusOf(x))
	}
	v, ok := number(pointer(x.Body, ev.Scenario.Invariant.Field))
	if !ok {
		return 0, fmt.Errorf("%w: the invariant read has no number at %s", ErrNoEvidence, ev.Scenario.Invariant.Field)
	}
	return v, nil
}

// initialQuantity is the invariant's value before the race, from the read before it or the
// subject's creation response.
func initialQuantity(ev *Evidence) (float64, bool) {
	f := ev.Scenario.Invariant.Field
	if ev.Result.Before.OK() {
		if v, ok := number(pointer(ev.Result.Before.Body, f)); ok {
			return v, true
		}
	}
	if x := subjectCreated(&ev.Result); x != nil {
		return number(pointer(x.Body, f))
	}
	return 0, false
}

// floor is the invariant's minimum, 0 when it declares none: what a capacity cannot go below.
func floor(inv *xconflict.Invariant) float64 {
	if inv.Min == nil {
		return 0
	}
	return *inv.Min
}

// outOfBounds says how v breaks [min, max], or "" when it does not.
func outOfBounds(field string, v float64, lo, hi *float64) string {
	switch {
	case lo != nil && v < *lo:
		return fmt.Sprintf("%s = %s, below its minimum %s", field, fnum(v), fnum(*lo))
	case hi != nil && v > *hi:
		return fmt.Sprintf("%s = %s, above its maximum %s", field, fnum(v), fnum(*hi))
	}
	return ""
}

func fnum(f float64) string { return fmt.Sprintf("%g", f) }

// HaveNoServerError is the no-server-error check: no 5xx in the setup, probe, race, reads,
// resolution or retry. A 5xx fails it even when the scenario stopped early; without one, a
// scenario that stopped or never overlapped is no evidence.
func HaveNoServerError() types.GomegaMatcher {
	return newCheck(CheckNoServerError, func(ev *Evidence) (string, error) {
		r := &ev.Result
		var found []string
		var extra []row
		add := func(label string, x *engine.Exchange, racer bool) {
			if !serverError(x) {
				return
			}
			found = append(found, fmt.Sprintf("%s got %d", label, x.Status))
			if !racer {
				extra = append(extra, row{label: label, x: x})
			}
		}
		for i := range r.Setup {
			add(fmt.Sprintf("setup %d", i), &r.Setup[i], false)
		}
		for i := range r.ProbeSetup {
			add(fmt.Sprintf("probe setup %d", i), &r.ProbeSetup[i], false)
		}
		for i := range r.Probe {
			add(fmt.Sprintf("probe %d", i), &r.Probe[i], false)
		}
		add("before", r.Before, false)
		for i := range r.Race.Exchanges {
			add(fmt.Sprintf("racer %d", i), &r.Race.Exchanges[i], true)
		}
		add("after", r.After, false)
		add("invariant", r.InvariantAfter, false)
		add("resolve", r.Resolve, false)
		add("retry", r.Retry, false)
		add("final", r.Final, false)
		if len(found) > 0 {
			return failf(CheckNoServerError, ev, append(racerRows(ev), extra...), nil, "%d server errors: %s", len(found), strings.Join(found, ", ")), nil
		}
		return "", raced(ev)
	})
}

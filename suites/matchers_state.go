package suites

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/onsi/gomega/types"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
	"github.com/conflictcheck/conflictcheck/internal/xconflict"
)

// HoldOnlyTheWinnersWrite is the state-intact check on the read after the race.
// stale-update: the read holds the winner's written members (its request body but the version
// field), no loser's distinct value, and its version advanced exactly once from the read before
// (a numeric version field by one; a version the winner reported equals the read's).
// duplicate-create, transition, idempotency-key: at most one racer created or moved the
// subject (duplicate-create: and the list by key holds exactly the winner's resource, so a
// loser that stored a duplicate while answering 409 shows), and the read holds every member of
// the winner's response (a loser's partial write
// shows as a changed member, e.g. a bumped version). capacity: the invariant is within its
// bounds. delete-in-use: the subject is gone when the delete won, there when it lost.
func HoldOnlyTheWinnersWrite() types.GomegaMatcher {
	return newCheck(CheckStateIntact, func(ev *Evidence) (string, error) {
		if err := raced(ev); err != nil {
			return "", err
		}
		sc := ev.Scenario
		r := &ev.Result
		xs := r.Race.Exchanges
		won := winners(xs)
		rows := racerRows(ev)
		if sc.Kind == xconflict.Capacity {
			if sc.Invariant == nil {
				return "", fmt.Errorf("%w: capacity scenario without an invariant", ErrNotApplicable)
			}
			final, err := invariantAfter(ev)
			if err != nil {
				return "", err
			}
			if msg := outOfBounds(sc.Invariant.Field, final, sc.Invariant.Min, sc.Invariant.Max); msg != "" {
				return failf(CheckStateIntact, ev, append(rows, row{label: "invariant", x: r.InvariantAfter}), nil, "%s", msg), nil
			}
			return "", nil
		}
		if r.After == nil || r.After.Err != nil {
			return "", fmt.Errorf("%w: no read after the race", ErrNoEvidence)
		}
		rows = append(rows, row{label: "after", x: r.After})
		switch sc.Kind {
		case xconflict.StaleUpdate:
			return staleIntact(ev, won, rows)
		case xconflict.DeleteInUse:
			deleted := slices.ContainsFunc(won, func(i int) bool { return deletes(sc, i) })
			switch {
			case deleted && !gone(r.After):
				return failf(CheckStateIntact, ev, rows, nil, "the delete won but the subject is still there (read %s)", statusOf(r.After)), nil
			case !deleted && !r.After.OK():
				return failf(CheckStateIntact, ev, rows, nil, "the delete lost but the subject reads %s", statusOf(r.After)), nil
			}
			return "", nil
		}
		if sc.Kind == xconflict.DuplicateCreate {
			if n, key, ok := keyed(ev); ok && n != min(len(won), 1) {
				return failf(CheckStateIntact, ev, append(rows, row{label: "list", x: r.List}), nil,
					"%d resources hold the key %s after the race, want %d", n, key, min(len(won), 1)), nil
			}
		}
		if len(won) == 0 {
			return "", fmt.Errorf("%w: no racer won, so there is no winner's write to find", ErrNoEvidence)
		}
		first := earliest(xs, won)
		if sc.Kind == xconflict.IdempotencyKey {
			id := createdID(&xs[first])
			for _, i := range won {
				if createdID(&xs[i]) != id {
					return failf(CheckStateIntact, ev, rows, nil, "racers %d and %d created distinct resources %s and %s", first, i, id, createdID(&xs[i])), nil
				}
			}
		} else if len(won) > 1 {
			return failf(CheckStateIntact, ev, rows, nil, "%d racers wrote, want only the winner's write", len(won)), nil
		}
		if !r.After.OK() {
			return failf(CheckStateIntact, ev, rows, nil, "the read after the race answered %s, want the winner's resource", statusOf(r.After)), nil
		}
		if diff := mismatches(leaves(xs[first].Body), leaves(r.After.Body)); len(diff) > 0 {
			return failf(CheckStateIntact, ev, rows, diff, "the read after the race differs from winner %d's response", first), nil
		}
		return "", nil
	})
}

// keyed counts the resources of a duplicate-create's list after the race that hold the racers'
// key, and names the key; false when there is no usable list.
func keyed(ev *Evidence) (n int, key string, ok bool) {
	r := &ev.Result
	if ev.Scenario.ListCall == nil || !r.List.OK() || len(r.Race.Exchanges) == 0 || len(ev.Scenario.Key) == 0 {
		return 0, "", false
	}
	items, ok := listed(r.List.Body)
	if !ok {
		return 0, "", false
	}
	want := make([]string, len(ev.Scenario.Key))
	for i, ptr := range ev.Scenario.Key {
		v, ok := pointer(r.Race.Exchanges[0].Request.Body, ptr)
		if !ok {
			return 0, "", false
		}
		want[i] = compact(v)
	}
	for _, item := range items {
		match := true
		for i, ptr := range ev.Scenario.Key {
			v, err := runtimeexpr.Pointer(item, ptr)
			match = match && err == nil && compact(v) == want[i]
		}
		if match {
			n++
		}
	}
	parts := make([]string, len(want))
	for i, ptr := range ev.Scenario.Key {
		parts[i] = ptr + "=" + want[i]
	}
	return n, strings.Join(parts, " "), true
}

// listed is the array a list response holds: the body itself, or its first array member (by
// name: items, data, results, …).
func listed(body []byte) ([]any, bool) {
	switch v := jsonBody(body).(type) {
	case []any:
		return v, true
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if a, ok := v[k].([]any); ok {
				return a, true
			}
		}
	}
	return nil, false
}

// staleIntact judges state-intact for stale-update.
func staleIntact(ev *Evidence, won []int, rows []row) (string, error) {
	sc := ev.Scenario
	r := &ev.Result
	xs := r.Race.Exchanges
	if !r.Before.OK() || !r.After.OK() {
		return "", fmt.Errorf("%w: the reads around the race answered %s and %s", ErrNoEvidence, statusOf(r.Before), statusOf(r.After))
	}
	vf := versionPath(sc)
	after := leaves(r.After.Body)
	before := leaves(r.Before.Body)
	if len(won) == 0 {
		if diff := mismatches(before, after); len(diff) > 0 {
			return failf(CheckStateIntact, ev, rows, diff, "no racer won, yet the state changed"), nil
		}
		return "", nil
	}
	if len(won) > 1 {
		return failf(CheckStateIntact, ev, rows, nil, "%d racers wrote, want only the winner's write", len(won)), nil
	}
	w := won[0]
	wrote := written(sc, &xs[w])
	if diff := mismatches(wrote, after); len(diff) > 0 {
		return failf(CheckStateIntact, ev, rows, diff, "the read after the race lacks winner %d's write", w), nil
	}
	var details []string
	for i := range xs {
		if i == w {
			continue
		}
		for k, v := range written(sc, &xs[i]) {
			if compact(v) == compact(wrote[k]) {
				continue
			}
			if compact(after[k]) == compact(v) {
				details = append(details, fmt.Sprintf("%s = %s is loser %d's value", k, compact(v), i))
			}
		}
	}
	if len(details) > 0 {
		return failf(CheckStateIntact, ev, rows, details, "the read after the race holds a loser's value"), nil
	}
	if vf != "" {
		b, okB := number(pointer(r.Before.Body, sc.Version.Field))
		a, okA := number(pointer(r.After.Body, sc.Version.Field))
		if okA && okB && a-b != 1 {
			return failf(CheckStateIntact, ev, rows, nil, "version went from %s to %s, want exactly one step", fnum(b), fnum(a)), nil
		}
	}
	if reported := versionOf(sc, &xs[w]); reported != "" && versionOf(sc, r.After) != reported {
		return failf(CheckStateIntact, ev, rows, nil, "version after the race is %s, want winner %d's %s (written once)", versionOf(sc, r.After), w, reported), nil
	}
	return "", nil
}

// SucceedAfterResolution is the retry-succeeds check: after the resolution (a re-read, a new
// key, the resolve call), the loser's retry got a 2xx and the read after it reflects it: for
// stale-update it holds the retry's written members and the version the retry reported, for
// creates it holds the retry's response, for delete-in-use the subject is gone.
// It returns an error wrapping ErrNotApplicable, for the suite to skip, where there is no
// retry to judge: transition (nothing resolves a lost transition), delete-in-use when the
// delete won the race, capacity when the quantity ran out and the retry was rightly refused,
// and a kind whose plan has no retry call.
func SucceedAfterResolution() types.GomegaMatcher {
	return newCheck(CheckRetrySucceeds, func(ev *Evidence) (string, error) {
		sc := ev.Scenario
		if sc.Kind == xconflict.Transition {
			return "", fmt.Errorf("%w: a transition has no retry", ErrNotApplicable)
		}
		if err := raced(ev); err != nil {
			return "", err
		}
		r := &ev.Result
		rows := racerRows(ev)
		if sc.Kind == xconflict.DeleteInUse {
			if r.Resolve == nil {
				return "", fmt.Errorf("%w: the delete won the race, nothing to resolve", ErrNotApplicable)
			}
			rows = append(rows, row{label: "resolve", x: r.Resolve})
			if !r.Resolve.OK() {
				return failf(CheckRetrySucceeds, ev, rows, nil, "the resolution answered %s, want 2xx", statusOf(r.Resolve)), nil
			}
		}
		if r.Retry == nil {
			switch sc.Kind {
			case xconflict.DuplicateCreate, xconflict.IdempotencyKey, xconflict.Capacity:
				if sc.Retry == nil {
					return "", fmt.Errorf("%w: the plan has no retry", ErrNotApplicable)
				}
			}
			return "", fmt.Errorf("%w: no retry was sent", ErrNoEvidence)
		}
		rows = append(rows, row{label: "retry", x: r.Retry})
		if r.Final != nil {
			rows = append(rows, row{label: "final", x: r.Final})
		}
		if !r.Retry.OK() {
			if sc.Kind == xconflict.Capacity && exhausted(ev) {
				return "", fmt.Errorf("%w: the quantity ran out, the retry was rightly refused (%s)", ErrNotApplicable, statusOf(r.Retry))
			}
			return failf(CheckRetrySucceeds, ev, rows, nil, "the retry answered %s, want 2xx", statusOf(r.Retry)), nil
		}
		if r.Final == nil {
			return "", nil
		}
		var diff []string
		switch sc.Kind {
		case xconflict.DeleteInUse:
			if !gone(r.Final) {
				diff = []string{"the subject reads " + statusOf(r.Final) + ", want 404 or 410"}
			}
		case xconflict.StaleUpdate:
			diff = finalDiff(r.Final, written(sc, r.Retry))
			if v := versionOf(sc, r.Retry); len(diff) == 0 && v != "" && versionOf(sc, r.Final) != v {
				diff = []string{fmt.Sprintf("version %s, want the retry's %s", versionOf(sc, r.Final), v)}
			}
		case xconflict.Capacity:
			// Final reads what the race's winner created, not what the retry did.
		default:
			diff = finalDiff(r.Final, leaves(r.Retry.Body))
		}
		if len(diff) > 0 {
			return failf(CheckRetrySucceeds, ev, rows, diff, "the read after the retry does not reflect it"), nil
		}
		return "", nil
	})
}

// finalDiff lists how the read final differs from want.
func finalDiff(final *engine.Exchange, want map[string]any) []string {
	if !final.OK() {
		return []string{"the read after the retry answered " + statusOf(final)}
	}
	return mismatches(want, leaves(final.Body))
}

// exhausted reports whether a capacity invariant read after the race sits at its minimum.
func exhausted(ev *Evidence) bool {
	inv := ev.Scenario.Invariant
	if inv == nil {
		return false
	}
	v, err := invariantAfter(ev)
	if err != nil {
		return false
	}
	return v <= floor(inv)
}

// stateField is the member of the read before the race that the winner's response changed
// (the transition's state), or "".
func stateField(before, winner map[string]any) string {
	var names []string
	for k, v := range before {
		if s, ok := v.(string); ok {
			if w, ok := winner[k].(string); ok && w != s {
				names = append(names, k)
			}
		}
	}
	if len(names) == 0 {
		return ""
	}
	return slices.Min(names)
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrBudgetSpent is the error of a Fire refused because the run's request budget
// (--max-requests) would be exceeded: shared staging environments get a bounded load.
var ErrBudgetSpent = errors.New("request budget spent")

// Budget caps how many requests the engines sharing it send in one run. Requests sent under
// a context marked by Unbudgeted (cleanup of what a run created) are counted, never refused:
// leaving the resources behind would be worse than exceeding the cap by a bounded cleanup.
type Budget struct {
	max  int64
	used atomic.Int64
}

// NewBudget is a budget of max requests; max <= 0 means unlimited (counted only).
func NewBudget(max int) *Budget { return &Budget{max: int64(max)} }

// Max is the cap, 0 when unlimited.
func (b *Budget) Max() int { return int(max(b.max, 0)) }

// Used is how many requests were sent (or were being sent) so far.
func (b *Budget) Used() int { return int(b.used.Load()) }

// take reserves n requests, all or none; exempt reservations always succeed.
func (b *Budget) take(n int, exempt bool) error {
	if b == nil {
		return nil
	}
	for {
		used := b.used.Load()
		if !exempt && b.max > 0 && used+int64(n) > b.max {
			return fmt.Errorf("%w: %d of %d sent, %d more needed", ErrBudgetSpent, used, b.max, n)
		}
		if b.used.CompareAndSwap(used, used+int64(n)) {
			return nil
		}
	}
}

type unbudgetedKey struct{}

// Unbudgeted marks ctx so that requests fired under it are counted but never refused by the
// budget: a scenario's cleanup runs under it.
func Unbudgeted(ctx context.Context) context.Context {
	return context.WithValue(ctx, unbudgetedKey{}, true)
}

func isUnbudgeted(ctx context.Context) bool {
	v, _ := ctx.Value(unbudgetedKey{}).(bool)
	return v
}

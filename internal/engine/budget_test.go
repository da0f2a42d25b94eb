package engine

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
)

func TestBudget(t *testing.T) {
	var served atomic.Int64
	srv, _ := testServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
	}), false)
	b := NewBudget(5)
	e := New(Options{Strategy: Barrier, Budget: b})
	ctx := context.Background()
	req := Request{Method: http.MethodGet, Path: "/"}

	if _, err := e.Fire(ctx, []string{srv.URL}, copies(4, req)); err != nil {
		t.Fatalf("4 of 5: %v", err)
	}
	// A race of 2 would exceed the budget: refused whole, nothing sent.
	_, err := e.Fire(ctx, []string{srv.URL}, copies(2, req))
	if !errors.Is(err, ErrBudgetSpent) {
		t.Fatalf("5th and 6th: err %v, want ErrBudgetSpent", err)
	}
	if got := served.Load(); got != 4 {
		t.Fatalf("served %d requests after a refused race, want 4", got)
	}
	if _, err := e.Fire(ctx, []string{srv.URL}, copies(1, req)); err != nil {
		t.Fatalf("the 5th: %v", err)
	}
	// Cleanup goes past the cap, and is counted.
	if _, err := e.Fire(Unbudgeted(ctx), []string{srv.URL}, copies(2, req)); err != nil {
		t.Fatalf("unbudgeted: %v", err)
	}
	if _, err := e.Fire(ctx, []string{srv.URL}, copies(1, req)); !errors.Is(err, ErrBudgetSpent) {
		t.Fatalf("after the cleanup: err %v, want ErrBudgetSpent", err)
	}
	if b.Used() != 7 || served.Load() != 7 || b.Max() != 5 {
		t.Fatalf("used %d, served %d, max %d; want 7, 7, 5", b.Used(), served.Load(), b.Max())
	}

	unlimited := NewBudget(0)
	e = New(Options{Strategy: Barrier, Budget: unlimited})
	if _, err := e.Fire(ctx, []string{srv.URL}, copies(3, req)); err != nil || unlimited.Used() != 3 {
		t.Fatalf("unlimited: err %v, used %d", err, unlimited.Used())
	}
}

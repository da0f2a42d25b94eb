package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/reftest"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
)

// guarded serves the correct reference API behind mw on loopback, and says how many items it
// holds at the end.
func guarded(t *testing.T, mw func(w http.ResponseWriter, r *http.Request, next http.Handler)) (url string, items func() int) {
	t.Helper()
	ref := reftest.Start(t, fault.None, 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mw(w, r, ref.Config.Handler) }))
	t.Cleanup(srv.Close)
	return srv.URL, func() int {
		resp, err := http.Get(ref.URL + "/items")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list struct{ Items []any }
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			t.Fatal(err)
		}
		return len(list.Items)
	}
}

// TestRunInterrupted: the first SIGINT stops firing, cleans up what the run created, writes
// the reports and exits 1 saying why; the second exits at once with 130.
func TestRunInterrupted(t *testing.T) {
	for _, tc := range []struct {
		name    string
		signals int
	}{{"once", 1}, {"twice", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			raced := make(chan struct{})
			var once sync.Once
			hang := make(chan struct{})
			defer close(hang)
			target, items := guarded(t, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if r.Method == http.MethodPut && r.Header.Get("If-Match") != "" {
					once.Do(func() { close(raced) })
					select { // the race never ends by itself
					case <-hang:
					case <-r.Context().Done():
					}
					return
				}
				if r.Method == http.MethodDelete && tc.signals == 2 {
					<-hang // nor does the cleanup
					return
				}
				next.ServeHTTP(w, r)
			})
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			p := startCLI(t, ctx, dir, nil, "run", "--spec", referenceSpecFile(t, dir), "--target", target,
				"--focus", "stale-update replaceItem", "--timeout", "30s")
			select {
			case <-raced:
			case <-time.After(time.Minute):
				t.Fatal("the race never started")
			}
			began := time.Now()
			for range tc.signals {
				if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
					t.Fatal(err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			res := p.wait(t)
			if took := time.Since(began); took > 20*time.Second {
				t.Errorf("took %v to end after the interrupt, want far less than the 30s request timeout", took)
			}
			if !strings.Contains(res.stderr, "stopping; cleaning up") {
				t.Errorf("stderr does not say the run is stopping:\n%s", res.stderr)
			}
			if tc.signals == 2 {
				if res.code != exitInterrupted || !strings.Contains(res.stderr, "exiting without cleaning up") {
					t.Errorf("exit %d, stderr:\n%s\nwant %d, exiting at once", res.code, res.stderr, exitInterrupted)
				}
				return
			}
			if res.code != exitFailed || !strings.Contains(res.stdout, "stopped: interrupted") {
				t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s\nwant %d and the interrupt named", res.code, res.stdout, res.stderr, exitFailed)
			}
			if n := items(); n != 0 {
				t.Errorf("%d items left on the target after the interrupt, want every created one deleted", n)
			}
			run := readReport(t, dir)
			if !strings.HasPrefix(run.Meta.Stopped, "interrupted") || len(run.Scenarios) != 1 || len(run.Scenarios[0].Leftovers) != 0 {
				t.Errorf("report: stopped %q, %d scenarios, leftovers %v", run.Meta.Stopped, len(run.Scenarios), run.Scenarios)
			}
		})
	}
}

// TestRunDeadline: --deadline ends a run against a slow target: it stops firing, cleans up and
// reports why, with exit 1.
func TestRunDeadline(t *testing.T) {
	target, items := guarded(t, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method != http.MethodDelete {
			time.Sleep(150 * time.Millisecond)
		}
		next.ServeHTTP(w, r)
	})
	dir := t.TempDir()
	began := time.Now()
	res := runCLI(t, dir, "run", "--spec", referenceSpecFile(t, dir), "--target", target, "--deadline", "2s",
		"--label-filter", "stale-update || duplicate-create")
	if took := time.Since(began); took > 60*time.Second {
		t.Errorf("a run with --deadline 2s took %v", took)
	}
	if res.code != exitFailed || !strings.Contains(res.stdout, "stopped: the run's deadline (--deadline 2s) passed") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	if n := items(); n != 0 {
		t.Errorf("%d items left after the deadline", n)
	}
}

// TestRunMaxRequests: the budget stops the firing once spent, the run says so and fails, and
// the cleanup still ran.
func TestRunMaxRequests(t *testing.T) {
	var served atomic.Int64
	target, items := guarded(t, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method != "PRI" { // the engine's HTTP/2 probe is no request
			served.Add(1)
		}
		next.ServeHTTP(w, r)
	})
	dir := t.TempDir()
	res := runCLI(t, dir, "run", "--spec", referenceSpecFile(t, dir), "--target", target, "--max-requests", "40",
		"--label-filter", "stale-update || duplicate-create")
	if res.code != exitFailed || !strings.Contains(res.stdout, "stopped: the request budget (--max-requests 40) ran out") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	run := readReport(t, dir)
	cleanup := 0
	for _, s := range run.Scenarios {
		for _, x := range s.Exchanges {
			if x.Phase == "cleanup" {
				cleanup++
			}
		}
	}
	// Every request but the cleanup fits the budget (the preflight's included).
	if int(served.Load())-cleanup > 40 || run.Meta.Requests != int(served.Load()) || run.Meta.MaxRequests != 40 {
		t.Errorf("served %d (%d cleanup), report says %d of %d", served.Load(), cleanup, run.Meta.Requests, run.Meta.MaxRequests)
	}
	if n := items(); n != 0 {
		t.Errorf("%d items left after the budget ran out", n)
	}
}

// TestRunRateLimited: 429s with Retry-After are waited out and the console says so; the run
// still passes.
func TestRunRateLimited(t *testing.T) {
	var n atomic.Int64
	target, _ := guarded(t, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method == http.MethodPost && n.Add(1) == 2 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
	dir := t.TempDir()
	res := runCLI(t, dir, "run", "--spec", referenceSpecFile(t, dir), "--target", target, "--focus", "stale-update replaceItem")
	if res.code != exitOK || !strings.Contains(res.stdout, "1× 429 waited out (1s)") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
}

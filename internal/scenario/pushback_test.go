package scenario

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/reftest"
	"github.com/conflictcheck/conflictcheck/internal/xconflict"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
)

// wrapped serves the correct reference API behind mw on a loopback server of its own.
func wrapped(t *testing.T, mw func(http.ResponseWriter, *http.Request, http.Handler)) *httptest.Server {
	t.Helper()
	ref := reftest.Start(t, fault.None, 0)
	h := ref.Config.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mw(w, r, h) }))
	t.Cleanup(srv.Close)
	return srv
}

func scenarioOf(t *testing.T, p *plan.Plan, kind xconflict.Kind) plan.Scenario {
	t.Helper()
	i := slices.IndexFunc(p.Scenarios, func(sc plan.Scenario) bool { return sc.Kind == kind })
	if i < 0 {
		t.Fatalf("no %s scenario", kind)
	}
	return p.Scenarios[i]
}

// TestRunBacksOffOn429: a 429 on a call, and on a whole race, is waited out and sent again; the
// waits are reported and the scenario ends as it would have without them.
func TestRunBacksOffOn429(t *testing.T) {
	doc, p := loadPlan(t)
	var n, puts atomic.Int64
	sc := scenarioOf(t, p, xconflict.StaleUpdate)
	srv := wrapped(t, func(w http.ResponseWriter, r *http.Request, h http.Handler) {
		first := n.Add(1) == 1
		// The probe sends two PUTs; every racer of the first race is the 3rd to 10th.
		race := r.Method == sc.Method && r.Header.Get("If-Match") != "" && puts.Add(1) > 2 && puts.Load() <= int64(2+sc.Concurrency)
		if first || race {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		h.ServeHTTP(w, r)
	})
	env := newEnv(doc, p, srv.URL)
	env.Attempts = 1 // a rate-limited race counted as the one attempt would be judged
	res := Run(t.Context(), sc, env)
	if res.Error != "" {
		t.Fatalf("Error = %q", res.Error)
	}
	var phases []string
	for _, b := range res.Backoffs {
		phases = append(phases, b.Phase)
		if b.RetryAfter != "0" || b.Waited != 0 {
			t.Errorf("backoff %+v: want Retry-After 0 honoured", b)
		}
	}
	if !slices.Equal(phases, []string{sc.Setup[0].Operation, "race"}) {
		t.Errorf("backoffs in %v, want the setup's first call then the race", phases)
	}
	if got := statuses(res.Race.Exchanges); slices.Contains(got, http.StatusTooManyRequests) {
		t.Errorf("the judged race still holds a 429: %v", got)
	}
}

// TestRunBackoffBounded: a target that always answers 429 is given up on after maxHolds waits
// per request, its last answer kept as the evidence.
func TestRunBackoffBounded(t *testing.T) {
	doc, p := loadPlan(t)
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	res := Run(t.Context(), scenarioOf(t, p, xconflict.StaleUpdate), newEnv(doc, p, srv.URL))
	if !strings.Contains(res.Error, "429") || len(res.Backoffs) != maxHolds || served.Load() != maxHolds+1 {
		t.Fatalf("Error %q, %d backoffs, %d requests; want the setup given up with its 429 after %d waits", res.Error, len(res.Backoffs), served.Load(), maxHolds)
	}
}

// tokens are credentials that count their renewals; the server accepts only the current one.
type tokens struct {
	mu      sync.Mutex
	current int
	fail    error
}

func (c *tokens) Header(context.Context) (http.Header, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return http.Header{"Authorization": {fmt.Sprintf("Bearer t%d", c.current)}}, nil
}

func (c *tokens) Refresh(_ context.Context, used http.Header) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	if used.Get("Authorization") == fmt.Sprintf("Bearer t%d", c.current) {
		c.current++
	}
	return nil
}

// TestRunRenewsCredentialsOn401: a token that expires mid-scenario (on a call, then just
// before the race) is renewed once per 401 and the request sent again.
func TestRunRenewsCredentialsOn401(t *testing.T) {
	doc, p := loadPlan(t)
	sc := scenarioOf(t, p, xconflict.StaleUpdate)
	var valid atomic.Int64 // the token the server accepts
	var n atomic.Int64
	srv := wrapped(t, func(w http.ResponseWriter, r *http.Request, h http.Handler) {
		// The server rotates its token after the 2nd request, and again at the first racer.
		if k := n.Add(1); k == 3 || r.Method == sc.Method && valid.Load() == 1 && r.Header.Get("If-Match") != "" && k > 6 {
			valid.Add(1)
		}
		if r.Header.Get("Authorization") != fmt.Sprintf("Bearer t%d", valid.Load()) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
	env := newEnv(doc, p, srv.URL)
	cred := &tokens{}
	env.Auth = cred
	res := Run(t.Context(), sc, env)
	if res.Error != "" {
		t.Fatalf("Error = %q", res.Error)
	}
	if res.AuthRefreshes < 2 || cred.current != int(valid.Load()) {
		t.Errorf("%d renewals, client token t%d, server token t%d", res.AuthRefreshes, cred.current, valid.Load())
	}
	if got := statuses(res.Race.Exchanges); slices.Contains(got, http.StatusUnauthorized) {
		t.Errorf("the judged race still holds a 401: %v", got)
	}

	cred.fail = errors.New("token endpoint down")
	valid.Add(5)
	res = Run(t.Context(), sc, env)
	if !strings.Contains(res.Error, "renew the credentials after a 401: token endpoint down") {
		t.Errorf("failed renewal: Error = %q", res.Error)
	}
}

// TestRunCleansUpAfterInterrupt: a scenario interrupted at its race stops firing, says why, and
// still deletes what it created.
func TestRunCleansUpAfterInterrupt(t *testing.T) {
	doc, p := loadPlan(t)
	sc := scenarioOf(t, p, xconflict.StaleUpdate)
	ctx, cancel := context.WithCancelCause(t.Context())
	interrupted := errors.New("interrupted (Ctrl-C)")
	var deletes atomic.Int64
	srv := wrapped(t, func(w http.ResponseWriter, r *http.Request, h http.Handler) {
		if r.Method == sc.Method && r.Header.Get("If-Match") != "" {
			cancel(interrupted)
		}
		if r.Method == http.MethodDelete {
			deletes.Add(1)
		}
		h.ServeHTTP(w, r)
	})
	res := Run(ctx, sc, newEnv(doc, p, srv.URL))
	if !strings.Contains(res.Error, interrupted.Error()) {
		t.Errorf("Error = %q, want the interrupt's cause", res.Error)
	}
	if len(res.Race.Exchanges) != 0 {
		t.Errorf("raced after the interrupt: %v", statuses(res.Race.Exchanges))
	}
	if deletes.Load() == 0 || len(res.Leftovers) != 0 {
		t.Errorf("%d deletes, leftovers %v: the created items must be deleted after an interrupt", deletes.Load(), res.Leftovers)
	}
}

// TestRunWeakETag: a read whose ETag is weak stops a header stale-update with a message saying
// why, instead of a race no write can win.
func TestRunWeakETag(t *testing.T) {
	doc, p := loadPlan(t)
	sc := scenarioOf(t, p, xconflict.StaleUpdate)
	if sc.Version == nil || sc.Version.Header == "" {
		t.Skip("the reference stale-update is not by header")
	}
	srv := wrapped(t, func(w http.ResponseWriter, r *http.Request, h http.Handler) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		if et := rec.Header().Get("ETag"); et != "" {
			w.Header().Set("ETag", "W/"+et)
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
	res := Run(t.Context(), sc, newEnv(doc, p, srv.URL))
	if !strings.Contains(res.Error, "weak entity tag") || !strings.Contains(res.Error, "RFC 9110 §13.1.1") {
		t.Errorf("Error = %q, want the weak ETag named", res.Error)
	}
}

// TestRunBudget: a budget too small for the scenario stops it with the budget named, and the
// cleanup still runs past it.
func TestRunBudget(t *testing.T) {
	doc, p := loadPlan(t)
	srv := reference(t, fault.None)
	env := newEnv(doc, p, srv.URL)
	budget := engine.NewBudget(4)
	env.Engine = engine.New(engine.Options{Strategy: engine.LastByte, Budget: budget})
	res := Run(t.Context(), scenarioOf(t, p, xconflict.StaleUpdate), env)
	if !errors.Is(errors.New(res.Error), engine.ErrBudgetSpent) && !strings.Contains(res.Error, engine.ErrBudgetSpent.Error()) {
		t.Errorf("Error = %q, want the budget named", res.Error)
	}
	if len(res.Cleanup) == 0 || len(res.Leftovers) != 0 || budget.Used() <= 4 {
		t.Errorf("%d cleanup requests, leftovers %v, used %d: cleanup must run past the budget", len(res.Cleanup), res.Leftovers, budget.Used())
	}
}

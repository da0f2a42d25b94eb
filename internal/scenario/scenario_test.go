package scenario

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/reftest"
	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/internal/xconflict"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
)

const referenceSpec = "../../openapi/reference.yaml"

func loadPlan(t *testing.T) (*specload.Document, *plan.Plan) {
	t.Helper()
	doc, err := specload.Load(t.Context(), referenceSpec, specload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.New(doc, plan.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Scenarios) == 0 {
		t.Fatal("the reference plan has no scenarios")
	}
	return doc, p
}

// reference starts the reference server (memory store) with fault f, its race window 5 ms.
func reference(t *testing.T, f fault.Name) *httptest.Server {
	t.Helper()
	return reftest.Start(t, f, 5*time.Millisecond)
}

func newEnv(doc *specload.Document, p *plan.Plan, target string) Env {
	return Env{
		Doc:     doc,
		Plan:    p,
		Engine:  engine.New(engine.Options{Strategy: engine.LastByte, Timeout: 5 * time.Second}),
		Targets: []string{target},
		Header:  http.Header{"X-Test-Auth": {"secret"}},
	}
}

func statuses(xs []engine.Exchange) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = x.Status
	}
	return out
}

func status(x *engine.Exchange) string {
	if x == nil {
		return "none"
	}
	return http.StatusText(x.Status)
}

func TestRunReferenceServer(t *testing.T) {
	doc, p := loadPlan(t)
	srv := reference(t, fault.None)
	env := newEnv(doc, p, srv.URL)
	for _, sc := range p.Scenarios {
		t.Run(sc.ID, func(t *testing.T) {
			res := Run(t.Context(), sc, env)
			if res.Error != "" {
				t.Fatalf("Error = %q", res.Error)
			}
			if res.Scenario != sc.ID {
				t.Errorf("Scenario = %q, want %q", res.Scenario, sc.ID)
			}
			if len(res.Setup) != len(sc.Setup) {
				t.Errorf("setup has %d exchanges, want %d", len(res.Setup), len(sc.Setup))
			}
			for i := range res.Setup {
				if !res.Setup[i].OK() {
					t.Errorf("setup %d answered %d", i, res.Setup[i].Status)
				}
			}
			t.Logf("attempts %d, overlapped %v, race %v, retry %s, leftovers %d", res.Attempts, res.Overlapped, statuses(res.Race.Exchanges), status(res.Retry), len(res.Leftovers))
			if sc.ListCall != nil && (!res.List.OK() || !strings.Contains(res.List.Request.URL, "?sku=")) {
				t.Errorf("list after the race: %s %+v; want a 2xx list filtered by the key", status(res.List), res.List)
			}
			checkProbe(t, sc, res)
			checkRace(t, sc, res)
			checkRetry(t, sc, res)
			checkHeaders(t, res)
			checkCleanup(t, srv.URL, sc, res)
		})
	}
}

func checkProbe(t *testing.T, sc plan.Scenario, res Result) {
	t.Helper()
	if sc.Probe == nil {
		return
	}
	if len(res.Probe) == 0 {
		t.Fatal("no probe exchanges")
	}
	if sc.Probe.UntilRejected == 0 && len(res.Probe) != len(sc.Probe.Calls) {
		t.Errorf("probe sent %d calls, want %d", len(res.Probe), len(sc.Probe.Calls))
	}
	for i, x := range res.Probe[:len(res.Probe)-1] {
		if !x.OK() {
			t.Errorf("probe call %d answered %d, want 2xx", i, x.Status)
		}
	}
	if lastX := res.Probe[len(res.Probe)-1]; !slices.Contains(sc.Probe.Expect, lastX.Status) {
		t.Errorf("probe's last call answered %d (%s), want one of %v", lastX.Status, lastX.Body, sc.Probe.Expect)
	}
	for i, x := range res.ProbeSetup {
		if !x.OK() {
			t.Errorf("probe setup %d answered %d", i, x.Status)
		}
	}
}

func checkRace(t *testing.T, sc plan.Scenario, res Result) {
	t.Helper()
	xs := res.Race.Exchanges
	if len(xs) != sc.Concurrency {
		t.Fatalf("race has %d exchanges, want %d", len(xs), sc.Concurrency)
	}
	if res.Attempts < 1 || res.Attempts > DefaultAttempts {
		t.Errorf("Attempts = %d", res.Attempts)
	}
	if res.Overlapped != res.Race.Overlapped() {
		t.Errorf("Overlapped = %v, Race.Overlapped() = %v", res.Overlapped, res.Race.Overlapped())
	}
	winners := 0
	ids := map[string]bool{}
	for i, x := range xs {
		switch {
		case x.OK():
			winners++
			var body struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(x.Body, &body)
			ids[body.ID] = true
		case !slices.Contains(sc.Expect, x.Status):
			t.Errorf("racer %d answered %d (%s), want 2xx or one of %v", i, x.Status, x.Body, sc.Expect)
		}
	}
	switch sc.Kind {
	case xconflict.DuplicateCreate, xconflict.StaleUpdate, xconflict.Transition:
		if winners != 1 {
			t.Errorf("%d winners, want 1", winners)
		}
	case xconflict.IdempotencyKey:
		if len(ids) != 1 {
			t.Errorf("%d distinct orders among the winners, want 1: %v", len(ids), ids)
		}
	case xconflict.DeleteInUse:
		if winners == 0 {
			t.Error("no racer won")
		}
	case xconflict.Capacity:
		// The subject is sized at half the racers: some win, the rest must be refused.
		if winners == 0 || winners == len(xs) {
			t.Errorf("%d of %d racers won, want some but not all", winners, len(xs))
		}
	}
	deleted := sc.Kind == xconflict.DeleteInUse && xs[0].OK() && res.After != nil && res.After.Status == http.StatusNotFound
	if sc.ReadCall != nil && !res.After.OK() && !deleted {
		t.Errorf("read after the race: %+v", res.After)
	}
	if sc.Kind == xconflict.StaleUpdate && !res.Before.OK() {
		t.Errorf("read before the race: %+v", res.Before)
	}
	if sc.InvariantCall != nil && !res.InvariantAfter.OK() {
		t.Errorf("invariant read after the race: %+v", res.InvariantAfter)
	}
}

func checkRetry(t *testing.T, sc plan.Scenario, res Result) {
	t.Helper()
	switch sc.Kind {
	case xconflict.Transition, xconflict.Capacity:
		if res.Retry != nil {
			t.Errorf("%s has a retry: %+v", sc.Kind, res.Retry)
		}
		return
	case xconflict.DeleteInUse:
		if res.Resolve == nil {
			// The delete won: there is nothing to resolve, and the item is gone.
			return
		}
		if !res.Resolve.OK() {
			t.Errorf("resolve answered %d (%s)", res.Resolve.Status, res.Resolve.Body)
		}
	}
	if !res.Retry.OK() {
		t.Fatalf("retry: %+v", res.Retry)
	}
	if sc.ReadCall != nil && sc.Kind != xconflict.DeleteInUse && !res.Final.OK() {
		t.Errorf("read after the retry: %+v", res.Final)
	}
}

// checkHeaders: every request carries the environment's headers.
func checkHeaders(t *testing.T, res Result) {
	t.Helper()
	all := append(append(append([]engine.Exchange{}, res.Setup...), res.Probe...), res.Race.Exchanges...)
	for _, x := range []*engine.Exchange{res.Before, res.After, res.Retry, res.Final} {
		if x != nil {
			all = append(all, *x)
		}
	}
	for _, x := range all {
		if _, ok := x.Request.Header["X-Test-Auth"]; !ok {
			t.Errorf("%s %s lacks the environment's header", x.Request.Method, x.Request.URL)
		}
	}
}

// checkCleanup: items are gone or listed as leftovers; orders are leftovers.
func checkCleanup(t *testing.T, base string, sc plan.Scenario, res Result) {
	t.Helper()
	var items []string
	for _, xs := range [][]engine.Exchange{res.Setup, res.ProbeSetup, res.Probe, res.Race.Exchanges} {
		for _, x := range xs {
			if x.Request.Method == http.MethodPost && x.Request.URL == base+"/items" && x.OK() {
				items = append(items, base+x.Header.Get("Location"))
			}
		}
	}
	if len(items) == 0 {
		t.Fatal("no item was created")
	}
	for _, u := range items {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		gone := resp.StatusCode == http.StatusNotFound
		left := slices.Contains(res.Leftovers, u)
		switch sc.Kind {
		case xconflict.DuplicateCreate, xconflict.StaleUpdate, xconflict.Transition:
			if !gone {
				t.Errorf("item %s still there after cleanup (GET %d)", u, resp.StatusCode)
			}
		default:
			if !gone && !left {
				t.Errorf("item %s neither deleted nor listed as a leftover", u)
			}
		}
		if gone && left {
			t.Errorf("item %s deleted but listed as a leftover", u)
		}
	}
	for _, x := range res.Race.Exchanges {
		if x.OK() && x.Request.URL == base+"/orders" && !slices.Contains(res.Leftovers, base+x.Header.Get("Location")) {
			t.Errorf("order %s not listed as a leftover %v", x.Header.Get("Location"), res.Leftovers)
		}
	}
}

func TestRunRaceFaultYieldsDuplicates(t *testing.T) {
	doc, p := loadPlan(t)
	srv := reference(t, fault.Race)
	i := slices.IndexFunc(p.Scenarios, func(sc plan.Scenario) bool { return sc.Kind == xconflict.DuplicateCreate })
	if i < 0 {
		t.Fatal("no duplicate-create scenario")
	}
	res := Run(t.Context(), p.Scenarios[i], newEnv(doc, p, srv.URL))
	if res.Error != "" {
		t.Fatalf("Error = %q", res.Error)
	}
	winners := 0
	for _, x := range res.Race.Exchanges {
		if x.OK() {
			winners++
		}
	}
	if winners < 2 {
		t.Errorf("%d winners against the racy store, want ≥ 2 (the racers did not collide)", winners)
	}
}

func TestRunSetupRejected(t *testing.T) {
	doc, p := loadPlan(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusBadRequest)
	}))
	defer srv.Close()
	i := slices.IndexFunc(p.Scenarios, func(sc plan.Scenario) bool { return len(sc.Setup) > 0 })
	res := Run(t.Context(), p.Scenarios[i], newEnv(doc, p, srv.URL))
	if res.Error == "" || len(res.Setup) != 1 || res.Setup[0].Status != http.StatusBadRequest {
		t.Fatalf("Error = %q, setup %+v", res.Error, res.Setup)
	}
	if len(res.Race.Exchanges) != 0 || len(res.Probe) != 0 {
		t.Errorf("ran on after a rejected setup: race %d, probe %d", len(res.Race.Exchanges), len(res.Probe))
	}
}

func TestRunBlocked(t *testing.T) {
	doc, p := loadPlan(t)
	sc := p.Scenarios[0]
	sc.Blocked = "needs a body"
	res := Run(t.Context(), sc, newEnv(doc, p, "http://127.0.0.1:1"))
	if !strings.Contains(res.Error, "needs a body") || len(res.Setup)+len(res.Probe)+len(res.Race.Exchanges) != 0 {
		t.Fatalf("blocked scenario: Error %q, %d setup, %d probe, %d racers", res.Error, len(res.Setup), len(res.Probe), len(res.Race.Exchanges))
	}
}

func TestRunCancelled(t *testing.T) {
	doc, p := loadPlan(t)
	srv := reference(t, fault.None)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	res := Run(ctx, p.Scenarios[0], newEnv(doc, p, srv.URL))
	if res.Error == "" || len(res.Race.Exchanges) != 0 {
		t.Fatalf("Error = %q, race %d exchanges", res.Error, len(res.Race.Exchanges))
	}
}

// TestRunRetriesWithoutOverlap: a single racer never overlaps, so every kind races again up to
// the attempts: on a fresh subject, and with a fresh key where the last one is spent
// (duplicate-create, idempotency-key).
func TestRunRetriesWithoutOverlap(t *testing.T) {
	doc, p := loadPlan(t)
	srv := reference(t, fault.None)
	env := newEnv(doc, p, srv.URL)
	for _, kind := range []xconflict.Kind{xconflict.Transition, xconflict.IdempotencyKey, xconflict.DuplicateCreate} {
		t.Run(string(kind), func(t *testing.T) {
			i := slices.IndexFunc(p.Scenarios, func(sc plan.Scenario) bool { return sc.Kind == kind })
			sc := p.Scenarios[i]
			sc.Concurrency = 1
			res := Run(t.Context(), sc, env)
			if res.Error != "" {
				t.Fatalf("Error = %q", res.Error)
			}
			want := env.Attempts
			if want == 0 {
				want = DefaultAttempts
			}
			if res.Attempts != want || res.Overlapped {
				t.Errorf("Attempts = %d, Overlapped = %v; want %d, false", res.Attempts, res.Overlapped, want)
			}
			if len(res.Race.Exchanges) != 1 || !res.Race.Exchanges[0].OK() {
				t.Fatalf("last attempt: %v", statuses(res.Race.Exchanges))
			}
			if kind == xconflict.DuplicateCreate {
				body, _ := sc.Racers[0].Body.(map[string]any)
				var sent struct{ Sku string }
				_ = json.Unmarshal(res.Race.Exchanges[0].Request.Body, &sent)
				if sku, _ := body["sku"].(string); sku == "" || sent.Sku == "" || sent.Sku == sku {
					t.Errorf("last attempt sent %s, the first attempt's key %q again", res.Race.Exchanges[0].Request.Body, sku)
				}
			}
			if kind == xconflict.Transition && res.Race.Exchanges[0].Request.URL != res.Before.Request.URL+"/cancel" {
				t.Errorf("last attempt raced %s, not the subject read before it (%s)", res.Race.Exchanges[0].Request.URL, res.Before.Request.URL)
			}
		})
	}
}

// TestUncollided: an idempotency-key race is fired again only when every racer got the one same
// success (served one after another); distinct bodies, a rejection or a single racer is a
// collision worth judging.
func TestUncollided(t *testing.T) {
	ok := func(body string) engine.Exchange { return engine.Exchange{Status: 201, Body: []byte(body)} }
	tests := []struct {
		name string
		xs   []engine.Exchange
		want bool
	}{
		{"all replays", []engine.Exchange{ok(`{"id":"a"}`), ok(`{"id":"a"}`), ok(`{"id":"a"}`)}, true},
		{"two executions", []engine.Exchange{ok(`{"id":"a"}`), ok(`{"id":"b"}`)}, false},
		{"one in flight", []engine.Exchange{ok(`{"id":"a"}`), {Status: 409, Body: []byte(`{}`)}}, false},
		{"a transport error", []engine.Exchange{ok(`{"id":"a"}`), {Err: &engine.TransportError{Kind: engine.ErrReset}}}, false},
		{"one racer", []engine.Exchange{ok(`{"id":"a"}`)}, false},
	}
	for _, tt := range tests {
		if got := uncollided(tt.xs); got != tt.want {
			t.Errorf("%s: uncollided = %v, want %v", tt.name, got, tt.want)
		}
	}
}

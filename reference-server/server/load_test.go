package server_test

import (
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/pgtest"
	"github.com/conflictcheck/conflictcheck/internal/racetest"
	"github.com/conflictcheck/conflictcheck/reference-server/server"
)

var loadRequests = flag.Int("load.requests", 10_000, "racing requests per BenchmarkConflictLoad run")

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

// loadResult is what a load run measured.
type loadResult struct {
	requests     int
	elapsed      time.Duration
	latencies    []time.Duration
	serverErrors int // 5xx answers
	lostUpdates  int // rounds where more than one stale update won, or the version moved more than once
	duplicates   int // rounds where a sku ended up on more than one item
	oversold     int // rounds where more orders won than there was stock
	otherBreaks  []string
}

func (r loadResult) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.latencies)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1))]
}

// loader fires rounds of racing conflicting requests at targets (round-robin) and checks the
// invariants after each round.
type loader struct {
	tb    testing.TB
	rc    *racetest.Client
	res   loadResult
	round int
}

// send sends one setup or verification request to target i; it is not measured.
func (l *loader) send(i int, method, path string, body any, hdr ...string) racetest.Reply {
	r := l.rc.Do(l.tb.Context(), i, racetest.Request{Method: method, Path: path, Body: body, Header: hdr})
	if r.Err != nil {
		l.tb.Error(r.Err)
	}
	return r
}

// race sends n requests built by mk at once, recording latencies and 5xx, and counts statuses.
func (l *loader) race(n int, mk func(i int) (method, path string, body any, hdr []string)) map[int]int {
	replies := l.rc.Collide(l.tb.Context(), n, func(i int) racetest.Request {
		m, p, b, h := mk(i)
		return racetest.Request{Method: m, Path: p, Body: b, Header: h}
	})
	for _, r := range replies {
		if r.Err != nil {
			l.tb.Error(r.Err)
		}
		if r.Status >= 500 {
			l.res.serverErrors++
		}
		l.res.latencies = append(l.res.latencies, r.Latency)
	}
	l.res.requests += n
	return racetest.Statuses(replies)
}

func (l *loader) create(sku string, stock int) string {
	a := l.send(0, "POST", "/items", map[string]any{"sku": sku, "name": "n", "price": 1, "stock": stock})
	if a.Status != 201 {
		l.tb.Fatalf("setup create %s: %d %s", sku, a.Status, a.Body)
	}
	return a.Object()["id"].(string)
}

func (l *loader) broke(format string, args ...any) {
	l.res.otherBreaks = append(l.res.otherBreaks, fmt.Sprintf(format, args...))
}

// runRound fires one round of one conflict kind with n racers.
func (l *loader) runRound(n int) {
	l.round++
	sku := fmt.Sprintf("LOAD-%d-%d", time.Now().UnixNano(), l.round)
	switch l.round % 6 {
	case 0: // duplicate create
		c := l.race(n, func(i int) (string, string, any, []string) {
			return "POST", "/items", map[string]any{"sku": sku, "name": fmt.Sprint(i), "price": 1, "stock": 1}, nil
		})
		list := l.send(1, "GET", "/items?sku="+sku, nil)
		if c[201] != 1 || len(list.Object()["items"].([]any)) != 1 {
			l.res.duplicates++
		}
	case 1: // stale PATCH
		id := l.create(sku, 1)
		c := l.race(n, func(i int) (string, string, any, []string) {
			return "PATCH", "/items/" + id, map[string]any{"version": 1, "name": fmt.Sprint(i)}, nil
		})
		if got := l.send(1, "GET", "/items/"+id, nil); c[200] != 1 || got.Object()["version"] != float64(2) {
			l.res.lostUpdates++
		}
	case 2: // stale PUT
		id := l.create(sku, 1)
		c := l.race(n, func(i int) (string, string, any, []string) {
			return "PUT", "/items/" + id, map[string]any{"name": fmt.Sprint(i), "price": i, "stock": i}, []string{"If-Match", `"v1"`}
		})
		if got := l.send(1, "GET", "/items/"+id, nil); c[200] != 1 || c[412] != n-1 || got.Object()["version"] != float64(2) {
			l.res.lostUpdates++
		}
	case 3: // capacity
		const stock = 5
		id := l.create(sku, stock)
		c := l.race(n, func(int) (string, string, any, []string) {
			return "POST", "/orders", map[string]any{"itemId": id, "quantity": 1}, nil
		})
		if got := l.send(1, "GET", "/items/"+id, nil); c[201] != stock || got.Object()["stock"] != float64(0) {
			l.res.oversold++
		}
	case 4: // transition
		id := l.create(sku, 1)
		oid := l.send(0, "POST", "/orders", map[string]any{"itemId": id, "quantity": 1}).Object()["id"].(string)
		c := l.race(n, func(i int) (string, string, any, []string) {
			return "POST", "/orders/" + oid + []string{"/cancel", "/ship"}[i%2], nil, nil
		})
		if c[200] != 1 || c[409] != n-1 {
			l.broke("transition round %d: %v", l.round, c)
		}
	case 5: // one idempotency key
		id := l.create(sku, 1000)
		c := l.race(n, func(int) (string, string, any, []string) {
			return "POST", "/orders", map[string]any{"itemId": id, "quantity": 1}, []string{"Idempotency-Key", sku}
		})
		if got := l.send(1, "GET", "/items/"+id, nil); c[201]+c[409] != n || got.Object()["stock"] != float64(999) {
			l.broke("idempotency round %d: %v, stock %v", l.round, c, got.Object()["stock"])
		}
	}
}

// runLoad fires total racing requests, in rounds of racers, at the targets.
func runLoad(tb testing.TB, targets []string, total, racers int) loadResult {
	tr := &http.Transport{MaxIdleConnsPerHost: racers * 2, MaxConnsPerHost: racers * 2}
	defer tr.CloseIdleConnections()
	l := &loader{tb: tb, rc: &racetest.Client{HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}, Bases: targets}}
	start := time.Now()
	for l.res.requests < total {
		l.runRound(racers)
	}
	l.res.elapsed = time.Since(start)
	return l.res
}

// startServers starts n reference servers in process on one store configuration.
func startServers(tb testing.TB, n int, cfg server.Config) []string {
	var urls []string
	for range n {
		cfg.Addr = "127.0.0.1:0"
		s, err := server.Start(tb.Context(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = s.Close() })
		urls = append(urls, "http://"+s.Addr)
	}
	return urls
}

func loadTargets(tb testing.TB) []struct {
	name    string
	targets func() []string
} {
	return []struct {
		name    string
		targets func() []string
	}{
		{"memory", func() []string { return startServers(tb, 1, server.Config{Store: "memory"}) }},
		{"postgres", func() []string {
			return startServers(tb, 1, server.Config{Store: "postgres", DatabaseURL: pgtest.Shared(tb).CreateDB(tb)})
		}},
		{"postgres-2-replicas", func() []string {
			return startServers(tb, 2, server.Config{Store: "postgres", DatabaseURL: pgtest.Shared(tb).CreateDB(tb)})
		}},
	}
}

func checkLoad(tb testing.TB, r loadResult) {
	tb.Helper()
	if r.serverErrors+r.lostUpdates+r.duplicates+r.oversold+len(r.otherBreaks) > 0 {
		tb.Fatalf("under load: %d 5xx, %d lost updates, %d duplicates, %d oversells, other: %v",
			r.serverErrors, r.lostUpdates, r.duplicates, r.oversold, r.otherBreaks)
	}
}

// TestLoadKeepsInvariants is a small load run on every store: the same code as the benchmark.
func TestLoadKeepsInvariants(t *testing.T) {
	for _, tt := range loadTargets(t) {
		t.Run(tt.name, func(t *testing.T) {
			checkLoad(t, runLoad(t, tt.targets(), 600, 20))
		})
	}
}

// BenchmarkConflictLoad fires -load.requests racing conflicting requests (20 per round) at
// each store and reports throughput and latency; any broken invariant fails it. Run with
// -benchtime=1x: one op is the whole run.
func BenchmarkConflictLoad(b *testing.B) {
	for _, tt := range loadTargets(b) {
		b.Run(tt.name, func(b *testing.B) {
			targets := tt.targets()
			for b.Loop() {
				r := runLoad(b, targets, *loadRequests, 20)
				checkLoad(b, r)
				b.ReportMetric(float64(r.requests)/r.elapsed.Seconds(), "req/s")
				b.ReportMetric(float64(r.percentile(0.50).Microseconds()), "p50-µs")
				b.ReportMetric(float64(r.percentile(0.99).Microseconds()), "p99-µs")
				b.ReportMetric(float64(r.serverErrors), "5xx")
				b.ReportMetric(float64(r.lostUpdates), "lost-updates")
				b.ReportMetric(float64(r.duplicates), "duplicates")
			}
		})
	}
}

// TestLoadCatchesTheRaceFault proves the load run's invariant checks can fail.
func TestLoadCatchesTheRaceFault(t *testing.T) {
	targets := startServers(t, 1, server.Config{Store: "memory", Fault: "race", RaceWindow: 20 * time.Millisecond})
	r := runLoad(t, targets, 240, 20)
	if r.duplicates == 0 || r.lostUpdates == 0 || r.oversold == 0 {
		t.Fatalf("race fault under load: %d duplicates, %d lost updates, %d oversells; want each caught", r.duplicates, r.lostUpdates, r.oversold)
	}
}

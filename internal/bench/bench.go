// Package bench measures the firing engine against the in-process reference server: how close
// together each strategy's racers arrive, and how often they land inside a check-then-act gap of
// a known width. It returns data; rendering it is the caller's choice (JSON or WriteTable).
//
// Every figure is taken on the server's side. The api.Options.OnArrival hook stamps each request
// on the monotonic clock when its body has been fully read; the racers of one trial carry the
// trial's id in a header, so nothing else reaching the server can pollute a trial. The spread of
// a trial is the last racer's arrival minus the first's.
//
// Detection uses the race fault: each racer creates an item with the trial's sku, and the store
// checks that the sku is free, waits the window (store.Spin: at least the window, yielding the
// processor as real I/O would), then inserts. A second racer whose
// check runs before the first racer's insert also wins, so two or more 201s mean the racers
// reached the store less than the window apart. Each window has its own server on its own port,
// all started once at the beginning: the store's window is fixed when it is built, so separate
// servers give every window without a run-time switch inside the store, and an idle
// server costs nothing.
//
// Strategies are interleaved trial by trial, round-robin with the first one rotating, so that
// machine noise (other processes, GC, the servers sharing the CPUs) affects them all alike.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
	"github.com/conflictcheck/conflictcheck/reference-server/server"
)

// DefaultTrials is the number of trials per strategy and figure: 200 runs in well under a
// minute on two cores.
const DefaultTrials = 200

// Config says what to measure. The zero value measures the figures with DefaultTrials.
type Config struct {
	// Trials is the number of races per strategy for every figure; 0 means DefaultTrials.
	Trials int
	// Strategies are the strategies to compare; nil means engine.Strategies.
	Strategies []engine.Strategy
	// SpreadSizes are the racer counts whose arrival spread is measured; nil means 2, 8, 32.
	SpreadSizes []int
	// DetectSizes are the racer counts whose detection rate is measured; nil means 2, 8.
	DetectSizes []int
	// Gaps are the race windows to detect; nil means 1µs, 10µs, 100µs.
	Gaps []time.Duration
	// Correct runs the detection servers without the race fault, as a control: no trial may
	// then see two winners.
	Correct bool
	// Progress receives one line per finished figure (strategy, size and gap); nil is silent.
	Progress io.Writer
}

// withDefaults fills the zero fields and rejects values that cannot be measured.
func (c Config) withDefaults() (Config, error) {
	if c.Trials == 0 {
		c.Trials = DefaultTrials
	}
	if c.Strategies == nil {
		c.Strategies = engine.Strategies
	}
	if c.SpreadSizes == nil {
		c.SpreadSizes = []int{2, 8, 32}
	}
	if c.DetectSizes == nil {
		c.DetectSizes = []int{2, 8}
	}
	if c.Gaps == nil {
		c.Gaps = []time.Duration{time.Microsecond, 10 * time.Microsecond, 100 * time.Microsecond}
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Trials < 1 {
		return c, fmt.Errorf("trials must be at least 1, got %d", c.Trials)
	}
	if len(c.Strategies) == 0 {
		return c, errors.New("no strategy to measure")
	}
	for _, s := range c.Strategies {
		if s == engine.Auto || !slices.Contains(engine.Strategies, s) {
			return c, fmt.Errorf("cannot bench strategy %q (one of: h2, lastbyte, barrier)", s)
		}
	}
	for _, n := range slices.Concat(c.SpreadSizes, c.DetectSizes) {
		if n < 2 {
			return c, fmt.Errorf("a race needs at least 2 racers, got %d", n)
		}
	}
	for _, g := range c.Gaps {
		if g < 0 {
			return c, fmt.Errorf("race window must not be negative, got %v", g)
		}
	}
	return c, nil
}

// Run starts the reference servers on 127.0.0.1, measures every figure of cfg and shuts the
// servers down. Its error means the bench could not run: bad config, a server that would not
// start, a strategy none of whose trials reached the server whole, or ctx done.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Result{}, err
	}
	rec := newRecorder()
	plain, err := startServer(fault.None, 0, rec.arrive)
	if err != nil {
		return Result{}, err
	}
	defer plain.Close()
	windows := make([]*server.Server, len(cfg.Gaps))
	for i, g := range cfg.Gaps {
		f := fault.Race
		if cfg.Correct {
			f = fault.None
		}
		if windows[i], err = startServer(f, g, rec.arrive); err != nil {
			return Result{}, err
		}
		defer windows[i].Close()
	}

	b := &bench{cfg: cfg, rec: rec, engines: make([]*engine.Engine, len(cfg.Strategies))}
	for i, s := range cfg.Strategies {
		b.engines[i] = engine.New(engine.Options{Strategy: s})
	}
	res := Result{CPUs: runtime.NumCPU(), Trials: cfg.Trials, Modes: make([]Mode, len(cfg.Strategies))}
	for i, s := range cfg.Strategies {
		res.Modes[i].Strategy = s
	}
	// One unrecorded race per strategy and server first, so that no figure pays for a cold
	// start (first connections, the servers' goroutines and buffers).
	for _, srv := range append([]*server.Server{plain}, windows...) {
		if err := b.each(ctx, baseURL(srv), 2, func(int, trial) {}); err != nil {
			return Result{}, err
		}
	}
	if err := b.spreads(ctx, baseURL(plain), &res); err != nil {
		return Result{}, err
	}
	if err := b.detection(ctx, windows, &res); err != nil {
		return Result{}, err
	}
	return res, nil
}

// bench is one run's state.
type bench struct {
	cfg     Config
	rec     *recorder
	engines []*engine.Engine // one per cfg.Strategies entry
	turn    int              // rotates which strategy goes first
}

// spreads measures the arrival spread for every size.
func (b *bench) spreads(ctx context.Context, url string, res *Result) error {
	for _, n := range b.cfg.SpreadSizes {
		samples := make([][]time.Duration, len(b.engines))
		incomplete := make([]int, len(b.engines))
		for range b.cfg.Trials {
			err := b.each(ctx, url, n, func(s int, t trial) {
				if t.complete {
					samples[s] = append(samples[s], t.spread)
				} else {
					incomplete[s]++
				}
			})
			if err != nil {
				return err
			}
		}
		for s, st := range b.cfg.Strategies {
			if len(samples[s]) == 0 {
				return fmt.Errorf("%s with %d racers: no trial reached the server with every racer", st, n)
			}
			sp := Spread{N: n, P50: micros(quantile(samples[s], 0.50)), P95: micros(quantile(samples[s], 0.95)), Incomplete: incomplete[s]}
			res.Modes[s].Spread = append(res.Modes[s].Spread, sp)
			fmt.Fprintf(b.cfg.Progress, "bench: spread    %-8s N=%-2d  p50 %.1fµs  p95 %.1fµs  (%d trials, %d incomplete)\n",
				st, n, sp.P50, sp.P95, b.cfg.Trials, sp.Incomplete)
		}
	}
	return nil
}

// baseURL is the base URL of a started reference server.
func baseURL(s *server.Server) string { return "http://" + s.Addr }

// detection measures the share of trials with two or more winners for every size and window.
func (b *bench) detection(ctx context.Context, windows []*server.Server, res *Result) error {
	for _, n := range b.cfg.DetectSizes {
		for s := range res.Modes {
			res.Modes[s].Detection = append(res.Modes[s].Detection, Detection{N: n})
		}
		for g, srv := range windows {
			detected := make([]int, len(b.engines))
			errored := make([]int, len(b.engines))
			for range b.cfg.Trials {
				err := b.each(ctx, baseURL(srv), n, func(s int, t trial) {
					if t.winners >= 2 {
						detected[s]++
					}
					if t.errors > 0 {
						errored[s]++
					}
				})
				if err != nil {
					return err
				}
			}
			for s, st := range b.cfg.Strategies {
				r := Rate{Gap: b.cfg.Gaps[g], Rate: float64(detected[s]) / float64(b.cfg.Trials), Errored: errored[s]}
				d := &res.Modes[s].Detection[len(res.Modes[s].Detection)-1]
				d.Rates = append(d.Rates, r)
				fmt.Fprintf(b.cfg.Progress, "bench: detection %-8s N=%-2d  gap %-6s %5.1f%%  (%d trials, %d with transport errors)\n",
					st, n, gapKey(r.Gap), 100*r.Rate, b.cfg.Trials, r.Errored)
			}
		}
	}
	return nil
}

// each runs one trial of every strategy against url with n racers, the first strategy rotating
// from call to call, and hands each trial to record with the strategy's index.
func (b *bench) each(ctx context.Context, url string, n int, record func(s int, t trial)) error {
	b.turn++
	for k := range b.engines {
		s := (b.turn + k) % len(b.engines)
		t, err := b.race(ctx, s, url, n)
		if err != nil {
			return err
		}
		record(s, t)
	}
	return nil
}

// trial is what one race showed.
type trial struct {
	complete bool          // every racer's arrival was recorded
	spread   time.Duration // last arrival minus first, when complete
	winners  int           // racers answered 2xx
	errors   int           // racers with a transport error
}

// Headers naming a racer's trial and index, read by the arrival recorder.
const (
	trialHeader = "X-Bench-Trial"
	racerHeader = "X-Bench-Racer"
)

// race fires n racers of strategy s at url, every one creating an item with one fresh sku.
func (b *bench) race(ctx context.Context, s int, url string, n int) (trial, error) {
	if err := ctx.Err(); err != nil {
		return trial{}, fmt.Errorf("bench interrupted: %w", err)
	}
	id := b.rec.begin(n)
	reqs := make([]engine.Request, n)
	for i := range reqs {
		reqs[i] = engine.Request{
			Method: http.MethodPost,
			Path:   "/items",
			Header: http.Header{
				"Content-Type": {"application/json"},
				trialHeader:    {id},
				racerHeader:    {strconv.Itoa(i)},
			},
			Body: fmt.Appendf(nil, `{"sku":"bench-%s","name":"racer %d","price":1,"stock":1}`, id, i),
		}
	}
	out, err := b.engines[s].Fire(ctx, []string{url}, reqs)
	arrivals := b.rec.end(id)
	if err != nil {
		return trial{}, fmt.Errorf("fire %s race: %w", b.cfg.Strategies[s], err)
	}
	if err := ctx.Err(); err != nil {
		return trial{}, fmt.Errorf("bench interrupted: %w", err)
	}
	var t trial
	for _, x := range out.Exchanges {
		if x.Err != nil {
			t.errors++
		} else if x.OK() {
			t.winners++
		}
	}
	t.complete = !slices.ContainsFunc(arrivals, time.Time.IsZero)
	if t.complete {
		t.spread = slices.MaxFunc(arrivals, time.Time.Compare).Sub(slices.MinFunc(arrivals, time.Time.Compare))
	}
	return t, nil
}

// quantile is the nearest-rank q-quantile of samples (sorted in place).
func quantile(samples []time.Duration, q float64) time.Duration {
	slices.Sort(samples)
	i := int(math.Ceil(q*float64(len(samples)))) - 1
	return samples[max(i, 0)]
}

// micros is d in microseconds, to a tenth.
func micros(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)*10) / 10
}

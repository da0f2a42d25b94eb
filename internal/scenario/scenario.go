// Package scenario runs one planned conflict scenario against a target: it sets up a subject,
// probes the sequential conflict, fires the race, reads, resolves, retries and cleans up, and
// returns every exchange it observed as data for the checks to judge. It never judges or prints.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/internal/xconflict"
)

// DefaultAttempts is how many races Run tries, at most, until the racers overlap.
const DefaultAttempts = 3

// maxCleanup bounds the deletes a scenario's cleanup sends; the rest are reported as leftovers.
const maxCleanup = 64

// Env is what a scenario runs against.
type Env struct {
	Doc    *specload.Document
	Engine *engine.Engine
	// Targets are base URLs of replicas of one API; racers are spread round-robin over them,
	// sequential requests go to the first.
	Targets []string
	// Header is added to every request (auth).
	Header http.Header
	// Auth, when set, supplies further headers per request (a token from --auth-command) and
	// renews them after a 401.
	Auth Credentials
	// Attempts is how many races are tried until the racers overlap; 0 means DefaultAttempts.
	Attempts int
	// Plan is the plan the scenario comes from: it re-keys a setup that runs again (for the
	// probe's subject and for later attempts) so the new subject does not collide with the first.
	Plan *plan.Plan
}

// Result is everything a scenario run observed.
type Result struct {
	Scenario string `json:"scenario"`
	// Setup created the race's subject (the last attempt's, when the race was retried).
	Setup []engine.Exchange `json:"setup,omitempty"`
	// Probe is the sequential-conflict probe, run on its own subject created by ProbeSetup,
	// which ends with the read of the subject's version when every probe call sends that one
	// version (stale-update).
	Probe      []engine.Exchange `json:"probe,omitempty"`
	ProbeSetup []engine.Exchange `json:"probe_setup,omitempty"`
	// Before is the read before the race: the version the racers use.
	Before *engine.Exchange `json:"before,omitempty"`
	// Race is the last attempt; Attempts counts them; Overlapped is Race.Overlapped().
	Race       engine.Outcome `json:"race"`
	Attempts   int            `json:"attempts"`
	Overlapped bool           `json:"overlapped"`
	// After is the read after the race; InvariantAfter the capacity invariant's read; List
	// the duplicate-create's list of the resources that hold the racers' key.
	After          *engine.Exchange `json:"after,omitempty"`
	InvariantAfter *engine.Exchange `json:"invariant_after,omitempty"`
	List           *engine.Exchange `json:"list,omitempty"`
	// Resolve removed the cause of the conflict (delete-in-use); Retry is the loser's retry.
	Resolve *engine.Exchange `json:"resolve,omitempty"`
	Retry   *engine.Exchange `json:"retry,omitempty"`
	// Final is the read after the retry.
	Final   *engine.Exchange  `json:"final,omitempty"`
	Cleanup []engine.Exchange `json:"cleanup,omitempty"`
	// Leftovers are URLs of resources created and not deleted.
	Leftovers []string `json:"leftovers,omitempty"`
	// Backoffs are the waits on 429 Too Many Requests before a request or race was sent again;
	// AuthRefreshes counts the credentials renewed after a 401.
	Backoffs      []Backoff `json:"backoffs,omitempty"`
	AuthRefreshes int       `json:"auth_refreshes,omitempty"`
	// Error says why the scenario could not run to its end (a setup rejected, a request that
	// could not be built, a cancelled context): the checks report it, it is no verdict.
	Error string `json:"error,omitempty"`
	// BudgetSpent says the scenario stopped because the run's request budget refused a request.
	BudgetSpent bool `json:"budget_spent,omitempty"`
}

// Run executes sc against env and returns what it observed; it stops early, with Error set,
// when a step the rest depends on fails or ctx is done (its cause, if any, says why). What the
// scenario created is deleted at its end even then.
func Run(ctx context.Context, sc plan.Scenario, env Env) Result {
	r := &runner{ctx: ctx, sc: sc, env: env.withDefaults(), res: Result{Scenario: sc.ID}, seen: map[string]bool{}}
	if err := r.run(); err != nil {
		r.res.Error = err.Error()
		r.res.BudgetSpent = errors.Is(err, engine.ErrBudgetSpent)
	}
	r.cleanup(ctx)
	return r.res
}

// runner is the state of one Run.
type runner struct {
	ctx context.Context
	sc  plan.Scenario
	env Env
	res Result

	created []resource
	seen    map[string]bool
	rekeys  int // setups re-keyed so far, salting each anew
}

// withDefaults is env with DefaultAttempts when it sets none.
func (env Env) withDefaults() Env {
	if env.Attempts <= 0 {
		env.Attempts = DefaultAttempts
	}
	return env
}

// rekey asks env's plan for c with new unique values, salted with salt.
func (env Env) rekey(c plan.Call, salt string) (plan.Call, error) {
	if env.Plan == nil {
		return c, fmt.Errorf("%s must run again but the environment has no plan to re-key it", callName(c))
	}
	return env.Plan.Rekey(c, salt)
}

// subjectSalt salts the re-keyed setup of a run's n-th fresh subject (the probe's is the first).
func subjectSalt(n int) string { return fmt.Sprintf("subject-%d", n) }

// resource is something a scenario created, and whether the document lets it be deleted.
type resource struct {
	target string
	path   string
	delete bool
}

// runnable is why sc cannot be run at all, nil when it can.
func runnable(sc plan.Scenario) error {
	if sc.Blocked != "" {
		return fmt.Errorf("scenario blocked: %s", sc.Blocked)
	}
	if len(sc.Racers) == 0 {
		return errors.New("scenario has no racers")
	}
	return nil
}

func (r *runner) run() error {
	sc := r.sc
	if err := runnable(sc); err != nil {
		return err
	}
	if r.env.Engine == nil || len(r.env.Targets) == 0 {
		return errors.New("no engine or no target")
	}

	setup, err := r.setup(false)
	r.res.Setup = setup
	if err != nil {
		return err
	}
	if sc.Probe != nil {
		if err := r.probe(); err != nil {
			return err
		}
	}
	if err := r.race(); err != nil {
		return err
	}
	subject := r.subject()
	winner := r.firstWinner("")

	readBound := subject
	if r.sc.ReadsWinner {
		readBound = winner
	}
	if sc.ReadCall != nil && readBound != nil {
		if r.res.After, err = r.call(*sc.ReadCall, readBound, nil); err != nil {
			return err
		}
	}
	if sc.InvariantCall != nil && subject != nil {
		if r.res.InvariantAfter, err = r.call(*sc.InvariantCall, subject, nil); err != nil {
			return err
		}
	}
	if sc.ListCall != nil && len(r.res.Race.Exchanges) > 0 {
		if r.res.List, err = r.call(*sc.ListCall, &r.res.Race.Exchanges[0], nil); err != nil {
			return err
		}
	}
	if err := r.retry(subject); err != nil {
		return err
	}
	if sc.ReadCall != nil && r.res.Retry != nil {
		bound := readBound
		if r.sc.ReadsWinner && r.res.Retry.OK() {
			bound = r.res.Retry
		}
		if bound != nil {
			if r.res.Final, err = r.call(*sc.ReadCall, bound, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// setup runs sc.Setup, each call bound to the previous one's exchange; a non-2xx stops it.
// fresh re-keys the values that make the created resources unique, for another subject.
func (r *runner) setup(fresh bool) ([]engine.Exchange, error) {
	var out []engine.Exchange
	var prev *engine.Exchange
	salt := ""
	if fresh {
		r.rekeys++
		salt = subjectSalt(r.rekeys)
	}
	for i, c := range r.sc.Setup {
		if fresh {
			var err error
			if c, err = r.env.rekey(c, salt); err != nil {
				return out, err
			}
		}
		x, err := r.call(c, prev, nil)
		if x != nil {
			out = append(out, *x)
		}
		if err != nil {
			return out, fmt.Errorf("setup: %w", err)
		}
		if !x.OK() {
			return out, fmt.Errorf("setup %s answered %s", callName(c), statusText(x))
		}
		prev = &out[i]
	}
	return out, nil
}

// probe runs the sequential conflict on a subject of its own.
func (r *runner) probe() error {
	p := r.sc.Probe
	setup, err := r.setup(true)
	r.res.ProbeSetup = setup
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	subject := last(setup)
	var version *versionValue
	if p.SameVersion {
		if version, err = r.readVersion(subject); err != nil {
			return fmt.Errorf("probe: %w", err)
		}
	}
	n, repeat := len(p.Calls), repeats(p)
	if repeat {
		n = p.UntilRejected
	}
	for i := range n {
		x, err := r.call(p.Calls[i%len(p.Calls)], subject, version)
		if x != nil {
			r.res.Probe = append(r.res.Probe, *x)
		}
		if err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		if repeat && !x.OK() {
			break
		}
	}
	return nil
}

// repeats reports whether p sends its one call again until it is refused, at most
// p.UntilRejected times, rather than each of its calls once.
func repeats(p *plan.Probe) bool { return p.UntilRejected > 0 && len(p.Calls) == 1 }

// spendsKey reports whether a race of kind spends its racers' key (on the old subject, or by
// its winner), so that each later race is fired with a new one.
func spendsKey(kind xconflict.Kind) bool {
	return kind == xconflict.IdempotencyKey || kind == xconflict.DuplicateCreate
}

// race fires the racers, trying again on a fresh subject while they do not overlap. A race
// answered with 429 (after a wait) or 401 (after renewing the credentials) is fired again on a
// fresh subject without counting as an attempt, a bounded number of times.
func (r *runner) race() error {
	sc := r.sc
	fired, held := 0, 0
	for attempt := 1; attempt <= r.env.Attempts; {
		if fired > 0 {
			setup, err := r.setup(true)
			r.res.Setup = setup
			if err != nil {
				return fmt.Errorf("attempt %d: %w", attempt, err)
			}
		}
		subject := r.subject()
		var version *versionValue
		r.res.Before = nil
		if sc.ReadCall != nil && subject != nil && !r.sc.ReadsWinner {
			x, err := r.call(*sc.ReadCall, subject, nil)
			r.res.Before = x
			if err != nil {
				return fmt.Errorf("read before the race: %w", err)
			}
			if sc.Kind == xconflict.StaleUpdate {
				if version, err = versionOf(sc.Version, x); err != nil {
					return fmt.Errorf("read before the race: %w", err)
				}
			}
		}
		header, err := r.headers(r.ctx)
		if err != nil {
			return fmt.Errorf("race: %w", err)
		}
		reqs := make([]engine.Request, racerCount(sc))
		for i := range reqs {
			c := racer(sc, i)
			if fired > 0 && spendsKey(sc.Kind) {
				if c, err = r.env.rekey(c, fmt.Sprintf("attempt-%d", fired+1)); err != nil {
					return err
				}
			}
			req, err := r.buildWith(c, subject, version, header)
			if err != nil {
				return fmt.Errorf("racer %d: %w", i, err)
			}
			reqs[i] = req
		}
		if err := r.stopped(); err != nil {
			return fmt.Errorf("race: %w", err)
		}
		out, err := r.env.Engine.Fire(r.ctx, r.env.Targets, reqs)
		if err != nil {
			return fmt.Errorf("race: %w", err)
		}
		fired++
		r.res.Race, r.res.Attempts, r.res.Overlapped = out, attempt, out.Overlapped()
		for i, x := range out.Exchanges {
			r.track(racer(sc, i), x)
		}
		if held < maxHolds {
			again, err := r.holdOff(r.ctx, "race", out.Exchanges, header)
			if err != nil {
				return fmt.Errorf("race: %w", err)
			}
			if again {
				held++
				continue
			}
		}
		if r.res.Overlapped && !(sc.Kind == xconflict.IdempotencyKey && uncollided(out.Exchanges)) {
			break
		}
		if err := r.stopped(); err != nil {
			return fmt.Errorf("race: %w", err)
		}
		attempt++
	}
	return nil
}

// racerCount is how many racers sc fires together: its concurrency, else one per racer call.
func racerCount(sc plan.Scenario) int {
	if sc.Concurrency > 0 {
		return sc.Concurrency
	}
	return len(sc.Racers)
}

// racer is the call of sc's i-th racer: the racer calls cycled up to racerCount.
func racer(sc plan.Scenario, i int) plan.Call { return sc.Racers[i%len(sc.Racers)] }

// uncollided reports whether every racer of an idempotency-key race succeeded with the same
// body: the server answered them one after the other (the first executed, the rest replayed
// it), so the race says nothing about requests that meet in flight. Such an attempt is fired
// again on a fresh key, like one whose racers did not overlap; the last attempt is judged
// whatever it shows, so a server that always replays still passes.
func uncollided(xs []engine.Exchange) bool {
	for i := range xs {
		if !xs[i].OK() || string(xs[i].Body) != string(xs[0].Body) {
			return false
		}
	}
	return len(xs) > 1
}

// retry resolves the conflict as the kind prescribes and sends the loser's request again.
func (r *runner) retry(subject *engine.Exchange) error {
	sc := r.sc
	var err error
	switch sc.Kind {
	case xconflict.StaleUpdate:
		if r.res.After == nil || !r.res.After.OK() {
			return nil
		}
		version, verr := versionOf(sc.Version, r.res.After)
		if verr != nil {
			return fmt.Errorf("retry: %w", verr)
		}
		r.res.Retry, err = r.call(sc.Racers[0], subject, version)
	case xconflict.DeleteInUse:
		if len(sc.Racers) < 2 {
			return nil
		}
		dependent := r.firstWinner(sc.Racers[1].Operation)
		if dependent == nil {
			return nil
		}
		if sc.ResolveCall != nil {
			if r.res.Resolve, err = r.call(*sc.ResolveCall, dependent, nil); err != nil {
				return fmt.Errorf("resolve: %w", err)
			}
		}
		r.res.Retry, err = r.call(sc.Racers[0], subject, nil)
	case xconflict.DuplicateCreate, xconflict.IdempotencyKey, xconflict.Capacity:
		if sc.Retry != nil {
			r.res.Retry, err = r.call(*sc.Retry, subject, nil)
		}
	}
	if err != nil {
		return fmt.Errorf("retry: %w", err)
	}
	return nil
}

// subject is the exchange that created the race's subject (nil without setup).
func (r *runner) subject() *engine.Exchange { return last(r.res.Setup) }

// firstWinner is the first 2xx racer exchange whose call is operation op ("": any racer).
func (r *runner) firstWinner(op string) *engine.Exchange {
	for i := range r.res.Race.Exchanges {
		x := &r.res.Race.Exchanges[i]
		if (op == "" || racer(r.sc, i).Operation == op) && x.OK() {
			return x
		}
	}
	return nil
}

// versionValue is what a stale-update sends as the version: an If-Match header or a body field.
type versionValue struct {
	header string
	field  string
	value  any
}

// place puts v where a stale-update sends it, in copies of c's body and of header: the
// If-Match header, or the body member v.field. A nil v places nothing. The runner places the
// version read from the target, a dry run a placeholder, so both place it alike.
func (v *versionValue) place(c plan.Call, header http.Header) (plan.Call, http.Header, error) {
	if v == nil {
		return c, header, nil
	}
	if v.header != "" {
		header = header.Clone()
		if header == nil {
			header = http.Header{}
		}
		header.Set("If-Match", v.header)
	}
	if v.field != "" {
		body, err := runtimeexpr.Set(runtimeexpr.Clone(c.Body), v.field, v.value)
		if err != nil {
			return c, header, fmt.Errorf("set version %s: %w", v.field, err)
		}
		c.Body = body
	}
	return c, header, nil
}

// errNoVersionRead stops a probe whose calls must all send one version when the scenario has
// no read to take it from.
var errNoVersionRead = errors.New("no read operation to take the version from")

// readVersion reads the subject and returns its version.
func (r *runner) readVersion(subject *engine.Exchange) (*versionValue, error) {
	if r.sc.ReadCall == nil {
		return nil, errNoVersionRead
	}
	x, err := r.call(*r.sc.ReadCall, subject, nil)
	if x != nil {
		r.res.ProbeSetup = append(r.res.ProbeSetup, *x)
	}
	if err != nil {
		return nil, err
	}
	return versionOf(r.sc.Version, x)
}

// versionOf extracts v's version from a read.
func versionOf(v *xconflict.Version, read *engine.Exchange) (*versionValue, error) {
	if v == nil {
		return nil, nil
	}
	if !read.OK() {
		return nil, fmt.Errorf("read answered %s", statusText(read))
	}
	if v.Header != "" {
		h := read.Header.Get(v.Header)
		if h == "" {
			return nil, fmt.Errorf("read has no %s header", v.Header)
		}
		if strings.HasPrefix(h, "W/") {
			return nil, fmt.Errorf("the read's %s %s is a weak entity tag: If-Match compares strongly (RFC 9110 §13.1.1), so no write sent with it can ever succeed; the API must send strong ETags (without W/) for conditional writes", v.Header, h)
		}
		return &versionValue{header: h}, nil
	}
	e, err := runtimeexpr.Parse("$response.body#" + v.Field)
	if err != nil {
		return nil, fmt.Errorf("version field %s: %w", v.Field, err)
	}
	val, err := e.Eval(evalContext(read))
	if err != nil {
		return nil, fmt.Errorf("version field: %w", err)
	}
	return &versionValue{field: v.Field, value: val}, nil
}

// build is BuildRequest with env's headers and the version, if any, put in place.
func (r *runner) build(c plan.Call, bound *engine.Exchange, v *versionValue) (engine.Request, error) {
	header, err := r.headers(r.ctx)
	if err != nil {
		return engine.Request{}, err
	}
	return r.buildWith(c, bound, v, header)
}

// buildWith is build with the headers every request carries given.
func (r *runner) buildWith(c plan.Call, bound *engine.Exchange, v *versionValue, extra http.Header) (engine.Request, error) {
	c, extra, err := v.place(c, extra)
	if err != nil {
		return engine.Request{}, err
	}
	return BuildRequest(r.env.Doc, c, bound, extra)
}

// call sends one call on its own, recording what it creates; its error means the call could
// not be sent at all.
func (r *runner) call(c plan.Call, bound *engine.Exchange, v *versionValue) (*engine.Exchange, error) {
	x, err := r.exchange(r.ctx, callName(c), r.env.Targets[0], func() (engine.Request, error) {
		return r.build(c, bound, v)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", callName(c), err)
	}
	r.track(c, *x)
	return x, nil
}

// send fires one request at target with the engine, so that it is timed like the racers.
func (r *runner) send(ctx context.Context, target string, req engine.Request) (*engine.Exchange, error) {
	if err := ctx.Err(); err != nil {
		return nil, cause(ctx)
	}
	out, err := r.env.Engine.Fire(ctx, []string{target}, []engine.Request{req})
	if err != nil {
		return nil, err
	}
	if len(out.Exchanges) != 1 {
		return nil, fmt.Errorf("engine returned %d exchanges for one request", len(out.Exchanges))
	}
	x := out.Exchanges[0]
	return &x, nil
}

// stopped is why the run must stop firing (an interrupt, the deadline), nil while it may go on.
func (r *runner) stopped() error {
	if r.ctx.Err() == nil {
		return nil
	}
	return cause(r.ctx)
}

// cause is why ctx is done: its cause when one was given, else its error.
func cause(ctx context.Context) error {
	if c := context.Cause(ctx); c != nil {
		return c
	}
	return ctx.Err()
}

func statusText(x *engine.Exchange) string {
	switch {
	case x == nil:
		return "nothing"
	case x.Err != nil:
		return x.Err.Error()
	}
	return fmt.Sprintf("%d", x.Status)
}

func last(xs []engine.Exchange) *engine.Exchange {
	if len(xs) == 0 {
		return nil
	}
	return &xs[len(xs)-1]
}

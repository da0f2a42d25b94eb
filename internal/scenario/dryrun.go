package scenario

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/xconflict"
)

// The phases of a scenario run, in the order Run goes through them, as DryRun names its steps.
const (
	PhaseSetup      = "setup"
	PhaseProbeSetup = "probe setup"
	PhaseProbeRead  = "probe read"
	PhaseProbe      = "probe"
	PhaseBefore     = "read before"
	PhaseRace       = "race"
	PhaseAfter      = "read after"
	PhaseInvariant  = "invariant read"
	PhaseList       = "list"
	PhaseResolve    = "resolve"
	PhaseRetry      = "retry"
	PhaseFinal      = "final read"
	PhaseCleanup    = "cleanup"
	// PhaseStop is a step that sends nothing: why the run would stop there (a blocked
	// scenario, a request that cannot be built); the cleanup may follow it.
	PhaseStop = "stop"
)

// MaxResends is how often a run sends one request, or fires one race, again after the target
// answered 429 Too Many Requests or 401 Unauthorized.
const MaxResends = maxHolds

// PlannedRequest is one request a run would send: the base URL of the target it goes to, and
// the request with the values only the target's responses provide shown as placeholders.
type PlannedRequest struct {
	Target string
	engine.Request
}

// Step is one request a run of a scenario would send, or the racers fired together, with how
// often at most: what a dry run shows instead of sending it.
type Step struct {
	// Phase is one of the Phase constants.
	Phase string
	// Operation is the operationId of the call ("" for cleanup and stop steps).
	Operation string
	// Requests holds the one request of a sequential step, one per racer for the race, and
	// nothing for a step that only says something (a leftover, a stop).
	Requests []PlannedRequest
	// Times is at most how often the requests are sent while the target never pushes back;
	// TimesWithPushback when it answers 429 or 401 as often as a run tolerates.
	Times             int
	TimesWithPushback int
	// Note says when and why the step is sent, and what changes between its sends.
	Note string
}

// Bound is the most requests a run of some steps sends.
type Bound struct {
	// Requests is the bound while the target never answers 429 or 401.
	Requests int
	// WithPushback is the bound when it does, each time a run sends a request again for it.
	WithPushback int
}

// MaxRequests bounds the requests steps send.
func MaxRequests(steps []Step) Bound {
	var b Bound
	for _, s := range steps {
		b.Requests += len(s.Requests) * s.Times
		b.WithPushback += len(s.Requests) * s.TimesWithPushback
	}
	return b
}

// DryRun lists, in the order Run sends them, the requests a Run of sc against env would send,
// without sending any: setup, probe, race, reads, resolve, retry and cleanup. Values only the
// target's responses provide stand as placeholders ("{$response.body#/id of createItem}",
// "{ETag of the read before the race}", FreshPlaceholder). env.Engine is not used; env.Auth
// is not asked for credentials (its headers are not shown).
func DryRun(sc plan.Scenario, env Env) []Step {
	d := &dryRun{sc: sc, env: env.withDefaults()}
	if err := d.run(); err != nil {
		d.steps = append(d.steps, Step{Phase: PhaseStop, Note: "the run stops here: " + err.Error()})
	}
	d.cleanup()
	return d.steps
}

// dryRun is the state of one DryRun.
type dryRun struct {
	sc      plan.Scenario
	env     Env
	steps   []Step
	created []creation
}

// creation is a call that may create resources the cleanup deletes.
type creation struct {
	call plan.Call
	// template is the path template of what it creates; put says it is a PUT that creates
	// only when answered 201 Created, or 2xx when sent with If-None-Match: *.
	template string
	put      bool
	// n and nWithPushback bound how many resources it creates.
	n, nWithPushback int
}

func (d *dryRun) run() error {
	sc := d.sc
	if err := runnable(sc); err != nil {
		return err
	}
	a := d.env.Attempts
	fires := a + maxHolds // races fired at most: the attempts, and again after a 429 or 401
	subject := ""
	if len(sc.Setup) > 0 {
		subject = callName(sc.Setup[len(sc.Setup)-1])
	}
	later := ""
	if a > 1 {
		later = fmt.Sprintf("; again before each later attempt, re-keyed for a fresh subject: up to %d times", a)
	}
	if err := d.setup(PhaseSetup, sc.Setup, a, fires, "creates the race's subject"+later); err != nil {
		return err
	}
	if sc.Probe != nil {
		if err := d.probe(subject); err != nil {
			return fmt.Errorf("probe: %w", err)
		}
	}
	if err := d.race(subject, fires); err != nil {
		return err
	}

	winner := "the winning " + racerNames(sc.Racers)
	readBound, hasRead := subject, len(sc.Setup) > 0
	if sc.ReadsWinner {
		readBound, hasRead = winner, true
	}
	if sc.ReadCall != nil && hasRead {
		note := "the state after the race"
		if sc.ReadsWinner {
			note = "what the winning racer created, when a racer won"
		}
		if err := d.add(PhaseAfter, *sc.ReadCall, readBound, nil, 1, 1, note); err != nil {
			return err
		}
	}
	if sc.InvariantCall != nil && len(sc.Setup) > 0 {
		if err := d.add(PhaseInvariant, *sc.InvariantCall, subject, nil, 1, 1, "the bounded quantity after the race"); err != nil {
			return err
		}
	}
	if sc.ListCall != nil {
		if err := d.add(PhaseList, *sc.ListCall, "the first racer", nil, 1, 1, "the resources holding the racers' key"); err != nil {
			return err
		}
	}
	retried, err := d.retry(subject)
	if err != nil {
		return err
	}
	if sc.ReadCall != nil && retried && hasRead {
		of := readBound
		if sc.ReadsWinner {
			of = "the retry"
		}
		if err := d.add(PhaseFinal, *sc.ReadCall, of, nil, 1, 1, "the state after the retry"); err != nil {
			return err
		}
	}
	return nil
}

// setup lists calls, each bound to the previous one.
func (d *dryRun) setup(phase string, calls []plan.Call, times, refired int, note string) error {
	for i, c := range calls {
		of := ""
		if i > 0 {
			of = callName(calls[i-1])
		}
		if err := d.add(phase, c, of, nil, times, refired, note); err != nil {
			return fmt.Errorf("setup %s: %w", callName(c), err)
		}
	}
	return nil
}

// probe lists the sequential conflict: its own subject (re-keyed as Run re-keys it), the read
// of its version, and its calls.
func (d *dryRun) probe(subject string) error {
	p := d.sc.Probe
	if len(d.sc.Setup) > 0 {
		// The probe's subject is the run's first fresh one.
		calls := make([]plan.Call, len(d.sc.Setup))
		for i, c := range d.sc.Setup {
			var err error
			if calls[i], err = d.env.rekey(c, subjectSalt(1)); err != nil {
				return err
			}
		}
		if err := d.setup(PhaseProbeSetup, calls, 1, 1, "creates the probe's own subject, re-keyed"); err != nil {
			return err
		}
	}
	var v *versionValue
	if p.SameVersion {
		if d.sc.ReadCall == nil {
			return errNoVersionRead
		}
		if err := d.add(PhaseProbeRead, *d.sc.ReadCall, subject, nil, 1, 1, "the version every probe call sends"); err != nil {
			return err
		}
		v = d.version("the probe's read")
	}
	if repeats(p) {
		note := fmt.Sprintf("up to %d times, until it is refused", p.UntilRejected)
		return d.add(PhaseProbe, p.Calls[0], subject, v, p.UntilRejected, p.UntilRejected, note)
	}
	for i, c := range p.Calls {
		note := "the plain conflicting request, alone"
		if i < len(p.Calls)-1 {
			note = "succeeds, so that the next one conflicts"
		}
		if err := d.add(PhaseProbe, c, subject, v, 1, 1, note); err != nil {
			return err
		}
	}
	return nil
}

// race lists the read before the race and the racers, fired together once per attempt.
func (d *dryRun) race(subject string, fires int) error {
	sc, a := d.sc, d.env.Attempts
	var v *versionValue
	if sc.ReadCall != nil && len(sc.Setup) > 0 && !sc.ReadsWinner {
		note := "the subject before the race"
		if sc.Kind == xconflict.StaleUpdate && sc.Version != nil {
			note = "the version every racer sends"
		}
		if a > 1 {
			note += fmt.Sprintf("; before each attempt: up to %d times", a)
		}
		if err := d.add(PhaseBefore, *sc.ReadCall, subject, nil, a, fires, note); err != nil {
			return fmt.Errorf("read before the race: %w", err)
		}
		if sc.Kind == xconflict.StaleUpdate {
			v = d.version("the read before the race")
		}
	}
	n := racerCount(sc)
	step := Step{Phase: PhaseRace, Operation: sc.Operation, Times: a, TimesWithPushback: fires}
	for i := range n {
		c := racer(sc, i)
		req, err := d.build(c, subject, v)
		if err != nil {
			return fmt.Errorf("racer %d: %w", i, err)
		}
		step.Requests = append(step.Requests, PlannedRequest{Target: d.target(i), Request: req})
	}
	until := "until the racers overlap"
	if sc.Kind == xconflict.IdempotencyKey {
		until = "until the racers overlap and meet in flight"
	}
	notes := []string{"fired together once"}
	if a > 1 {
		notes[0] = fmt.Sprintf("fired together; up to %d attempts, %s", a, until)
	}
	var fresh []string
	if len(sc.Setup) > 0 {
		fresh = append(fresh, "on a fresh subject")
	}
	if spendsKey(sc.Kind) {
		fresh = append(fresh, "with a fresh key")
	}
	if len(fresh) > 0 && a > 1 {
		notes = append(notes, "each later one "+strings.Join(fresh, " and "))
	}
	if len(d.env.Targets) > 1 {
		notes = append(notes, fmt.Sprintf("spread over the %d targets", len(d.env.Targets)))
	}
	step.Note = strings.Join(notes, "; ")
	d.steps = append(d.steps, step)
	for _, c := range uniqueCalls(sc.Racers) {
		k := 0
		for i := range n {
			if r := racer(sc, i); r.Operation == c.Operation && r.Path == c.Path {
				k++
			}
		}
		d.creates(c, k, a, fires)
	}
	return nil
}

// retry lists the resolution and the loser's retry as the kind prescribes; it reports whether
// there is a retry.
func (d *dryRun) retry(subject string) (bool, error) {
	sc := d.sc
	switch sc.Kind {
	case xconflict.StaleUpdate:
		if sc.ReadCall == nil || len(sc.Setup) == 0 && !sc.ReadsWinner {
			return false, nil
		}
		v := d.version("the read after the race")
		if err := d.add(PhaseRetry, sc.Racers[0], subject, v, 1, 1, "the loser's write again, with the version read after the race"); err != nil {
			return false, fmt.Errorf("retry: %w", err)
		}
		return true, nil
	case xconflict.DeleteInUse:
		if len(sc.Racers) < 2 {
			return false, nil
		}
		dependent := "the winning " + callName(sc.Racers[1])
		if sc.ResolveCall != nil {
			if err := d.add(PhaseResolve, *sc.ResolveCall, dependent, nil, 1, 1, "removes the dependent, when one was created"); err != nil {
				return false, fmt.Errorf("resolve: %w", err)
			}
		}
		if err := d.add(PhaseRetry, sc.Racers[0], subject, nil, 1, 1, "the refused request again once the dependent is gone, when the dependent won"); err != nil {
			return false, fmt.Errorf("retry: %w", err)
		}
		return true, nil
	case xconflict.DuplicateCreate, xconflict.IdempotencyKey, xconflict.Capacity:
		if sc.Retry == nil {
			return false, nil
		}
		if err := d.add(PhaseRetry, *sc.Retry, subject, nil, 1, 1, "the loser's request with what collided changed"); err != nil {
			return false, fmt.Errorf("retry: %w", err)
		}
		return true, nil
	}
	return false, nil
}

// version is the stale-update version taken from the read named from, as a placeholder where
// versionOf puts the value it reads: nil when the scenario has none.
func (d *dryRun) version(from string) *versionValue {
	v := d.sc.Version
	switch {
	case v == nil:
		return nil
	case v.Header != "":
		return &versionValue{header: fmt.Sprintf("{%s of %s}", v.Header, from)}
	}
	return &versionValue{field: v.Field, value: fmt.Sprintf("{%s of %s}", v.Field, from)}
}

// add lists the sequential call c bound to the response of the call named of, sent times
// times, or refired times when races are fired again after a 429 or 401 (each send then
// possibly sent again itself).
func (d *dryRun) add(phase string, c plan.Call, of string, v *versionValue, times, refired int, note string) error {
	req, err := d.build(c, of, v)
	if err != nil {
		return err
	}
	d.steps = append(d.steps, Step{Phase: phase, Operation: c.Operation, Requests: []PlannedRequest{{Target: d.target(0), Request: req}},
		Times: times, TimesWithPushback: refired * (1 + maxHolds), Note: note})
	d.creates(c, 1, times, refired)
	return nil
}

// target is the base URL of the i-th of requests sent together, round-robin as the engine
// spreads racers, so a sequential request's is the first; "" without targets.
func (d *dryRun) target(i int) string {
	if len(d.env.Targets) == 0 {
		return ""
	}
	return d.env.Targets[i%len(d.env.Targets)]
}

// build is the runner's build with placeholders: env's headers, the version where the runner
// puts it, and every runtime expression shown as evaluated against the response of of.
func (d *dryRun) build(c plan.Call, of string, v *versionValue) (engine.Request, error) {
	c, extra, err := v.place(c, d.env.Header)
	if err != nil {
		return engine.Request{}, err
	}
	return buildPlaceholders(d.env.Doc, c, extra, func(expr string) string {
		if of == "" {
			return "{" + expr + "}"
		}
		return "{" + expr + " of " + of + "}"
	})
}

// creates records that c, sent perSend requests at a time, times (timesWithPushback) times,
// may create resources: a POST on a collection with an item path, or a PUT-to-create
// (one resource per target for the requests sent together, which share their path).
func (d *dryRun) creates(c plan.Call, perSend, times, timesWithPushback int) {
	switch c.Method {
	case http.MethodPost:
		if template, _ := itemTemplate(d.env.Doc, c.Path); template != "" {
			d.created = append(d.created, creation{call: c, template: template, n: perSend * times, nWithPushback: perSend * timesWithPushback})
		}
	case http.MethodPut:
		k := min(perSend, max(len(d.env.Targets), 1))
		d.created = append(d.created, creation{call: c, template: c.Path, put: true, n: k * times, nWithPushback: k * timesWithPushback})
	}
}

// cleanup lists the deletes of what the run may create, newest first like the runner, within
// its bound of deletes, and says what is left over for want of a delete operation.
func (d *dryRun) cleanup() {
	type group struct {
		template         string
		ops, putOps      []string
		n, nWithPushback int
		delete           bool
	}
	var groups []*group
	for i := len(d.created) - 1; i >= 0; i-- {
		c := d.created[i]
		j := slices.IndexFunc(groups, func(g *group) bool { return g.template == c.template })
		if j < 0 {
			groups = append(groups, &group{template: c.template, delete: hasOperation(d.env.Doc, http.MethodDelete, c.template)})
			j = len(groups) - 1
		}
		g := groups[j]
		g.n += c.n
		g.nWithPushback += c.nWithPushback
		name := callName(c.call)
		if c.put && !slices.Contains(g.putOps, name) {
			g.putOps = append(g.putOps, name)
		} else if !c.put && !slices.Contains(g.ops, name) {
			g.ops = append(g.ops, name)
		}
	}
	left, leftWithPushback := maxCleanup, maxCleanup
	for _, g := range groups {
		slices.Sort(g.ops)
		slices.Sort(g.putOps)
		by := slices.Clone(g.ops)
		for _, op := range g.putOps {
			by = append(by, op+" (when it creates: 201 Created, or 2xx to If-None-Match: *)")
		}
		what := fmt.Sprintf("%s creates at %s", strings.Join(by, " or "), g.template)
		if !g.delete {
			d.steps = append(d.steps, Step{Phase: PhaseCleanup, Note: fmt.Sprintf("not deleted: what %s, for the document has no DELETE %s", what, g.template)})
			continue
		}
		n, nw := min(g.n, left), min(g.nWithPushback, leftWithPushback)
		left, leftWithPushback = left-n, leftWithPushback-nw
		if n == 0 && nw == 0 {
			continue
		}
		note := fmt.Sprintf("created resources are deleted, newest first, up to %d: each one %s, at the path the response gives", n, what)
		if len(d.env.Targets) > 1 {
			note += ", on the target that created it"
		}
		d.steps = append(d.steps, Step{Phase: PhaseCleanup,
			Requests:          []PlannedRequest{{Target: d.target(0), Request: engine.Request{Method: http.MethodDelete, Path: g.template, Header: d.env.Header.Clone()}}},
			Times:             n,
			TimesWithPushback: nw * (1 + maxHolds),
			Note:              note,
		})
	}
}

// racerNames names the racers' operations: one name when they all call the same.
func racerNames(racers []plan.Call) string {
	var names []string
	for _, c := range uniqueCalls(racers) {
		names = append(names, callName(c))
	}
	if len(names) == 1 {
		return names[0]
	}
	return "racer (" + strings.Join(names, " or ") + ")"
}

// uniqueCalls are calls without repeats of one operation on one path, in order.
func uniqueCalls(calls []plan.Call) []plan.Call {
	var out []plan.Call
	for _, c := range calls {
		if !slices.ContainsFunc(out, func(o plan.Call) bool { return o.Operation == c.Operation && o.Path == c.Path }) {
			out = append(out, c)
		}
	}
	return out
}

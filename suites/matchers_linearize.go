package suites

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/onsi/gomega/types"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/linearize"
	"github.com/conflictcheck/conflictcheck/internal/scenario"
	"github.com/conflictcheck/conflictcheck/internal/xconflict"
)

// LinearizeTimeout bounds BeLinearizable's search.
const LinearizeTimeout = 5 * time.Second

// Client ids of the sequential requests around the race, apart from the racers' indexes.
const (
	clientBefore = 1000 + iota
	clientAfter
	clientRetry
	clientFinal
	clientResolve
)

// BeLinearizable is the linearizable check: the history of the race and the reads and retry
// around it is linearizable against the kind's model: stale-update a Register (value: the
// written members but the version), duplicate-create a KeySet (the racers' creates), transition
// a StateMachine (edges from the read before to each racer operation's observed new state),
// capacity a Counter (initial quantity from the subject's creation, one unit per take),
// idempotency-key Idempotency (key: the header, payload: the body, id: the created id),
// delete-in-use DeleteInUse (the delete, the dependent creations, the resolution as a release,
// the retried delete and the reads of the subject). Other kinds return an error: no model. A transition's initial state is the read before the race,
// else the subject's creation response; a read before that misses the subject (404) is a read
// of no state, which no order explains.
//
// Racers run from WriteStart to FirstByte (Done when there is none); a 2xx is Succeeded, a 4xx
// Rejected, a 5xx or transport error Unknown. The reads and the retry were timed each on their
// own clock, so they are placed in program order: the read before ends before the first racer
// starts, the read after starts after the last racer answered, then the retry, then the read
// after it.
func BeLinearizable() types.GomegaMatcher {
	return BeLinearizableIn("")
}

// BeLinearizableIn is BeLinearizable that, when dir is not empty, writes porcupine's view of a
// history that is not linearizable into dir and names the file in the failure.
func BeLinearizableIn(dir string) types.GomegaMatcher {
	return newCheck(CheckLinearizable, func(ev *Evidence) (string, error) {
		if err := raced(ev); err != nil {
			return "", err
		}
		k, ok := histories[ev.Scenario.Kind]
		if !ok {
			return "", fmt.Errorf("%w: no model for kind %s", ErrNotApplicable, ev.Scenario.Kind)
		}
		m, hist, err := k.build(ev)
		if err != nil {
			return "", err
		}
		res, err := linearize.Check(m, hist, LinearizeTimeout)
		if err != nil {
			return "", fmt.Errorf("check history: %w", err)
		}
		switch res.Verdict {
		case linearize.VerdictOK:
			return "", nil
		case linearize.VerdictViolation:
			rows := racerRows(ev)
			if k.shown != nil {
				for _, x := range k.shown(&ev.Result) {
					if x.x != nil {
						rows = append(rows, x)
					}
				}
			}
			var details []string
			if dir != "" {
				path := filepath.Join(dir, VisualizationFile(ev.Scenario.ID))
				if err := res.WriteVisualization(path); err != nil {
					details = append(details, "visualization not written: "+err.Error())
				} else {
					details = append(details, "visualization: "+path)
				}
			}
			return failf(CheckLinearizable, ev, rows, details, "no order of the %d requests explains the responses (model %s)", len(hist), m.Name()), nil
		}
		return "", fmt.Errorf("%w: the linearizability search ran out of time", ErrNoEvidence)
	})
}

// kindHistory is how BeLinearizable judges one kind: the model and history it builds, and the
// sequential exchanges a violation shows below the racers (nil ones are left out).
type kindHistory struct {
	build func(ev *Evidence) (linearize.Model, []linearize.Op, error)
	shown func(r *scenario.Result) []row
}

// histories are the kinds BeLinearizable has a model for.
var histories = map[xconflict.Kind]kindHistory{
	xconflict.StaleUpdate: {registerHistory, func(r *scenario.Result) []row {
		return []row{{"before", r.Before}, {"after", r.After}, {"retry", r.Retry}, {"final", r.Final}}
	}},
	xconflict.DuplicateCreate: {keySetHistory, nil},
	xconflict.Transition: {machineHistory, func(r *scenario.Result) []row {
		return []row{{"before", r.Before}, {"after", r.After}}
	}},
	xconflict.Capacity: {counterHistory, func(r *scenario.Result) []row {
		return []row{{"invariant", r.InvariantAfter}, {"retry", r.Retry}}
	}},
	xconflict.IdempotencyKey: {idempotencyHistory, nil},
	xconflict.DeleteInUse: {deleteHistory, func(r *scenario.Result) []row {
		return []row{{"after", r.After}, {"resolve", r.Resolve}, {"retry", r.Retry}, {"final", r.Final}}
	}},
}

// timeline places the racers and the sequential requests on one clock (see BeLinearizable).
type timeline struct {
	offset time.Duration // added to race times
	next   time.Duration // the start of the next sequential request
}

func newTimeline(race []engine.Exchange) *timeline {
	t := &timeline{offset: 2}
	for _, x := range race {
		t.next = max(t.next, t.offset+returnOf(x)+1, t.offset+x.WriteStart+1)
	}
	return t
}

// racer is the op of racer i.
func (t *timeline) racer(i int, x engine.Exchange, a linearize.Action, o linearize.Outcome) linearize.Op {
	o.Status = statusClass(x)
	ret := t.offset + returnOf(x)
	if o.Status == linearize.Unknown && x.Done == 0 {
		ret = 0
	}
	return linearize.Op{Client: i, Call: t.offset + x.WriteStart, Return: ret, Action: a, Outcome: o,
		Label: fmt.Sprintf("racer %d %s → %s", i, x.Request.Method, statusOf(&x))}
}

// before is the op of the read before the race.
func (t *timeline) before(a linearize.Action, o linearize.Outcome) linearize.Op {
	return linearize.Op{Client: clientBefore, Call: 0, Return: 1, Action: a, Outcome: o, Label: "read before"}
}

// after appends a sequential op after everything so far.
func (t *timeline) after(client int, label string, x *engine.Exchange, a linearize.Action, o linearize.Outcome) linearize.Op {
	o.Status = statusClass(*x)
	op := linearize.Op{Client: client, Call: t.next, Return: t.next + 1, Action: a, Outcome: o, Label: label + " → " + statusOf(x)}
	t.next += 2
	return op
}

func returnOf(x engine.Exchange) time.Duration {
	if x.FirstByte > 0 {
		return x.FirstByte
	}
	return x.Done
}

func statusClass(x engine.Exchange) linearize.Status {
	switch {
	case x.OK():
		return linearize.Succeeded
	case x.Err == nil && x.Status >= 400 && x.Status < 500:
		return linearize.Rejected
	}
	return linearize.Unknown
}

// registerHistory builds a stale-update history.
func registerHistory(ev *Evidence) (linearize.Model, []linearize.Op, error) {
	sc := ev.Scenario
	r := &ev.Result
	if !r.Before.OK() || r.After == nil {
		return linearize.Model{}, nil, fmt.Errorf("%w: the reads around the race are missing", ErrNoEvidence)
	}
	var names []string
	for _, x := range r.Race.Exchanges {
		for k := range written(sc, &x) {
			if !slices.Contains(names, k) {
				names = append(names, k)
			}
		}
	}
	slices.Sort(names)
	value := func(m map[string]any) string {
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = n + "=" + compact(m[n])
		}
		return strings.Join(parts, ",")
	}
	m := linearize.Register(versionOf(sc, r.Before), value(leaves(r.Before.Body)))
	t := newTimeline(r.Race.Exchanges)
	var hist []linearize.Op
	for i, x := range r.Race.Exchanges {
		a := linearize.Action{Verb: linearize.Write, Version: sentVersion(sc, &x), Value: value(written(sc, &x))}
		o := linearize.Outcome{}
		if x.OK() {
			o.Version = versionOf(sc, &x)
		}
		hist = append(hist, t.racer(i, x, a, o))
	}
	read := func(client int, label string, x *engine.Exchange) {
		if x == nil || x.Err != nil {
			return
		}
		o := linearize.Outcome{Version: versionOf(sc, x), Value: value(leaves(x.Body))}
		hist = append(hist, t.after(client, label, x, linearize.Action{Verb: linearize.Read}, o))
	}
	read(clientAfter, "read after", r.After)
	if r.Retry != nil {
		a := linearize.Action{Verb: linearize.Write, Version: sentVersion(sc, r.Retry), Value: value(written(sc, r.Retry))}
		o := linearize.Outcome{}
		if r.Retry.OK() {
			o.Version = versionOf(sc, r.Retry)
		}
		hist = append(hist, t.after(clientRetry, "retry", r.Retry, a, o))
		read(clientFinal, "read after the retry", r.Final)
	}
	hist = append(hist, t.before(linearize.Action{Verb: linearize.Read}, linearize.Outcome{Status: linearize.Succeeded, Version: versionOf(sc, r.Before), Value: value(leaves(r.Before.Body))}))
	return m, hist, nil
}

// keySetHistory builds a duplicate-create history of the racers' creates.
func keySetHistory(ev *Evidence) (linearize.Model, []linearize.Op, error) {
	sc := ev.Scenario
	t := newTimeline(ev.Result.Race.Exchanges)
	var hist []linearize.Op
	for i, x := range ev.Result.Race.Exchanges {
		hist = append(hist, t.racer(i, x, linearize.Action{Verb: linearize.Create, Key: keyOf(sc.Key, x.Request.Body)}, linearize.Outcome{}))
	}
	return linearize.KeySet(), hist, nil
}

// keyOf is the unique key of a create: the members at the key pointers, else the whole body.
func keyOf(key []string, body []byte) string {
	if len(key) == 0 {
		return compact(jsonBody(body))
	}
	parts := make([]string, len(key))
	for i, k := range key {
		v, _ := pointer(body, k)
		parts[i] = k + "=" + compact(v)
	}
	return strings.Join(parts, ",")
}

// machineHistory builds a transition history: the read before, the racers and the read after.
func machineHistory(ev *Evidence) (linearize.Model, []linearize.Op, error) {
	sc := ev.Scenario
	r := &ev.Result
	// The initial state: the read before the race, else the subject's creation response.
	var before map[string]any
	if r.Before.OK() {
		before = members(r.Before.Body)
	} else if x := subjectCreated(r); x != nil {
		before = members(x.Body)
	}
	if before == nil {
		return linearize.Model{}, nil, fmt.Errorf("%w: neither a read before the race nor the subject's creation", ErrNoEvidence)
	}
	xs := r.Race.Exchanges
	field := ""
	for _, i := range winners(xs) {
		if field = stateField(before, members(xs[i].Body)); field != "" {
			break
		}
	}
	if field == "" {
		return linearize.Model{}, nil, fmt.Errorf("%w: no racer's response shows the state it moved to", ErrNoEvidence)
	}
	initial, _ := before[field].(string)
	edges := map[string]linearize.Edge{}
	for i, x := range xs {
		op := racerCall(sc, i).Operation
		if _, ok := edges[op]; ok && !x.OK() {
			continue
		}
		to := "after " + op
		if x.OK() {
			if s, ok := members(x.Body)[field].(string); ok {
				to = s
			}
		}
		if e, ok := edges[op]; !ok || strings.HasPrefix(e.To, "after ") {
			edges[op] = linearize.Edge{From: []string{initial}, To: to}
		}
	}
	m := linearize.StateMachine(initial, edges)
	t := newTimeline(xs)
	var hist []linearize.Op
	if r.Before != nil && r.Before.Err == nil && r.Before.Status < 500 {
		// A read that misses the subject its creation answered sees no state at all.
		seen, _ := members(r.Before.Body)[field].(string)
		if !r.Before.OK() {
			seen = ""
		}
		hist = append(hist, t.before(linearize.Action{Verb: linearize.Read}, linearize.Outcome{Status: linearize.Succeeded, State: seen}))
	}
	for i, x := range xs {
		hist = append(hist, t.racer(i, x, linearize.Action{Verb: linearize.Transition, Name: racerCall(sc, i).Operation}, linearize.Outcome{}))
	}
	if r.After.OK() {
		s, _ := members(r.After.Body)[field].(string)
		hist = append(hist, t.after(clientAfter, "read after", r.After, linearize.Action{Verb: linearize.Read}, linearize.Outcome{State: s}))
	}
	return m, hist, nil
}

// counterHistory builds a capacity history: each racer and the retry take one unit, the
// invariant read after the race counts what is left above the minimum.
func counterHistory(ev *Evidence) (linearize.Model, []linearize.Op, error) {
	sc := ev.Scenario
	r := &ev.Result
	if sc.Invariant == nil {
		return linearize.Model{}, nil, fmt.Errorf("%w: capacity scenario without an invariant", ErrNotApplicable)
	}
	initial, ok := initialQuantity(ev)
	if !ok {
		return linearize.Model{}, nil, fmt.Errorf("%w: the initial quantity is unknown", ErrNoEvidence)
	}
	lo := floor(sc.Invariant)
	m := linearize.Counter(int(initial - lo))
	t := newTimeline(r.Race.Exchanges)
	var hist []linearize.Op
	take := linearize.Action{Verb: linearize.Take, N: 1}
	for i, x := range r.Race.Exchanges {
		hist = append(hist, t.racer(i, x, take, linearize.Outcome{}))
	}
	if x := r.InvariantAfter; x.OK() {
		if v, ok := number(pointer(x.Body, sc.Invariant.Field)); ok {
			hist = append(hist, t.after(clientAfter, "invariant read", x, linearize.Action{Verb: linearize.Read}, linearize.Outcome{Count: int(v - lo)}))
		}
	}
	if r.Retry != nil {
		hist = append(hist, t.after(clientRetry, "retry", r.Retry, take, linearize.Outcome{}))
	}
	return m, hist, nil
}

// idempotencyHistory builds an idempotency-key history of the racers' requests.
func idempotencyHistory(ev *Evidence) (linearize.Model, []linearize.Op, error) {
	sc := ev.Scenario
	if sc.Header == "" {
		return linearize.Model{}, nil, fmt.Errorf("%w: no idempotency header", ErrNotApplicable)
	}
	t := newTimeline(ev.Result.Race.Exchanges)
	var hist []linearize.Op
	for i, x := range ev.Result.Race.Exchanges {
		a := linearize.Action{Verb: linearize.Request, Key: http.Header(x.Request.Header).Get(sc.Header), Value: compact(jsonBody(x.Request.Body))}
		o := linearize.Outcome{}
		if x.OK() {
			o.ID = createdID(&x)
		}
		hist = append(hist, t.racer(i, x, a, o))
	}
	return linearize.Idempotency(), hist, nil
}

// deleteHistory builds a delete-in-use history: the racers, the read after, the resolution
// (a release), the retried delete and the read after it.
func deleteHistory(ev *Evidence) (linearize.Model, []linearize.Op, error) {
	sc := ev.Scenario
	r := &ev.Result
	t := newTimeline(r.Race.Exchanges)
	var hist []linearize.Op
	for i, x := range r.Race.Exchanges {
		verb := linearize.CreateDependent
		if deletes(sc, i) {
			verb = linearize.Delete
		}
		hist = append(hist, t.racer(i, x, linearize.Action{Verb: verb}, linearize.Outcome{}))
	}
	read := func(label string, client int, x *engine.Exchange) {
		if x == nil || x.Err != nil || x.Status >= 500 {
			return
		}
		o := linearize.Outcome{Exists: x.OK()}
		hist = append(hist, t.after(client, label, x, linearize.Action{Verb: linearize.Read}, o))
		hist[len(hist)-1].Outcome.Status = linearize.Succeeded // a 404 read observed the subject gone
	}
	read("read after", clientAfter, r.After)
	if r.Resolve != nil {
		hist = append(hist, t.after(clientResolve, "resolve", r.Resolve, linearize.Action{Verb: linearize.Release}, linearize.Outcome{}))
	}
	if r.Retry != nil {
		hist = append(hist, t.after(clientRetry, "retry", r.Retry, linearize.Action{Verb: linearize.Delete}, linearize.Outcome{}))
	}
	read("read after the retry", clientFinal, r.Final)
	return linearize.DeleteInUse(0), hist, nil
}

// VisualizationGlob matches every file VisualizationFile names.
const VisualizationGlob = "linearizable-*.html"

// VisualizationFile is the file name of porcupine's view of scenario id's history in a report
// dir: "linearizable-" and id with every character but letters, digits, '-' and '.' replaced
// by '_'.
func VisualizationFile(id string) string {
	return "linearizable-" + strings.Map(func(r rune) rune {
		if r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, id) + ".html"
}

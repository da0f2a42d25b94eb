// Package plan turns a loaded OpenAPI document into the conflict scenarios conflictcheck fires:
// from each operation's x-conflict, else inferred by DESIGN.md's rules, each with the calls
// that set it up, race, read and resolve, and with the reasons for what was inferred. It also
// reports what it could not cover, so a user knows what the run does not prove.
package plan

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/conflictcheck/conflictcheck/internal/profile"
	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/internal/synth"
	"github.com/conflictcheck/conflictcheck/internal/xconflict"
)

// Source values of a scenario: declared by x-conflict, or inferred.
const (
	FromXConflict = "x-conflict"
	FromInference = "inferred"
)

// Binding sources of a call's parameters.
const (
	BindLink      = "link"
	BindXConflict = "x-conflict"
	BindInferred  = "inferred"
)

// DefaultConcurrency is the number of racers when x-conflict does not say.
const DefaultConcurrency = 8

// Options tune planning.
type Options struct {
	// Seed makes payload synthesis deterministic.
	Seed int64
	// RunID makes the values that must collide unique per run; empty means random.
	RunID string
	// Concurrency overrides the default number of racers (x-conflict's concurrency wins).
	Concurrency int
	// Profile gives the expected rejection statuses where x-conflict has no expect (the zero
	// value is rfc9110): an operation's x-conflict expect wins, then the profile's overrides
	// (--expect), then its rules.
	Profile profile.Profile
}

// Plan is every scenario of a document plus what could not be covered.
type Plan struct {
	Spec      SpecInfo    `json:"spec"`
	Scenarios []Scenario  `json:"scenarios"`
	Uncovered []Uncovered `json:"uncovered"`
	Warnings  []string    `json:"warnings"`

	// gen made the plan's unique values; Rekey makes new ones from it.
	gen *synth.Generator
}

// SpecInfo identifies the planned document.
type SpecInfo struct {
	Title   string `json:"title"`
	Version string `json:"version"`
	OpenAPI string `json:"openapi"`
}

// Uncovered is a mutating operation that declares 409 or 412 but yields no scenario.
type Uncovered struct {
	Operation string `json:"operation"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	Reason    string `json:"reason"`
}

// Call is one request template. Its Params and string values of Body may be runtime
// expressions, evaluated against the response of the call they are bound to (for setup calls,
// the previous setup call; for the others, the subject: the last setup call).
type Call struct {
	Operation string `json:"operation"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	// Params maps path, query and header parameter names to values or runtime expressions.
	Params map[string]string `json:"params,omitempty"`
	// Binding says where the path parameters' expressions came from: link, x-conflict, inferred.
	Binding string `json:"binding,omitempty"`
	Body    any    `json:"body,omitempty"`
	// ContentType is the JSON media type the operation declares for its request body
	// (application/json when empty).
	ContentType string `json:"content_type,omitempty"`
	// Fresh names headers that each racer fills with its own unique value (e.g. an idempotency
	// key header on a capacity scenario, where every racer is a distinct request).
	Fresh []string `json:"fresh,omitempty"`
	// Unique lists the values of this call made unique per run; Plan.Rekey makes them anew.
	Unique []Unique `json:"unique,omitempty"`
}

// Unique is one value of a call made unique per run: at a body pointer (made within the
// request body's schema) or in a parameter (made within the parameter's schema when it has
// one: a PUT's client-chosen id), for a slot.
type Unique struct {
	Pointer string `json:"pointer,omitempty"`
	Param   string `json:"param,omitempty"`
	Slot    string `json:"slot"`
	schema  *openapi3.SchemaRef
	param   *openapi3.Parameter
}

// Scenario is one collision to fire and judge.
type Scenario struct {
	ID        string         `json:"id"`
	Kind      xconflict.Kind `json:"kind"`
	Operation string         `json:"operation"`
	Method    string         `json:"method"`
	Path      string         `json:"path"`
	Source    string         `json:"source"`
	Expect    []int          `json:"expect"`
	Read      string         `json:"read,omitempty"`
	Subject   string         `json:"subject,omitempty"`
	// Notes say what was inferred and why.
	Notes []string `json:"notes,omitempty"`

	// Setup creates the subject (last) and what it needs (before it).
	Setup []Call `json:"setup,omitempty"`
	// Racers are fired together, cycled up to Concurrency.
	Racers      []Call `json:"racers"`
	Concurrency int    `json:"concurrency"`
	// ReadCall reads the state (nil when there is no read operation): the subject's, or, when
	// ReadsWinner, that of the resource the winning racer created.
	ReadCall    *Call `json:"read_call,omitempty"`
	ReadsWinner bool  `json:"reads_winner,omitempty"`
	// ResolveCall removes the cause of the conflict before the retry; its expressions read
	// the winning dependent's response (delete-in-use) or the subject's.
	ResolveCall *Call `json:"resolve_call,omitempty"`
	// InvariantCall reads a capacity scenario's bounded quantity.
	InvariantCall *Call `json:"invariant_call,omitempty"`
	// ListCall lists a duplicate-create's collection filtered by the key, bound to a racer's
	// request (nil when no GET on the collection filters by every key member).
	ListCall *Call `json:"list_call,omitempty"`

	Key       []string             `json:"key,omitempty"`
	Version   *xconflict.Version   `json:"version,omitempty"`
	Header    string               `json:"header,omitempty"`
	Invariant *xconflict.Invariant `json:"invariant,omitempty"`

	// Probe is the plain, non-racing conflicting request of the sequential-conflict check.
	Probe *Probe `json:"probe,omitempty"`
	// Retry is the loser's request once it has resolved the conflict by changing what
	// collided (duplicate-create: a new key; idempotency-key: a new idempotency key). Nil
	// where the resolution is a re-read (stale-update: resend Racers[0] with the fresh
	// version) or the ResolveCall (delete-in-use: resend the delete), and where nothing
	// generic resolves it (transition; capacity, whose quantity only the API can raise).
	Retry *Call `json:"retry,omitempty"`

	// Blocked, when set, says why the scenario cannot be fired (e.g. "needs a body (add
	// x-conflict.body or an example)"); a run reports it instead of firing junk.
	Blocked string `json:"blocked,omitempty"`
}

// New plans doc.
func New(doc *specload.Document, opts Options) (*Plan, error) {
	p := &planner{doc: doc, opts: opts, ids: map[string]int{}, ix: newIndex(doc.Operations)}
	p.gen = synth.New(opts.Seed)
	if opts.RunID != "" {
		p.gen = p.gen.WithRunID(opts.RunID)
	}
	out := &Plan{Scenarios: []Scenario{}, Uncovered: []Uncovered{}, Warnings: []string{}, gen: p.gen}
	if doc.T != nil && doc.T.Info != nil {
		out.Spec = SpecInfo{Title: doc.T.Info.Title, Version: doc.T.Info.Version}
	}
	out.Spec.OpenAPI = doc.Version
	for _, op := range doc.Operations {
		if !mutating(op.Method) {
			continue
		}
		var scs []Scenario
		if cs, ok := doc.Conflicts[op.ID]; ok {
			for _, c := range cs {
				scs = append(scs, p.declared(op, c))
			}
		} else {
			inferred, reason := p.infer(op)
			switch {
			case len(inferred) > 0:
				scs = append(scs, inferred...)
			case declares(op.Op, 409) || declares(op.Op, 412):
				out.Uncovered = append(out.Uncovered, Uncovered{Operation: op.ID, Method: op.Method, Path: op.Path, Reason: reason})
			default:
				out.Warnings = append(out.Warnings, fmt.Sprintf("%s (%s %s) declares neither 409 nor 412: conflicts on it are not checked; declare them or add x-conflict", op.ID, op.Method, op.Path))
			}
		}
		out.Scenarios = append(out.Scenarios, scs...)
	}
	for _, sc := range out.Scenarios {
		if sc.Blocked != "" {
			out.Warnings = append(out.Warnings, fmt.Sprintf("%s: %s", sc.ID, sc.Blocked))
		}
	}
	return out, nil
}

type planner struct {
	doc  *specload.Document
	opts Options
	gen  *synth.Generator
	ids  map[string]int
	ix   index
}

func mutating(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// declares reports whether op documents the status.
func declares(op *openapi3.Operation, status int) bool {
	return op != nil && op.Responses != nil && op.Responses.Value(fmt.Sprint(status)) != nil
}

// newScenario fills what every scenario has.
func (p *planner) newScenario(op specload.Operation, kind xconflict.Kind, source string) Scenario {
	id := string(kind) + "/" + op.ID
	p.ids[id]++
	if n := p.ids[id]; n > 1 {
		id = fmt.Sprintf("%s#%d", id, n)
	}
	conc := DefaultConcurrency
	if p.opts.Concurrency > 0 {
		conc = p.opts.Concurrency
	}
	return Scenario{ID: id, Kind: kind, Operation: op.ID, Method: op.Method, Path: op.Path, Source: source, Concurrency: conc}
}

// declared builds the scenario an x-conflict entry describes, inferring what it leaves out.
func (p *planner) declared(op specload.Operation, c xconflict.Conflict) Scenario {
	sc := p.newScenario(op, c.Kind, FromXConflict)
	if c.Concurrency > 0 {
		sc.Concurrency = c.Concurrency
	}
	p.build(&sc, op, c)
	return sc
}

// infer applies DESIGN.md's inference rules to an operation without x-conflict, returning its
// scenarios (a PUT may both create under If-None-Match and update under If-Match), or the reason
// there is none.
func (p *planner) infer(op specload.Operation) ([]Scenario, string) {
	type found struct {
		c   xconflict.Conflict
		why string
	}
	var fs []found
	add := func(kind xconflict.Kind, version *xconflict.Version, why string) {
		fs = append(fs, found{xconflict.Conflict{Kind: kind, Version: version}, why})
	}
	segs := segments(op.Path)
	switch {
	case op.Method == http.MethodPost && hasParam(op, "Idempotency-Key"):
		add(xconflict.IdempotencyKey, nil, "POST with an Idempotency-Key header parameter")
	case op.Method == http.MethodPost && declares(op.Op, 409) && len(segs) > 0 && !isParam(segs[len(segs)-1]) && (len(segs) < 2 || !isParam(segs[len(segs)-2])):
		add(xconflict.DuplicateCreate, nil, "POST on a collection that declares 409")
	case op.Method == http.MethodPost && declares(op.Op, http.StatusSeeOther) && isCollection(op.Path) && !isParam(segs[max(len(segs)-2, 0)]):
		add(xconflict.DuplicateCreate, nil, "POST on a collection that declares 303 See Other, to the existing equivalent resource (RFC 9110 §9.3.3)")
	case op.Method == http.MethodPost && declares(op.Op, 409) && len(segs) >= 2 && isParam(segs[len(segs)-2]):
		add(xconflict.Transition, nil, "POST on /things/{id}/verb that declares 409")
	case op.Method == http.MethodPut || op.Method == http.MethodPatch:
		if op.Method == http.MethodPut && hasParam(op, "If-None-Match") && idParam(op) != nil {
			add(xconflict.DuplicateCreate, nil, "PUT with an If-None-Match header parameter: a create-only write on a client-chosen id (RFC 9110 §13.1.2)")
		}
		read := ""
		if r := p.readFor(op.Path); r != nil {
			read = r.ID
		}
		switch v, _ := p.version(op, read); {
		case v != nil && v.Field != "":
			add(xconflict.StaleUpdate, v, fmt.Sprintf("%s with a version-like body field %s shared with %s", op.Method, v.Field, read))
		case v != nil:
			add(xconflict.StaleUpdate, v, op.Method+" with an If-Match parameter")
		case len(fs) == 0 && (declares(op.Op, 409) || declares(op.Op, 412)):
			return nil, "declares 409/412 but has no If-Match or If-None-Match parameter and no version-like body field shared with its read operation: add x-conflict (kind stale-update, version; or duplicate-create)"
		case len(fs) == 0:
			return nil, ""
		}
	case op.Method == http.MethodDelete:
		return nil, "a delete that declares 409 is a delete-in-use scenario, which needs x-conflict.dependent (the operation that creates a resource referencing this one)"
	default:
		return nil, "no inference rule matches (POST on a collection → duplicate-create; POST on /things/{id}/verb → transition; PUT/PATCH with If-Match or a version field → stale-update; PUT with If-None-Match → duplicate-create; POST with Idempotency-Key → idempotency-key): add x-conflict"
	}
	out := make([]Scenario, 0, len(fs))
	for _, f := range fs {
		sc := p.newScenario(op, f.c.Kind, FromInference)
		sc.Notes = append(sc.Notes, "kind "+string(f.c.Kind)+": "+f.why)
		p.build(&sc, op, f.c)
		out = append(out, sc)
	}
	return out, ""
}

// build fills sc from the (possibly partial) x-conflict c: expectations, related operations,
// calls and bodies.
func (p *planner) build(sc *Scenario, op specload.Operation, c xconflict.Conflict) {
	sc.Key, sc.Version, sc.Header, sc.Invariant = c.Key, c.Version, c.Header, c.Invariant

	sc.Subject = c.Subject
	if sc.Subject == "" && c.Kind != xconflict.DuplicateCreate && c.Kind != xconflict.IdempotencyKey && c.Kind != xconflict.Capacity {
		if s := p.createFor(op.Path); s != nil {
			how := "the POST on the collection of " + op.Path
			if s.Method == http.MethodPut {
				how = "the PUT that creates " + resourcePath(op.Path) + " (no POST on its collection)"
			}
			sc.Subject = s.ID
			sc.Notes = append(sc.Notes, fmt.Sprintf("subject %s: %s", s.ID, how))
		}
	}
	sc.Read = c.Read
	if sc.Read == "" {
		if r := p.readFor(op.Path); r != nil {
			sc.Read = r.ID
			sc.Notes = append(sc.Notes, fmt.Sprintf("read %s: the GET on the resource of %s", r.ID, op.Path))
		}
	}
	p.expect(sc, op, c)

	var subject *specload.Operation
	if sc.Subject != "" {
		s, ok := p.doc.Operation(sc.Subject)
		if !ok {
			sc.Blocked = fmt.Sprintf("subject %q is not an operationId of the document", sc.Subject)
			return
		}
		subject = &s
		sc.Setup = p.setup(sc, s, 0)
	}

	switch c.Kind {
	case xconflict.DuplicateCreate:
		p.duplicateCreate(sc, op, subject, c)
	case xconflict.StaleUpdate:
		p.staleUpdate(sc, op, subject, c)
	case xconflict.Transition:
		p.transition(sc, op, subject, c)
	case xconflict.DeleteInUse:
		p.deleteInUse(sc, op, subject, c)
	case xconflict.IdempotencyKey:
		p.idempotencyKey(sc, op, subject, c)
	case xconflict.Capacity:
		p.capacity(sc, op, subject, c)
	}
	if sc.Read != "" && sc.ReadCall == nil {
		if r, ok := p.doc.Operation(sc.Read); ok {
			// The read is bound to the subject when it reads the subject's resource, else to
			// the resource the winning racer created (a created order, a created item).
			from := subject
			if create := p.createFor(r.Path); subject == nil || create == nil || create.ID != subject.ID {
				from, sc.ReadsWinner = &op, true
			}
			call := p.call(sc, *from, r, c.Bind)
			sc.ReadCall = &call
		} else if sc.Blocked == "" {
			sc.Blocked = fmt.Sprintf("read %q is not an operationId of the document", sc.Read)
		}
	}
	if sc.Blocked == "" && len(sc.Racers) > 0 {
		p.probe(sc, op)
	}
}

// BindingSummary says how the racers reach the subject, e.g. "id ← $response.body#/id (link),
// body.itemId ← $response.body#/id": the expressions of the first racer's parameters and body.
func (s Scenario) BindingSummary() string {
	if len(s.Racers) == 0 {
		return ""
	}
	r := s.Racers[0]
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(r.Params)) {
		if strings.HasPrefix(r.Params[name], "$") {
			parts = append(parts, fmt.Sprintf("%s ← %s (%s)", name, r.Params[name], r.Binding))
		}
	}
	if m, ok := r.Body.(map[string]any); ok {
		for _, name := range slices.Sorted(maps.Keys(m)) {
			if v, ok := m[name].(string); ok && strings.HasPrefix(v, "$") {
				parts = append(parts, fmt.Sprintf("body.%s ← %s", name, v))
			}
		}
	}
	return strings.Join(parts, ", ")
}

// expect sets sc.Expect: x-conflict's expect, which the spec's author wrote for this operation,
// else the profile's (an --expect override of the kind first) for the scenario's mechanism,
// with a note saying where it came from.
func (p *planner) expect(sc *Scenario, op specload.Operation, c xconflict.Conflict) {
	if len(c.Expect) > 0 {
		sc.Expect = c.Expect
		if spec, ok := p.opts.Profile.Overridden(c.Kind); ok {
			sc.Notes = append(sc.Notes, fmt.Sprintf("expect %v: x-conflict's, which wins over --expect %s", sc.Expect, spec))
		}
		return
	}
	declared := func(status int) bool { return declares(op.Op, status) }
	if c.Kind == xconflict.DeleteInUse {
		// The statuses a profile accepts where declared are the losing dependent's answers.
		if dep, ok := p.doc.Operation(c.Dependent); ok {
			declared = func(status int) bool { return declares(dep.Op, status) }
		}
	}
	codes, why := p.opts.Profile.Expect(c.Kind, p.mechanism(sc, op, c), declared)
	sc.Expect = codes
	sc.Notes = append(sc.Notes, fmt.Sprintf("expect %v: %s", codes, why))
}

// mechanism is how sc's racers conflict, where profiles tell mechanisms apart: a PUT with
// If-None-Match creates conditionally; a stale-update's version travels in a header unless
// x-conflict or the body says otherwise; idempotency racers meet in flight.
func (p *planner) mechanism(sc *Scenario, op specload.Operation, c xconflict.Conflict) profile.Mechanism {
	switch c.Kind {
	case xconflict.DuplicateCreate:
		if op.Method == http.MethodPut && hasParam(op, "If-None-Match") {
			return profile.MechanismIfNoneMatch
		}
		return profile.MechanismCreate
	case xconflict.StaleUpdate:
		v := c.Version
		if v == nil {
			v, _ = p.version(op, sc.Read)
		}
		if v != nil && v.Field != "" {
			return profile.MechanismBodyVersion
		}
		return profile.MechanismIfMatch
	case xconflict.IdempotencyKey:
		return profile.MechanismInFlight
	}
	return profile.MechanismAny
}

// duplicateCreate races N identical creates whose key is unique to this run: a POST's body key,
// or a PUT's client-chosen id (its last path parameter), sent with If-None-Match: * when the
// operation takes it.
func (p *planner) duplicateCreate(sc *Scenario, op specload.Operation, subject *specload.Operation, c xconflict.Conflict) {
	put := op.Method == http.MethodPut
	if !put {
		// A POST's racers stand alone: its key is in the body.
		subject = nil
	}
	racer, ok := p.racer(sc, op, subject, c)
	if !ok {
		return
	}
	if put {
		id := idParam(op)
		if id == nil {
			sc.Blocked = "a duplicate-create by PUT needs a path parameter to hold the client-chosen id"
			return
		}
		if name, ok := headerParam(op, "If-None-Match"); ok {
			racer.Params[name] = "*"
			sc.Notes = append(sc.Notes, "racers: identical PUTs of one new id with If-None-Match: * (create only if absent, RFC 9110 §13.1.2)")
		} else {
			sc.Notes = append(sc.Notes, "racers: identical PUTs of one new id, without If-None-Match (the operation takes none): the API must refuse a PUT on an id that exists rather than replace it")
		}
		if err := p.uniqueID(&racer, id, sc.ID); err != nil {
			sc.Blocked = fmt.Sprintf("cannot make path parameter %s unique: %v", id.Name, err)
			return
		}
		sc.Notes = append(sc.Notes, fmt.Sprintf("key: path parameter %s, unique to this run and made anew for every attempt, the probe and the retry", id.Name))
	} else if len(c.Key) == 0 {
		sc.Notes = append(sc.Notes, "key: the whole body (no x-conflict.key); its string fields are made unique to this run")
	}
	p.uniquify(sc, op, &racer, c.Key, sc.ID)
	sc.Racers = []Call{racer}
	if !put {
		sc.ListCall = p.listCall(sc, op, c.Key)
	}
}

// createKeys makes the key of a duplicate-create's call c anew for slot: its body key and, for
// a PUT, its id.
func (p *planner) createKeys(sc *Scenario, op specload.Operation, c *Call, slot string) {
	p.uniquify(sc, op, c, sc.Key, slot)
	if id := idParam(op); op.Method == http.MethodPut && id != nil {
		if err := p.uniqueID(c, id, slot); err != nil {
			sc.Notes = append(sc.Notes, fmt.Sprintf("path parameter %s cannot be made unique for %s (%v)", id.Name, slot, err))
		}
	}
}

// listCall is the GET on a create's collection filtered by every member of key through the
// query parameter of the member's name (GET /items?sku=…), its values taken from the racer's
// request: after a race it counts the resources that hold the key, duplicates a loser stored
// while answering 409 included. nil when there is no such GET.
func (p *planner) listCall(sc *Scenario, op specload.Operation, key []string) *Call {
	list, ok := p.ix.get[op.Path]
	if !ok || len(key) == 0 {
		return nil
	}
	c := p.bare(list)
	for _, ptr := range key {
		name := runtimeexpr.UnescapeToken(ptr[strings.LastIndex(ptr, "/")+1:])
		if !slices.ContainsFunc(list.Parameters(), func(prm *openapi3.Parameter) bool {
			return prm.In == openapi3.ParameterInQuery && prm.Name == name
		}) {
			return nil
		}
		c.Params[name] = "$request.body#" + ptr
	}
	sc.Notes = append(sc.Notes, fmt.Sprintf("list %s: counts the resources holding the key after the race", list.ID))
	return &c
}

// staleUpdate races N updates of one subject, all from the version read before the race, each
// with a payload of its own where the body allows.
func (p *planner) staleUpdate(sc *Scenario, op specload.Operation, subject *specload.Operation, c xconflict.Conflict) {
	if subject == nil {
		sc.Blocked = "no operation creates the resource to update: add x-conflict.subject"
		return
	}
	if sc.Version == nil {
		v, why := p.version(op, sc.Read)
		if v == nil {
			sc.Blocked = "no version to conflict on: the operation takes no If-Match and shares no version-like field with its read operation; add x-conflict.version"
			return
		}
		sc.Version = v
		sc.Notes = append(sc.Notes, "version: "+why)
	}
	racer, ok := p.racer(sc, op, subject, c)
	if !ok {
		return
	}
	// Every racer writes its own payload: a loser's write then shows in the state, and no loser
	// can rightly be answered 2xx as a write that already appears applied (RFC 9110 §13.1.1).
	others, ptr := p.otherPayloads(op, racer, sc.Version, sc.ID, max(sc.Concurrency, 2)-1)
	sc.Racers = append([]Call{racer}, others...)
	switch {
	case len(others) > 0 && len(sc.Racers) >= sc.Concurrency:
		sc.Notes = append(sc.Notes, fmt.Sprintf("racers: %d payloads, differing at %s, so that a loser's write shows in the state", len(sc.Racers), ptr))
	case len(others) > 0 && c.Concurrency == 0:
		sc.Concurrency = len(sc.Racers)
		sc.Notes = append(sc.Notes, fmt.Sprintf("racers: %d payloads, differing at %s (all the body admits), so that a loser's write shows in the state; concurrency %d, a racer per payload, so that no loser can rightly be answered 2xx as already applied (RFC 9110 §13.1.1)", len(sc.Racers), ptr, sc.Concurrency))
	case len(others) > 0:
		sc.Notes = append(sc.Notes, fmt.Sprintf("racers: %d payloads, differing at %s, cycled over %d racers: a loser with the winner's payload may rightly get 2xx, as already applied (RFC 9110 §13.1.1)", len(sc.Racers), ptr, sc.Concurrency))
	case racer.Body != nil:
		sc.Notes = append(sc.Notes, "racers: one payload (no member of the body can vary): a loser's write cannot be told from the winner's, and may rightly get 2xx as already applied (RFC 9110 §13.1.1)")
	}
}

// transition races the racer operations (default: this one) on one subject.
func (p *planner) transition(sc *Scenario, op specload.Operation, subject *specload.Operation, c xconflict.Conflict) {
	if subject == nil {
		sc.Blocked = "no operation creates the resource whose state changes: add x-conflict.subject"
		return
	}
	ids := c.Racers
	if len(ids) == 0 {
		ids = []string{op.ID}
	}
	for _, id := range ids {
		r, ok := p.doc.Operation(id)
		if !ok {
			sc.Blocked = fmt.Sprintf("racer %q is not an operationId of the document", id)
			return
		}
		call, ok := p.racer(sc, r, subject, c)
		if !ok {
			return
		}
		sc.Racers = append(sc.Racers, call)
	}
}

// deleteInUse races a delete of the subject with the creation of a dependent referencing it.
func (p *planner) deleteInUse(sc *Scenario, op specload.Operation, subject *specload.Operation, c xconflict.Conflict) {
	if subject == nil {
		sc.Blocked = "no operation creates the resource to delete: add x-conflict.subject"
		return
	}
	if c.Dependent == "" {
		sc.Blocked = "delete-in-use needs x-conflict.dependent: the operation that creates a resource referencing the subject"
		return
	}
	dep, ok := p.doc.Operation(c.Dependent)
	if !ok {
		sc.Blocked = fmt.Sprintf("dependent %q is not an operationId of the document", c.Dependent)
		return
	}
	del := p.call(sc, *subject, op, c.Bind)
	depCall := p.call(sc, *subject, dep, nil)
	body, blocked := p.body(sc, dep, p.declaredBody(dep, sc.Subject), subject)
	if blocked != "" {
		sc.Blocked = blocked
		return
	}
	depCall.Body = body
	sc.Racers = []Call{del, depCall}
	if c.Concurrency == 0 {
		sc.Concurrency = 2
		sc.Notes = append(sc.Notes, "concurrency 2: one delete against one dependent creation")
	}
	if c.Resolve != "" {
		if r, ok := p.doc.Operation(c.Resolve); ok {
			call := p.call(sc, dep, r, nil)
			sc.ResolveCall = &call
		}
	}
}

// idempotencyKey races N identical requests carrying one key.
func (p *planner) idempotencyKey(sc *Scenario, op specload.Operation, subject *specload.Operation, c xconflict.Conflict) {
	if sc.Header == "" {
		sc.Header = "Idempotency-Key"
	}
	racer, ok := p.racer(sc, op, subject, c)
	if !ok {
		return
	}
	if err := p.uniqueParam(&racer, sc.Header, sc.ID+"/key"); err != nil {
		sc.Blocked = "cannot make an idempotency key: " + err.Error()
		return
	}
	sc.Racers = []Call{racer}
}

// capacity races N distinct consumers of one bounded quantity.
func (p *planner) capacity(sc *Scenario, op specload.Operation, subject *specload.Operation, c xconflict.Conflict) {
	if c.Invariant == nil {
		sc.Blocked = "capacity needs x-conflict.invariant (read, field, min or max)"
		return
	}
	racer, ok := p.racer(sc, op, subject, c)
	if !ok {
		return
	}
	if name, ok := headerParam(op, "Idempotency-Key"); ok {
		racer.Fresh = append(racer.Fresh, name)
		delete(racer.Params, name)
	}
	sc.Racers = []Call{racer}
	if r, ok := p.doc.Operation(c.Invariant.Read); ok && subject != nil {
		call := p.call(sc, *subject, r, nil)
		sc.InvariantCall = &call
	}
	p.sizeCapacity(sc, c.Invariant)
}

// sizeCapacity sets the bounded quantity the subject is created with, when its create body
// holds it as a literal number at the invariant's pointer, to half the racers above the lower
// bound: a race that cannot exhaust the quantity proves nothing, one that must is a test.
func (p *planner) sizeCapacity(sc *Scenario, inv *xconflict.Invariant) {
	if len(sc.Setup) == 0 || inv.Min == nil {
		return
	}
	last := &sc.Setup[len(sc.Setup)-1]
	if v, err := runtimeexpr.Pointer(last.Body, inv.Field); err != nil {
		return
	} else if _, isNum := v.(float64); !isNum {
		return
	}
	size := *inv.Min + float64(sc.Concurrency/2)
	body, err := runtimeexpr.Set(runtimeexpr.Clone(last.Body), inv.Field, size)
	if err != nil {
		return
	}
	last.Body = body
	sc.Notes = append(sc.Notes, fmt.Sprintf("capacity: the subject is created with %s = %v so that %d racers exceed it", inv.Field, size, sc.Concurrency))
}

// version is where a stale-update of op carries its version when x-conflict does not say,
// and why: the ETag header, sent back in If-Match, when op takes If-Match, else a
// version-like body field op shares with the read operation read; nil when neither.
func (p *planner) version(op specload.Operation, read string) (*xconflict.Version, string) {
	if hasParam(op, "If-Match") {
		return &xconflict.Version{Header: "ETag"}, "the ETag header, sent back in If-Match (the operation takes If-Match)"
	}
	if r, ok := p.doc.Operation(read); ok {
		if f := sharedVersionField(op, r); f != "" {
			return &xconflict.Version{Field: f}, "body field " + f + " shared with " + read
		}
	}
	return nil, ""
}

// racer is the call to op bound to the subject (or standalone without one), with its body;
// false, with sc.Blocked set, when no valid body can be made.
func (p *planner) racer(sc *Scenario, op specload.Operation, subject *specload.Operation, c xconflict.Conflict) (Call, bool) {
	racer := p.bare(op)
	if subject != nil {
		racer = p.call(sc, *subject, op, c.Bind)
	}
	body, blocked := p.body(sc, op, c.Body, subject)
	if blocked != "" {
		sc.Blocked = blocked
		return Call{}, false
	}
	racer.Body = body
	return racer, true
}

// declaredBody is the body that one of op's own x-conflict entries gives for the given
// subject: how a spec says to create op's resource from the subject's.
func (p *planner) declaredBody(op specload.Operation, subject string) any {
	for _, c := range p.doc.Conflicts[op.ID] {
		if c.Body != nil && c.Subject == subject {
			return c.Body
		}
	}
	return nil
}

// setup returns the calls that create subject, preceded by what subject needs (the
// resource its body references), depth-bounded.
func (p *planner) setup(sc *Scenario, subject specload.Operation, depth int) []Call {
	call := p.bare(subject)
	var pre []Call
	var parent *specload.Operation
	explicit := any(nil)
	for _, c := range p.doc.Conflicts[subject.ID] {
		if c.Body != nil && c.Subject != "" && c.Subject != subject.ID {
			if s, ok := p.doc.Operation(c.Subject); ok {
				parent, explicit = &s, c.Body
				break
			}
		}
	}
	if parent == nil {
		parent = p.referencedCreate(subject)
	}
	if parent != nil && depth < 3 {
		pre = p.setup(sc, *parent, depth+1)
		call = p.call(sc, *parent, subject, nil)
	}
	body, blocked := p.synthBody(subject, explicit)
	if blocked != "" && sc.Blocked == "" {
		sc.Blocked = "setup " + subject.ID + ": " + blocked
	}
	call.Body = body
	slot := fmt.Sprintf("%s/setup%d", sc.ID, depth)
	p.uniquify(sc, subject, &call, p.keyOf(subject), slot)
	if id := idParam(subject); subject.Method == http.MethodPut && id != nil {
		// A PUT creates at the id it is given: a fresh one per subject.
		if err := p.uniqueID(&call, id, slot); err != nil {
			sc.Notes = append(sc.Notes, fmt.Sprintf("setup %s: path parameter %s cannot be made unique (%v): reruns may reuse a resource", subject.ID, id.Name, err))
		}
	}
	call.Body = p.bindForeignKeys(sc, subject, call.Body, parent)
	return append(pre, call)
}

// keyOf is the duplicate-create key subject declares, if any.
func (p *planner) keyOf(op specload.Operation) []string {
	for _, c := range p.doc.Conflicts[op.ID] {
		if c.Kind == xconflict.DuplicateCreate {
			return c.Key
		}
	}
	return nil
}

// referencedCreate finds the create operation of a resource op's request body references by
// a foreign-key-like property (itemId, item_id): the resource to create first.
func (p *planner) referencedCreate(op specload.Operation) *specload.Operation {
	s := requestSchema(op.Op)
	if s == nil {
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(properties(s))) {
		if cand, ok := p.ix.creates[foreignKey(name)]; ok && cand.ID != op.ID {
			return &cand
		}
	}
	return nil
}

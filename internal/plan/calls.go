package plan

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/internal/synth"
)

// Headers conflictcheck fills itself at run time, never synthesised.
var runtimeHeaders = []string{"If-Match", "If-None-Match", "Idempotency-Key"}

// hasParam reports whether op takes a header parameter called name (case-insensitive).
func hasParam(op specload.Operation, name string) bool {
	_, ok := headerParam(op, name)
	return ok
}

// headerParam is the declared spelling of op's header parameter name (case-insensitive).
func headerParam(op specload.Operation, name string) (string, bool) {
	for _, prm := range op.Parameters() {
		if prm.In == openapi3.ParameterInHeader && strings.EqualFold(prm.Name, name) {
			return prm.Name, true
		}
	}
	return "", false
}

// idParam is the path parameter that names op's resource: the last parameter segment of its
// path (declared, else a string one), or nil when the path has none.
func idParam(op specload.Operation) *openapi3.Parameter {
	segs := segments(op.Path)
	for i := len(segs) - 1; i >= 0; i-- {
		if !isParam(segs[i]) {
			continue
		}
		name := segs[i][1 : len(segs[i])-1]
		for _, prm := range op.Parameters() {
			if prm.In == openapi3.ParameterInPath && prm.Name == name {
				return prm
			}
		}
		return &openapi3.Parameter{Name: name, In: openapi3.ParameterInPath, Required: true, Schema: stringSchemaRef()}
	}
	return nil
}

// hasPathParam reports whether the path template has the parameter name.
func hasPathParam(path, name string) bool {
	return slices.Contains(segments(path), "{"+name+"}")
}

// bare is a call to op with no subject: required non-path parameters synthesised, path
// parameters synthesised too (nothing to bind them to).
func (p *planner) bare(op specload.Operation) Call {
	c := Call{Operation: op.ID, Method: op.Method, Path: op.Path, Params: map[string]string{}}
	c.ContentType, _ = jsonMedia(op.Op)
	for _, prm := range op.Parameters() {
		if prm.In != openapi3.ParameterInPath && (!prm.Required || slices.ContainsFunc(runtimeHeaders, func(h string) bool { return strings.EqualFold(h, prm.Name) })) {
			continue
		}
		if v, err := p.gen.Param(prm); err == nil {
			c.Params[prm.Name] = v
		}
	}
	return c
}

// call is a call to `to` whose path parameters are bound to the response of `from`: by a Link
// of from's success responses, else by x-conflict's bind, else inferred.
func (p *planner) call(sc *Scenario, from, to specload.Operation, bind map[string]string) Call {
	c := p.bare(to)
	if link := linkTo(from, to); link != nil {
		for name, v := range link.Parameters {
			name = strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(name, "path."), "query."), "header.")
			c.Params[name] = fmt.Sprint(v)
		}
		c.Binding = BindLink
		return c
	}
	if len(bind) > 0 {
		maps.Copy(c.Params, bind)
		c.Binding = BindXConflict
		return c
	}
	props := properties(responseSchema(from.Op))
	for _, prm := range to.Parameters() {
		if prm.In != openapi3.ParameterInPath {
			continue
		}
		c.Binding = BindInferred
		name := prm.Name
		switch {
		case props[name] != nil:
			c.Params[name] = "$response.body#/" + name
		case from.Method == http.MethodPut && hasPathParam(from.Path, name):
			// A PUT names its resource in its own path: the id it was sent to is the id (its
			// body may hold no id, or one of another kind).
			c.Params[name] = "$request.path." + name
		case props["id"] != nil:
			c.Params[name] = "$response.body#/id"
		case nestedProperty(props, name) != "":
			// Kubernetes names an object at /metadata/name, its namespace at /metadata/namespace.
			c.Params[name] = "$response.body#" + nestedProperty(props, name)
		case declaresHeader(from.Op, "Location"):
			c.Params[name] = "$response.header.Location"
		default:
			c.Params[name] = "$response.body#/id"
			if sc.Blocked == "" {
				sc.Notes = append(sc.Notes, fmt.Sprintf("%s: path parameter %s bound to $response.body#/id of %s by guess (no link, no id field, no Location): add x-conflict.bind or a link", to.ID, name, from.ID))
			}
		}
	}
	return c
}

// nestedProperty is the pointer of a property called name one object down in props (by the
// members' names), e.g. /metadata/name, or "".
func nestedProperty(props map[string]*openapi3.SchemaRef, name string) string {
	for _, k := range slices.Sorted(maps.Keys(props)) {
		if properties(props[k])[name] != nil {
			return "/" + runtimeexpr.EscapeToken(k) + "/" + runtimeexpr.EscapeToken(name)
		}
	}
	return ""
}

// linkTo finds a Link from one of from's 2xx responses to the operation to.
func linkTo(from, to specload.Operation) *openapi3.Link {
	for _, r := range successResponses(from.Op) {
		for _, name := range slices.Sorted(maps.Keys(r.Links)) {
			l := r.Links[name]
			if l != nil && l.Value != nil && (l.Value.OperationID == to.ID || strings.HasSuffix(l.Value.OperationRef, "/"+to.ID)) {
				return l.Value
			}
		}
	}
	return nil
}

// successResponses are op's 2xx responses in status order.
func successResponses(op *openapi3.Operation) []*openapi3.Response {
	if op == nil || op.Responses == nil {
		return nil
	}
	var out []*openapi3.Response
	for _, code := range slices.Sorted(slices.Values(op.Responses.Keys())) {
		if r := op.Responses.Value(code); strings.HasPrefix(code, "2") && r != nil && r.Value != nil {
			out = append(out, r.Value)
		}
	}
	return out
}

// jsonOf is the JSON media type of content and its name: application/json, else the first
// (by name) whose type ends in json (application/problem+json, text/json).
func jsonOf(content openapi3.Content) (string, *openapi3.MediaType) {
	if mt := content.Get("application/json"); mt != nil {
		return "application/json", mt
	}
	for _, k := range slices.Sorted(maps.Keys(content)) {
		if strings.HasSuffix(k, "json") {
			return k, content[k]
		}
	}
	return "", nil
}

// body is the request body of op in scenario sc: explicit (from x-conflict, kept as given),
// else synthesised from the operation's JSON request body, with foreign keys to the subject
// bound to its id. blocked says why no valid body could be made.
func (p *planner) body(sc *Scenario, op specload.Operation, explicit any, subject *specload.Operation) (any, string) {
	v, blocked := p.synthBody(op, explicit)
	if blocked == "" {
		v = p.bindForeignKeys(sc, op, v, subject)
	}
	return v, blocked
}

// synthBody is op's explicit body, else one synthesised from its JSON request body.
func (p *planner) synthBody(op specload.Operation, explicit any) (any, string) {
	if explicit != nil {
		return explicit, ""
	}
	_, mt := jsonMedia(op.Op)
	if mt == nil {
		if op.Op != nil && op.Op.RequestBody != nil && op.Op.RequestBody.Value != nil && op.Op.RequestBody.Value.Required {
			return nil, "needs a body (add x-conflict.body): the request body has no JSON media type"
		}
		return nil, ""
	}
	v, err := p.gen.MediaBody(mt)
	if err != nil {
		return nil, "needs a body (add x-conflict.body or an example): " + err.Error()
	}
	return v, ""
}

// bindForeignKeys points the members of body that reference the subject's resource (itemId
// for an item) at the subject's id. It runs after synthesis and uniquify, which validate
// against the schema, since an expression is no valid member value.
func (p *planner) bindForeignKeys(sc *Scenario, op specload.Operation, body any, subject *specload.Operation) any {
	m, ok := body.(map[string]any)
	if subject == nil || !ok {
		return body
	}
	res := singular(lastStatic(subject.Path))
	for _, name := range slices.Sorted(maps.Keys(properties(requestSchema(op.Op)))) {
		if res != "" && foreignKey(name) == res {
			m[name] = idOf(*subject)
			sc.Notes = append(sc.Notes, fmt.Sprintf("%s body %s: the id of the %s created by %s", op.ID, name, res, subject.ID))
		}
	}
	return m
}

// idOf is the runtime expression of the id of the resource op creates, read from its
// exchange: its response body's id, else its Location header (an API may return the id only
// there), else, for a PUT, the id it was sent to, else the body's id by guess.
func idOf(op specload.Operation) string {
	switch {
	case properties(responseSchema(op.Op))["id"] != nil:
		return "$response.body#/id"
	case declaresHeader(op.Op, "Location"):
		return "$response.header.Location"
	}
	if id := idParam(op); op.Method == http.MethodPut && id != nil {
		return "$request.path." + id.Name
	}
	return "$response.body#/id"
}

// uniquify makes the values at the key pointers of c's body (every string member, nested ones
// included, when key is empty) unique to this run and equal for equal slots, and records them in
// c.Unique so that Plan.Rekey can make them anew.
func (p *planner) uniquify(sc *Scenario, op specload.Operation, c *Call, key []string, slot string) {
	m, ok := runtimeexpr.Clone(c.Body).(map[string]any)
	if !ok {
		return
	}
	if len(key) == 0 {
		// Nested ones too: Kubernetes keys an object by its /metadata/name.
		for _, l := range leaves(m, requestSchema(op.Op), "", 0) {
			s, isStr := l.value.(string)
			if !isStr || runtimeexpr.IsExpression(s) || l.schema == nil || l.schema.Value == nil || len(l.schema.Value.Enum) > 0 || l.schema.Value.Format != "" {
				continue
			}
			key = append(key, l.ptr)
		}
	}
	c.Body = m
	schema := requestSchema(op.Op)
	us := make([]Unique, len(key))
	for i, ptr := range key {
		us[i] = Unique{Pointer: ptr, Slot: slot + ptr, schema: schema}
	}
	if setUniques(p.gen, c, us, "") == nil {
		return
	}
	// One of them breaks the body: find which, one at a time.
	for _, u := range us {
		if err := setUnique(p.gen, c, u, ""); err != nil {
			sc.Notes = append(sc.Notes, fmt.Sprintf("key %s cannot be made unique per run (%v): reruns may collide with leftovers", u.Pointer, err))
		}
	}
}

// setUniques is setUnique for each of us, the body members among them made and checked
// together (synth.UniqueAtEach) when they share one schema; it changes c only when all
// succeed.
func setUniques(gen *synth.Generator, c *Call, us []Unique, salt string) error {
	out := cloneCall(*c)
	var body []Unique // the body members made together, all of body[0].schema
	for _, u := range us {
		if u.param == nil && u.Param == "" && u.schema != nil && (len(body) == 0 || body[0].schema == u.schema) {
			body = append(body, u)
			continue
		}
		if err := setUnique(gen, &out, u, salt); err != nil {
			return fmt.Errorf("%s%s: %w", u.Pointer, u.Param, err)
		}
	}
	if len(body) > 0 {
		ptrs, slots := make([]string, len(body)), make([]string, len(body))
		for i, u := range body {
			ptrs[i], slots[i] = u.Pointer, saltSlot(u.Slot, salt)
		}
		v, err := gen.UniqueAtEach(body[0].schema, out.Body, ptrs, slots)
		if err != nil {
			return err
		}
		out.Body = v
		for _, u := range body {
			out.Unique = record(out.Unique, u)
		}
	}
	*c = out
	return nil
}

// record is us with u recorded, replacing an earlier record of the same place.
func record(us []Unique, u Unique) []Unique {
	us = slices.DeleteFunc(slices.Clone(us), func(x Unique) bool { return x.Pointer == u.Pointer && x.Param == u.Param })
	return append(us, u)
}

// saltSlot is slot salted for a re-keyed value; slot itself when salt is empty.
func saltSlot(slot, salt string) string {
	if salt == "" {
		return slot
	}
	return slot + "#" + salt
}

// uniqueParam sets c's parameter name (an idempotency key) to a value unique to slot.
func (p *planner) uniqueParam(c *Call, name, slot string) error {
	return setUnique(p.gen, c, Unique{Param: name, Slot: slot}, "")
}

// uniqueID sets c's path parameter id (a PUT's client-chosen id) to a value of its schema
// unique to slot.
func (p *planner) uniqueID(c *Call, id *openapi3.Parameter, slot string) error {
	return setUnique(p.gen, c, Unique{Param: id.Name, Slot: slot + "/{" + id.Name + "}", param: id}, "")
}

// setUnique stores a value unique to u's slot (salted, when salt is not empty) into c and
// records u there, replacing an earlier record of the same place. A body member is made from
// its schema within the request body's (synth.UniqueAt); a parameter, or a body without a
// schema, gets a unique string.
func setUnique(gen *synth.Generator, c *Call, u Unique, salt string) error {
	slot := saltSlot(u.Slot, salt)
	switch {
	case u.param != nil && u.param.Schema != nil:
		v, err := gen.Unique(u.param.Schema, slot)
		if err != nil {
			return err
		}
		text, err := synth.FormatParam(u.param, v)
		if err != nil {
			return err
		}
		c.Params[u.Param] = text
	case u.Param != "":
		v, err := gen.Unique(stringSchemaRef(), slot)
		if err != nil {
			return err
		}
		c.Params[u.Param] = fmt.Sprint(v)
	case u.schema != nil:
		body, err := gen.UniqueAt(u.schema, c.Body, u.Pointer, slot)
		if err != nil {
			return err
		}
		c.Body = body
	default:
		v, err := gen.Unique(stringSchemaRef(), slot)
		if err != nil {
			return err
		}
		if c.Body, err = runtimeexpr.Set(c.Body, u.Pointer, v); err != nil {
			return err
		}
	}
	c.Unique = record(c.Unique, u)
	return nil
}

// Rekey returns c with every value recorded in c.Unique made anew for salt: valid for its
// schema, equal for equal salts, distinct from c's own values and from other salts'. A runner
// uses it to create a second subject from the same setup without colliding with the first.
func (p *Plan) Rekey(c Call, salt string) (Call, error) {
	if p.gen == nil {
		return Call{}, errors.New("rekey: the plan has no generator (it was not made by plan.New)")
	}
	out := cloneCall(c)
	if err := setUniques(p.gen, &out, c.Unique, salt); err != nil {
		return Call{}, fmt.Errorf("rekey %s %s %s: %w", c.Operation, c.Method, c.Path, err)
	}
	return out, nil
}

func stringSchemaRef() *openapi3.SchemaRef {
	return &openapi3.SchemaRef{Value: openapi3.NewStringSchema()}
}

// jsonMedia is op's JSON request media type and its name, if any.
func jsonMedia(op *openapi3.Operation) (string, *openapi3.MediaType) {
	if op == nil || op.RequestBody == nil || op.RequestBody.Value == nil {
		return "", nil
	}
	return jsonOf(op.RequestBody.Value.Content)
}

func requestSchema(op *openapi3.Operation) *openapi3.SchemaRef {
	if _, mt := jsonMedia(op); mt != nil {
		return mt.Schema
	}
	return nil
}

// responseSchema is the JSON schema of op's first success response.
func responseSchema(op *openapi3.Operation) *openapi3.SchemaRef {
	for _, r := range successResponses(op) {
		if _, mt := jsonOf(r.Content); mt != nil {
			return mt.Schema
		}
	}
	return nil
}

// declaresHeader reports whether one of op's success responses declares the header name.
func declaresHeader(op *openapi3.Operation, name string) bool {
	for _, r := range successResponses(op) {
		for h := range r.Headers {
			if strings.EqualFold(h, name) {
				return true
			}
		}
	}
	return false
}

// properties are the object properties of s, allOf members merged, depth-bounded.
func properties(s *openapi3.SchemaRef) map[string]*openapi3.SchemaRef {
	out := map[string]*openapi3.SchemaRef{}
	var walk func(s *openapi3.SchemaRef, depth int)
	walk = func(s *openapi3.SchemaRef, depth int) {
		if s == nil || s.Value == nil || depth > 8 {
			return
		}
		for k, v := range s.Value.Properties {
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
		for _, sub := range s.Value.AllOf {
			walk(sub, depth+1)
		}
	}
	walk(s, 0)
	return out
}

// versionNames are body fields that hold a resource version by the conventions of real APIs:
// CouchDB _rev, Kubernetes metadata.resourceVersion, Rails lock_version, AIP-154 etag.
var versionNames = []string{"version", "_version", "rev", "_rev", "revision", "resourceversion", "resource_version", "lock_version", "lockversion", "etag", "_etag", "sequence_number"}

// maxVersionDepth bounds how deep in nested objects a version field is looked for
// (/metadata/resourceVersion is one level down).
const maxVersionDepth = 2

// sharedVersionField is the JSON pointer of a version-like field present at the same place in
// both op's request body and read's response body (the shallowest, by name), or "".
func sharedVersionField(op, read specload.Operation) string {
	return versionPointer(requestSchema(op.Op), responseSchema(read.Op), 0)
}

// versionPointer finds a version-like member shared by the object schemas req and resp:
// among their own members first, then within the members both have, depth-bounded.
func versionPointer(req, resp *openapi3.SchemaRef, depth int) string {
	rq, rs := properties(req), properties(resp)
	names := slices.Sorted(maps.Keys(rq))
	for _, name := range names {
		if slices.Contains(versionNames, strings.ToLower(name)) && rs[name] != nil {
			return "/" + runtimeexpr.EscapeToken(name)
		}
	}
	if depth >= maxVersionDepth {
		return ""
	}
	for _, name := range names {
		if rs[name] == nil {
			continue
		}
		if f := versionPointer(rq[name], rs[name], depth+1); f != "" {
			return "/" + runtimeexpr.EscapeToken(name) + f
		}
	}
	return ""
}

// segments splits a path template into its segments.
func segments(path string) []string {
	var out []string
	for _, s := range strings.Split(path, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func isParam(seg string) bool { return strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") }

// isCollection reports whether path names a collection: its last segment is not a parameter.
func isCollection(path string) bool {
	s := segments(path)
	return len(s) > 0 && !isParam(s[len(s)-1])
}

// lastStatic is the last non-parameter segment of path.
func lastStatic(path string) string {
	s := segments(path)
	for i := len(s) - 1; i >= 0; i-- {
		if !isParam(s[i]) {
			return s[i]
		}
	}
	return ""
}

// singular is a collection name's singular, lower-cased: items → item, addresses → address.
func singular(s string) string {
	s = strings.ToLower(s)
	switch {
	case strings.HasSuffix(s, "ies"):
		return strings.TrimSuffix(s, "ies") + "y"
	case strings.HasSuffix(s, "sses"), strings.HasSuffix(s, "xes"):
		return strings.TrimSuffix(s, "es")
	case strings.HasSuffix(s, "s") && !strings.HasSuffix(s, "ss"):
		return strings.TrimSuffix(s, "s")
	}
	return s
}

// foreignKey returns the resource a property name refers to (itemId, item_id → item), or "".
func foreignKey(name string) string {
	l := strings.ToLower(name)
	for _, suf := range []string{"_id", "id"} {
		if strings.HasSuffix(l, suf) && len(l) > len(suf) {
			return strings.TrimSuffix(strings.TrimSuffix(l, suf), "-")
		}
	}
	return ""
}

// resourcePath is the path of the single resource an operation on path acts on:
// /items/{id} → itself, /orders/{id}/cancel → /orders/{id}, /items → "" (a collection).
func resourcePath(path string) string {
	s := segments(path)
	for i := len(s) - 1; i >= 0; i-- {
		if isParam(s[i]) {
			return "/" + strings.Join(s[:i+1], "/")
		}
	}
	return ""
}

// index maps paths to the operations readFor, createFor and referencedCreate look up, so
// planning stays linear in the number of operations.
type index struct {
	get      map[string]specload.Operation // GET by path
	post     map[string]specload.Operation // POST by path
	put      map[string]specload.Operation // PUT by path
	childGet map[string]specload.Operation // collection path → GET on its one child resource
	creates  map[string]specload.Operation // singular resource name → POST on its collection
}

func newIndex(ops []specload.Operation) index {
	ix := index{get: map[string]specload.Operation{}, post: map[string]specload.Operation{}, put: map[string]specload.Operation{},
		childGet: map[string]specload.Operation{}, creates: map[string]specload.Operation{}}
	for _, op := range ops {
		switch op.Method {
		case http.MethodGet:
			if _, ok := ix.get[op.Path]; !ok {
				ix.get[op.Path] = op
			}
			if s := segments(op.Path); len(s) > 1 && isParam(s[len(s)-1]) {
				coll := "/" + strings.Join(s[:len(s)-1], "/")
				if _, ok := ix.childGet[coll]; !ok {
					ix.childGet[coll] = op
				}
			}
		case http.MethodPut:
			if _, ok := ix.put[op.Path]; !ok {
				ix.put[op.Path] = op
			}
		case http.MethodPost:
			if _, ok := ix.post[op.Path]; !ok {
				ix.post[op.Path] = op
			}
			if isCollection(op.Path) {
				if name := singular(lastStatic(op.Path)); name != "" {
					if _, ok := ix.creates[name]; !ok {
						ix.creates[name] = op
					}
				}
			}
		}
	}
	return ix
}

// readFor is the GET of the resource an operation on path acts on (for a collection POST, the
// GET on its one child resource path).
func (p *planner) readFor(path string) *specload.Operation {
	if target := resourcePath(path); target != "" {
		if op, ok := p.ix.get[target]; ok {
			return &op
		}
		return nil
	}
	if op, ok := p.ix.childGet["/"+strings.Join(segments(path), "/")]; ok && isCollection(path) {
		return &op
	}
	return nil
}

// createFor is the POST on the collection of the resource an operation on path acts on, else
// the PUT on the resource itself when it creates (a client-chosen id).
func (p *planner) createFor(path string) *specload.Operation {
	res := resourcePath(path)
	if res == "" {
		return nil
	}
	if op, ok := p.ix.post[res[:strings.LastIndex(res, "/")]]; ok {
		return &op
	}
	if op, ok := p.ix.put[res]; ok && putCreates(op) {
		return &op
	}
	return nil
}

// putCreates reports whether a PUT documents creating its resource: a 201, or If-None-Match.
func putCreates(op specload.Operation) bool {
	return declares(op.Op, http.StatusCreated) || hasParam(op, "If-None-Match")
}

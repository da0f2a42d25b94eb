package plan

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/internal/profile"
	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/internal/xconflict"
)

// planYAML loads and plans a spec given as text.
func planYAML(t *testing.T, spec string, pr profile.Profile) *Plan {
	t.Helper()
	doc, err := specload.LoadBytes(context.Background(), "spec.yaml", []byte(spec), specload.Options{})
	if err != nil {
		t.Fatalf("load: %v\n%s", err, spec)
	}
	p, err := New(doc, Options{Seed: 1, RunID: "conventions", Profile: pr})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// putCreateSpec creates things by PUT on a client-chosen id, create-only with If-None-Match,
// and updates them with If-Match; plain keys are created by PUT without If-None-Match.
const putCreateSpec = `
openapi: 3.0.3
info: {title: Things, version: "1"}
paths:
  /things/{thingId}:
    parameters:
      - {name: thingId, in: path, required: true, schema: {type: string, format: uuid}}
    get:
      operationId: getThing
      responses:
        '200':
          description: ok
          headers: {ETag: {schema: {type: string}}}
          content: {application/json: {schema: {$ref: '#/components/schemas/Thing'}}}
    put:
      operationId: putThing
      parameters:
        - {name: If-None-Match, in: header, schema: {type: string}}
        - {name: If-Match, in: header, schema: {type: string}}
      requestBody:
        required: true
        content: {application/json: {schema: {$ref: '#/components/schemas/Thing'}}}
      responses:
        '200': {description: replaced}
        '201': {description: created}
        '412': {description: a precondition failed}
    delete:
      operationId: deleteThing
      responses: {'204': {description: gone}}
  /plain/{key}:
    parameters:
      - {name: key, in: path, required: true, schema: {type: string, pattern: '^[a-z]{6,12}$'}}
    get:
      operationId: getPlain
      responses: {'200': {description: ok, content: {application/json: {schema: {$ref: '#/components/schemas/Thing'}}}}}
    put:
      operationId: putPlain
      x-conflict: {kind: duplicate-create}
      requestBody:
        required: true
        content: {application/json: {schema: {$ref: '#/components/schemas/Thing'}}}
      responses:
        '201': {description: created}
        '409': {description: exists}
components:
  schemas:
    Thing:
      type: object
      required: [name]
      properties:
        name: {type: string, maxLength: 60}
        colour: {type: string, enum: [red, blue]}
`

func TestPutCreateWithIfNoneMatch(t *testing.T) {
	p := planYAML(t, putCreateSpec, profile.Profile{})
	got := byID(p)
	sc, ok := got["duplicate-create/putThing"]
	if !ok {
		t.Fatalf("no duplicate-create for the PUT with If-None-Match: %v (uncovered %v)", keys(got), p.Uncovered)
	}
	if sc.Source != FromInference || sc.Blocked != "" || !reflect.DeepEqual(sc.Expect, []int{412}) {
		t.Errorf("source %s blocked %q expect %v; want inferred, unblocked, [412]", sc.Source, sc.Blocked, sc.Expect)
	}
	if n := noteWith(sc, "expect "); !strings.Contains(n, "by PUT with If-None-Match: *") || !strings.Contains(n, "RFC 9110 §13.1.2") {
		t.Errorf("expect note %q", n)
	}
	if len(sc.Racers) != 1 {
		t.Fatalf("racers %+v; want one, cycled", sc.Racers)
	}
	r := sc.Racers[0]
	id := r.Params["thingId"]
	if r.Method != "PUT" || r.Params["If-None-Match"] != "*" || !uuidRE.MatchString(id) {
		t.Errorf("racer %s params %v; want a PUT of a fresh uuid with If-None-Match: *", r.Method, r.Params)
	}
	if !slices.ContainsFunc(r.Unique, func(u Unique) bool { return u.Param == "thingId" }) {
		t.Errorf("racer unique %+v; want thingId recorded so later attempts get a fresh id", r.Unique)
	}
	// The read reads the resource at the id the winner was sent to.
	if rc := sc.ReadCall; rc == nil || rc.Operation != "getThing" || !sc.ReadsWinner || rc.Params["thingId"] != "$request.path.thingId" {
		t.Errorf("read call %+v (reads winner %v); want getThing at $request.path.thingId", sc.ReadCall, sc.ReadsWinner)
	}
	if sc.ListCall != nil {
		t.Errorf("list call %+v; a PUT's key is its path, there is nothing to list", sc.ListCall)
	}
	// The probe and the retry each create at an id of their own, still with the header.
	pr := sc.Probe
	if pr == nil || len(pr.Calls) != 2 || pr.Calls[0].Params["thingId"] != pr.Calls[1].Params["thingId"] || pr.Calls[0].Params["thingId"] == id || !uuidRE.MatchString(pr.Calls[0].Params["thingId"]) {
		t.Errorf("probe %+v; want two PUTs of one id of its own", pr)
	}
	rt := sc.Retry
	if rt == nil || rt.Params["thingId"] == id || rt.Params["thingId"] == pr.Calls[0].Params["thingId"] || rt.Params["If-None-Match"] != "*" || !uuidRE.MatchString(rt.Params["thingId"]) {
		t.Errorf("retry %+v; want a PUT of a new id with If-None-Match: *", rt)
	}
	// A later attempt gets a new id too.
	again, err := p.Rekey(r, "attempt-2")
	if err != nil || again.Params["thingId"] == id || !uuidRE.MatchString(again.Params["thingId"]) || again.Params["If-None-Match"] != "*" {
		t.Errorf("rekeyed racer %v (%v); want a new uuid", again.Params, err)
	}
	// Where the operation declares 409 too, and under other profiles.
	with409 := strings.Replace(putCreateSpec, "'412': {description: a precondition failed}", "'412': {description: a precondition failed}\n        '409': {description: a racing write}", 1)
	for _, tt := range []struct {
		spec, profile string
		want          []int
	}{
		{with409, "rfc9110", []int{412, 409}},
		{putCreateSpec, "kubernetes", []int{409, 412}},
		{putCreateSpec, "zalando", []int{412}},
		{putCreateSpec, "couchdb", []int{409, 412}},
	} {
		if got := byID(planYAML(t, tt.spec, mustProfile(t, tt.profile)))["duplicate-create/putThing"].Expect; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: expect %v; want %v", tt.profile, got, tt.want)
		}
	}
}

// The PUT that creates is also the subject of its own stale-update when nothing POSTs things.
func TestPutCreatesTheSubject(t *testing.T) {
	sc, ok := byID(planYAML(t, putCreateSpec, profile.Profile{}))["stale-update/putThing"]
	if !ok || sc.Blocked != "" {
		t.Fatalf("stale-update/putThing = %+v, %v; want it planned", sc, ok)
	}
	if sc.Subject != "putThing" || len(sc.Setup) != 1 {
		t.Fatalf("subject %s setup %+v; want putThing creating the subject", sc.Subject, sc.Setup)
	}
	setup := sc.Setup[0]
	if !uuidRE.MatchString(setup.Params["thingId"]) || setup.Params["If-None-Match"] != "" || setup.Params["If-Match"] != "" {
		t.Errorf("setup params %v; want a fresh uuid and no precondition", setup.Params)
	}
	if !slices.ContainsFunc(setup.Unique, func(u Unique) bool { return u.Param == "thingId" }) {
		t.Errorf("setup unique %+v; want thingId, so a fresh subject gets a fresh id", setup.Unique)
	}
	for _, r := range sc.Racers {
		if r.Params["thingId"] != "$request.path.thingId" || r.Params["If-None-Match"] != "" {
			t.Errorf("racer params %v; want the subject's id from its own request", r.Params)
		}
	}
	if sc.Version == nil || sc.Version.Header != "ETag" || !reflect.DeepEqual(sc.Expect, []int{412}) {
		t.Errorf("version %+v expect %v; want ETag in If-Match, [412]", sc.Version, sc.Expect)
	}
}

func TestPutCreateWithoutIfNoneMatch(t *testing.T) {
	sc := byID(planYAML(t, putCreateSpec, profile.Profile{}))["duplicate-create/putPlain"]
	if sc.Source != FromXConflict || sc.Blocked != "" || !reflect.DeepEqual(sc.Expect, []int{409}) {
		t.Fatalf("putPlain = source %s blocked %q expect %v; want x-conflict, [409]", sc.Source, sc.Blocked, sc.Expect)
	}
	r := sc.Racers[0]
	if _, sent := r.Params["If-None-Match"]; sent || !regexp.MustCompile(`^[a-z]{6,12}$`).MatchString(r.Params["key"]) {
		t.Errorf("racer params %v; want a fresh key within its pattern and no If-None-Match", r.Params)
	}
	if noteWith(sc, "racers: identical PUTs of one new id, without If-None-Match") == "" {
		t.Errorf("notes %v; want one saying no If-None-Match is sent", sc.Notes)
	}
	if sc.ReadCall == nil || sc.ReadCall.Params["key"] != "$request.path.key" {
		t.Errorf("read call %+v; want getPlain at $request.path.key", sc.ReadCall)
	}
}

// versionSpec has things created by POST and replaced by PUT, whose body and read share the
// member field (at /metadata/field when nested), without If-Match.
func versionSpec(field string, nested bool) string {
	member := fmt.Sprintf("%s: {type: integer, minimum: 1}", field)
	if nested {
		member = fmt.Sprintf("metadata: {type: object, properties: {name: {type: string}, %s: {type: string}}}", field)
	}
	return fmt.Sprintf(`
openapi: 3.0.3
info: {title: Versions, version: "1"}
paths:
  /things:
    post:
      operationId: createThing
      requestBody: {required: true, content: {application/json: {schema: {$ref: '#/components/schemas/New'}}}}
      responses: {'201': {description: ok, content: {application/json: {schema: {$ref: '#/components/schemas/Thing'}}}}}
  /things/{id}:
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    get:
      operationId: getThing
      responses: {'200': {description: ok, content: {application/json: {schema: {$ref: '#/components/schemas/Thing'}}}}}
    put:
      operationId: replaceThing
      requestBody: {required: true, content: {application/json: {schema: {$ref: '#/components/schemas/Update'}}}}
      responses: {'200': {description: ok}, '409': {description: stale}}
components:
  schemas:
    New: {type: object, required: [name], properties: {name: {type: string}}}
    Update:
      type: object
      required: [name]
      properties: {name: {type: string}, %[1]s}
    Thing:
      type: object
      properties: {id: {type: string, readOnly: true}, name: {type: string}, %[1]s}
`, member)
}

func TestVersionFieldNames(t *testing.T) {
	for _, tt := range []struct {
		field  string
		nested bool
		want   string // "" when no stale-update must be inferred
	}{
		{"_rev", false, "/_rev"},
		{"revision", false, "/revision"},
		{"resourceVersion", false, "/resourceVersion"},
		{"resourceVersion", true, "/metadata/resourceVersion"},
		{"lock_version", false, "/lock_version"},
		{"etag", false, "/etag"},
		{"version", false, "/version"},
		{"rev", true, "/metadata/rev"},
		{"versions_count", false, ""},
		{"revisionNote", true, ""},
	} {
		name := tt.field
		if tt.nested {
			name = "metadata." + name
		}
		p := planYAML(t, versionSpec(tt.field, tt.nested), mustProfile(t, "kubernetes"))
		sc, ok := byID(p)["stale-update/replaceThing"]
		if tt.want == "" {
			if ok || len(p.Uncovered) != 1 {
				t.Errorf("%s: planned %v, uncovered %v; want no stale-update, replaceThing uncovered", name, ok, p.Uncovered)
			}
			continue
		}
		if !ok || sc.Blocked != "" || sc.Version == nil || sc.Version.Field != tt.want {
			t.Errorf("%s: scenario %v blocked %q version %+v; want field %s", name, ok, sc.Blocked, sc.Version, tt.want)
			continue
		}
		if n := noteWith(sc, "expect "); n != "expect [409]: profile kubernetes, stale-update with a body version (API conventions: Conflict)" {
			t.Errorf("%s: expect note %q", name, n)
		}
		// The racers' payloads differ, never at the version the run fills in.
		if len(sc.Racers) != sc.Concurrency {
			t.Errorf("%s: %d racers; want a payload each", name, len(sc.Racers))
			continue
		}
		a := sc.Racers[0].Body.(map[string]any)
		for _, r := range sc.Racers[1:] {
			b := r.Body.(map[string]any)
			if reflect.DeepEqual(a["name"], b["name"]) || !reflect.DeepEqual(a["metadata"], b["metadata"]) || !reflect.DeepEqual(a[tt.field], b[tt.field]) {
				t.Errorf("%s: racer bodies %v and %v; want them to differ at /name only", name, a, b)
			}
		}
	}
	// The same names under rfc9110 expect 409 too, never 412: no header condition is sent.
	if sc := byID(planYAML(t, versionSpec("_rev", false), profile.Profile{}))["stale-update/replaceThing"]; !reflect.DeepEqual(sc.Expect, []int{409}) {
		t.Errorf("rfc9110 body version: expect %v; want [409]", sc.Expect)
	}
}

// createsSpec has widgets created with 200 and their id in the body, and gadgets created with
// 201, no body and their id only in Location; parts reference gadgets.
const createsSpec = `
openapi: 3.0.3
info: {title: Creates, version: "1"}
paths:
  /widgets:
    post:
      operationId: createWidget
      requestBody: {required: true, content: {application/json: {schema: {$ref: '#/components/schemas/New'}}}}
      responses:
        '200': {description: created, content: {application/json: {schema: {$ref: '#/components/schemas/Widget'}}}}
        '409': {description: taken}
  /widgets/{widgetId}:
    parameters: [{name: widgetId, in: path, required: true, schema: {type: string}}]
    get:
      operationId: getWidget
      responses: {'200': {description: ok, content: {application/json: {schema: {$ref: '#/components/schemas/Widget'}}}}}
    put:
      operationId: replaceWidget
      parameters: [{name: If-Match, in: header, required: true, schema: {type: string}}]
      requestBody: {required: true, content: {application/json: {schema: {$ref: '#/components/schemas/New'}}}}
      responses: {'200': {description: ok}, '412': {description: stale}}
  /gadgets:
    post:
      operationId: createGadget
      requestBody: {required: true, content: {application/json: {schema: {$ref: '#/components/schemas/New'}}}}
      responses:
        '201': {description: created, headers: {Location: {schema: {type: string}}}}
        '409': {description: taken}
  /gadgets/{gadgetId}:
    parameters: [{name: gadgetId, in: path, required: true, schema: {type: string}}]
    get:
      operationId: getGadget
      responses: {'200': {description: ok, content: {application/json: {schema: {$ref: '#/components/schemas/New'}}}}}
    put:
      operationId: replaceGadget
      parameters: [{name: If-Match, in: header, required: true, schema: {type: string}}]
      requestBody: {required: true, content: {application/json: {schema: {$ref: '#/components/schemas/New'}}}}
      responses: {'200': {description: ok}, '412': {description: stale}}
  /parts:
    post:
      operationId: createPart
      requestBody: {required: true, content: {application/json: {schema: {$ref: '#/components/schemas/Part'}}}}
      responses:
        '201': {description: created, headers: {Location: {schema: {type: string}}}}
  /parts/{partId}:
    parameters: [{name: partId, in: path, required: true, schema: {type: string}}]
    get:
      operationId: getPart
      responses: {'200': {description: ok, content: {application/json: {schema: {$ref: '#/components/schemas/Part'}}}}}
    put:
      operationId: replacePart
      parameters: [{name: If-Match, in: header, required: true, schema: {type: string}}]
      requestBody: {required: true, content: {application/json: {schema: {$ref: '#/components/schemas/Part'}}}}
      responses: {'200': {description: ok}, '412': {description: stale}}
components:
  schemas:
    New: {type: object, required: [name], properties: {name: {type: string}}}
    Widget: {type: object, properties: {id: {type: string}, name: {type: string}}}
    Part: {type: object, required: [gadgetId, label], properties: {gadgetId: {type: string}, label: {type: string}}}
`

// Planning needs neither a 201 (a create may document 200 only) nor an id in the create's body
// (an API may return it only in Location).
func TestCreatesWithout201OrBodyID(t *testing.T) {
	p := planYAML(t, createsSpec, profile.Profile{})
	got := byID(p)
	for _, tt := range []struct {
		id, param, want string
		reads           bool // the read call (else the racer) carries the binding
	}{
		{"duplicate-create/createWidget", "widgetId", "$response.body#/id", true},
		{"stale-update/replaceWidget", "widgetId", "$response.body#/id", false},
		{"duplicate-create/createGadget", "gadgetId", "$response.header.Location", true},
		{"stale-update/replaceGadget", "gadgetId", "$response.header.Location", false},
		{"stale-update/replacePart", "partId", "$response.header.Location", false},
	} {
		sc, ok := got[tt.id]
		if !ok || sc.Blocked != "" {
			t.Errorf("%s: planned %v, blocked %q; want it planned (have %v)", tt.id, ok, sc.Blocked, keys(got))
			continue
		}
		c := &sc.Racers[0]
		if tt.reads {
			c = sc.ReadCall
		}
		if c == nil || c.Params[tt.param] != tt.want || c.Binding != BindInferred {
			t.Errorf("%s: call %+v; want %s bound to %s", tt.id, c, tt.param, tt.want)
		}
		for _, n := range sc.Notes {
			if strings.Contains(n, "by guess") {
				t.Errorf("%s: %s", tt.id, n)
			}
		}
	}
	// A part's setup creates its gadget first and references it by the id in its Location.
	part := got["stale-update/replacePart"]
	if len(part.Setup) != 2 || part.Setup[0].Operation != "createGadget" || part.Setup[1].Body.(map[string]any)["gadgetId"] != "$response.header.Location" {
		t.Errorf("replacePart setup %+v; want createGadget then createPart with gadgetId from its Location", part.Setup)
	}
	if got["duplicate-create/createGadget"].Kind != xconflict.DuplicateCreate || len(p.Uncovered) != 0 {
		t.Errorf("uncovered %v", p.Uncovered)
	}
}

// payloadSpec has one resource per entry of bodies (name → request schema), each created by
// POST and replaced by PUT with If-Match.
func payloadSpec(bodies map[string]string) string {
	var b strings.Builder
	b.WriteString("openapi: 3.0.3\ninfo: {title: Payloads, version: '1'}\npaths:\n")
	for _, name := range slices.Sorted(maps.Keys(bodies)) {
		fmt.Fprintf(&b, `  /%[1]s:
    post:
      operationId: create_%[1]s
      requestBody: {required: true, content: {application/json: {schema: %[2]s}}}
      responses: {'201': {description: ok, content: {application/json: {schema: {type: object, properties: {id: {type: string}}}}}}}
  /%[1]s/{id}:
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    get:
      operationId: get_%[1]s
      responses: {'200': {description: ok, headers: {ETag: {schema: {type: string}}}}}
    put:
      operationId: replace_%[1]s
      parameters: [{name: If-Match, in: header, required: true, schema: {type: string}}]
      requestBody: {required: true, content: {application/json: {schema: %[2]s}}}
      responses: {'200': {description: ok}, '412': {description: stale}}
`, name, bodies[name])
	}
	return b.String()
}

// A stale-update's racers' payloads stay valid and leave alone what carries identity: they
// change a free string, else an enum, else a number, a flag, a name (the first with values
// enough, else the one with most); never a reference, an id, a type tag, a state or object
// metadata.
func TestRacerPayloads(t *testing.T) {
	tests := []struct {
		name, schema string
		differ       string // "" when every racer must send one payload
		payloads     int
	}{
		{"enum", `{type: object, required: [color], properties: {color: {type: string, enum: [red, green, blue]}}}`, "/color", 3},
		{"enumOrNumber", `{type: object, required: [color, count], properties: {color: {type: string, enum: [red, blue]}, count: {type: integer}}}`, "/count", 8},
		{"text", `{type: object, properties: {note: {type: string}, count: {type: integer}, name: {type: string}}}`, "/note", 8},
		{"number", `{type: object, properties: {count: {type: integer, minimum: 1, maximum: 9}, name: {type: string}}}`, "/count", 8},
		{"flag", `{type: object, required: [on], properties: {on: {type: boolean}}}`, "/on", 2},
		{"name", `{type: object, required: [name], properties: {name: {type: string, maxLength: 40}}}`, "/name", 8},
		{"kubernetes", `{type: object, required: [metadata, spec], properties: {metadata: {type: object, required: [name], properties: {name: {type: string}, uid: {type: string}}}, spec: {type: object, required: [color], properties: {color: {type: string, enum: [red, blue]}}}}}`, "/spec/color", 2},
		{"references", `{type: object, required: [ownerId, id, kind], properties: {ownerId: {type: string}, id: {type: string}, kind: {type: string, enum: [fixed]}}}`, "", 1},
		{"typed", `{type: object, required: [apiVersion, kind, state, status, spec], properties: {apiVersion: {type: string}, kind: {type: string}, state: {type: string}, status: {type: object, required: [phase], properties: {phase: {type: string}}}, spec: {type: object, required: [replicas], properties: {replicas: {type: integer, minimum: 0}}}}}`, "/spec/replicas", 8},
	}
	bodies := map[string]string{}
	for _, tt := range tests {
		bodies[tt.name] = tt.schema
	}
	got := byID(planYAML(t, payloadSpec(bodies), profile.Profile{}))
	ptrs := []string{"/color", "/note", "/count", "/on", "/name", "/metadata/name", "/metadata/uid", "/spec/color", "/ownerId", "/id", "/kind",
		"/apiVersion", "/state", "/status/phase", "/spec/replicas"}
	for _, tt := range tests {
		sc, ok := got["stale-update/replace_"+tt.name]
		if !ok || sc.Blocked != "" {
			t.Errorf("%s: planned %v, blocked %q", tt.name, ok, sc.Blocked)
			continue
		}
		if len(sc.Racers) != tt.payloads {
			t.Errorf("%s: %d racers; want %d payloads", tt.name, len(sc.Racers), tt.payloads)
			continue
		}
		// A racer per payload where the body admits fewer than the default concurrency.
		want := DefaultConcurrency
		if tt.payloads > 1 {
			want = min(tt.payloads, DefaultConcurrency)
		}
		if sc.Concurrency != want {
			t.Errorf("%s: concurrency %d; want %d", tt.name, sc.Concurrency, want)
		}
		for i, r := range sc.Racers[1:] {
			var diff []string
			for _, ptr := range ptrs {
				a, errA := runtimeexpr.Pointer(sc.Racers[0].Body, ptr)
				b, errB := runtimeexpr.Pointer(r.Body, ptr)
				if (errA == nil) != (errB == nil) || !reflect.DeepEqual(a, b) {
					diff = append(diff, ptr)
				}
			}
			if !reflect.DeepEqual(diff, []string{tt.differ}) {
				t.Errorf("%s: racer %d body %v differs from %v at %v; want only %s", tt.name, i+1, r.Body, sc.Racers[0].Body, diff, tt.differ)
			}
			for j := range i + 1 {
				if reflect.DeepEqual(r.Body, sc.Racers[j].Body) {
					t.Errorf("%s: racers %d and %d send one payload", tt.name, j, i+1)
				}
			}
		}
		note := noteWith(sc, "racers: ")
		switch {
		case tt.differ == "" && !strings.HasPrefix(note, "racers: one payload"):
			t.Errorf("%s: note %q; want it to say there is one payload", tt.name, note)
		case tt.differ != "" && !strings.Contains(note, "differing at "+tt.differ):
			t.Errorf("%s: note %q", tt.name, note)
		case tt.payloads > 1 && tt.payloads < DefaultConcurrency && !strings.Contains(note, fmt.Sprintf("concurrency %d, a racer per payload", tt.payloads)):
			t.Errorf("%s: note %q; want it to say the racers were cut to one per payload", tt.name, note)
		}
	}
}

// kubeSpec creates Kubernetes-style objects keyed by /metadata/name, announcing a duplicate
// with 409 (or, with seeOther, 303 See Other to the existing one) and updating them with
// /metadata/resourceVersion in the body.
func kubeSpec(seeOther bool) string {
	dup := `'409': {description: AlreadyExists}`
	if seeOther {
		dup = `'303': {description: the existing widget, headers: {Location: {schema: {type: string}}}}`
	}
	return `
openapi: 3.0.3
info: {title: Kube, version: "1"}
paths:
  /widgets:
    post:
      operationId: createWidget
      requestBody: {required: true, content: {application/json: {schema: {$ref: '#/components/schemas/Widget'}}}}
      responses:
        '201': {description: created, content: {application/json: {schema: {$ref: '#/components/schemas/Widget'}}}}
        ` + dup + `
  /widgets/{name}:
    parameters: [{name: name, in: path, required: true, schema: {type: string}}]
    get:
      operationId: getWidget
      responses: {'200': {description: ok, content: {application/json: {schema: {$ref: '#/components/schemas/Widget'}}}}}
    put:
      operationId: replaceWidget
      requestBody: {required: true, content: {application/json: {schema: {$ref: '#/components/schemas/Widget'}}}}
      responses: {'200': {description: ok}, '409': {description: Conflict}}
components:
  schemas:
    Widget:
      type: object
      required: [metadata, spec]
      properties:
        metadata:
          type: object
          required: [name]
          properties: {name: {type: string, pattern: '^[a-z0-9-]{3,40}$'}, resourceVersion: {type: string}}
        spec:
          type: object
          required: [color]
          properties: {color: {type: string, enum: [red, blue]}}
`
}

// A body keyed in a nested member (Kubernetes' /metadata/name) is made unique there, for the
// race, the probe, the retry and every subject; a create that announces duplicates with 303
// is a duplicate-create too.
func TestNestedKeyAndSeeOther(t *testing.T) {
	name := func(c Call) string {
		v, _ := runtimeexpr.Pointer(c.Body, "/metadata/name")
		s, _ := v.(string)
		return s
	}
	p := planYAML(t, kubeSpec(false), mustProfile(t, "kubernetes"))
	got := byID(p)
	dup := got["duplicate-create/createWidget"]
	seen := map[string]string{}
	for what, c := range map[string]Call{"racer": dup.Racers[0], "probe": dup.Probe.Calls[0], "retry": *dup.Retry, "setup": got["stale-update/replaceWidget"].Setup[0]} {
		n := name(c)
		if !regexp.MustCompile(`^[a-z0-9-]{3,40}$`).MatchString(n) {
			t.Errorf("%s /metadata/name %q breaks its pattern", what, n)
		}
		if prev, ok := seen[n]; ok {
			t.Errorf("%s and %s share /metadata/name %q", prev, what, n)
		}
		seen[n] = what
	}
	rekeyed, err := p.Rekey(dup.Racers[0], "attempt-2")
	if err != nil || name(rekeyed) == name(dup.Racers[0]) {
		t.Errorf("rekeyed /metadata/name %q (%v); want a new one", name(rekeyed), err)
	}
	// The racers reach the object by its name, which the create returns at /metadata/name.
	if r := got["stale-update/replaceWidget"].Racers[0]; r.Params["name"] != "$response.body#/metadata/name" || r.Binding != BindInferred {
		t.Errorf("replaceWidget racer params %v (%s); want name bound to $response.body#/metadata/name", r.Params, r.Binding)
	}
	if st := got["stale-update/replaceWidget"]; st.Version == nil || st.Version.Field != "/metadata/resourceVersion" || !reflect.DeepEqual(st.Expect, []int{409}) {
		t.Errorf("stale-update version %+v expect %v; want /metadata/resourceVersion, [409]", st.Version, st.Expect)
	}

	see := byID(planYAML(t, kubeSpec(true), profile.Profile{}))["duplicate-create/createWidget"]
	if see.Source != FromInference || !reflect.DeepEqual(see.Expect, []int{409, 303}) || !strings.Contains(noteWith(see, "kind "), "303 See Other") {
		t.Errorf("303 create = source %s expect %v notes %v; want inferred, [409 303]", see.Source, see.Expect, see.Notes)
	}
}

// An x-conflict concurrency is kept even where the body admits fewer payloads: they are cycled,
// and the note says a loser may then rightly be answered as already applied.
func TestExplicitConcurrencyCyclesPayloads(t *testing.T) {
	spec := strings.Replace(payloadSpec(map[string]string{"enum": `{type: object, required: [color], properties: {color: {type: string, enum: [red, green, blue]}}}`}),
		"      operationId: replace_enum\n", "      operationId: replace_enum\n      x-conflict: {kind: stale-update, concurrency: 6}\n", 1)
	sc := byID(planYAML(t, spec, profile.Profile{}))["stale-update/replace_enum"]
	if sc.Source != FromXConflict || sc.Concurrency != 6 || len(sc.Racers) != 3 || !strings.Contains(noteWith(sc, "racers: "), "cycled over 6 racers") || !strings.Contains(noteWith(sc, "racers: "), "already applied") {
		t.Errorf("source %s concurrency %d racers %d note %q; want x-conflict's 6 over 3 cycled payloads", sc.Source, sc.Concurrency, len(sc.Racers), noteWith(sc, "racers: "))
	}
}

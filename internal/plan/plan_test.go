package plan

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/getkin/kin-openapi/openapi3"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/internal/synth"
	"github.com/conflictcheck/conflictcheck/internal/xconflict"
	"github.com/conflictcheck/conflictcheck/openapi"
)

// planFile loads and plans a spec file with a fixed seed and run id.
func planFile(t *testing.T, path, runID string) *Plan {
	t.Helper()
	doc, err := specload.Load(context.Background(), path, specload.Options{})
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	p, err := New(doc, Options{Seed: 1, RunID: runID})
	if err != nil {
		t.Fatalf("plan %s: %v", path, err)
	}
	return p
}

func referencePath(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "reference.yaml")
	if err := os.WriteFile(path, openapi.Reference, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func byID(p *Plan) map[string]Scenario {
	m := map[string]Scenario{}
	for _, s := range p.Scenarios {
		m[s.ID] = s
	}
	return m
}

func TestPlanReference(t *testing.T) {
	p := planFile(t, referencePath(t), "run1")
	got := byID(p)
	want := []struct {
		id, op, read, subject string
		kind                  xconflict.Kind
		source                string
		expect                []int
	}{
		{"duplicate-create/createItem", "createItem", "getItem", "", xconflict.DuplicateCreate, FromXConflict, []int{409}},
		{"stale-update/replaceItem", "replaceItem", "getItem", "createItem", xconflict.StaleUpdate, FromXConflict, []int{412}},
		{"stale-update/patchItem", "patchItem", "getItem", "createItem", xconflict.StaleUpdate, FromXConflict, []int{409}},
		{"delete-in-use/deleteItem", "deleteItem", "getItem", "createItem", xconflict.DeleteInUse, FromXConflict, []int{409, 422}},
		{"idempotency-key/createOrder", "createOrder", "getOrder", "createItem", xconflict.IdempotencyKey, FromXConflict, []int{409}},
		{"capacity/createOrder", "createOrder", "getOrder", "createItem", xconflict.Capacity, FromXConflict, []int{409}},
		{"transition/cancelOrder", "cancelOrder", "getOrder", "createOrder", xconflict.Transition, FromXConflict, []int{409}},
		{"transition/shipOrder", "shipOrder", "getOrder", "createOrder", xconflict.Transition, FromInference, []int{409}},
	}
	if len(p.Scenarios) != len(want) {
		t.Errorf("got %d scenarios, want %d: %v", len(p.Scenarios), len(want), keys(got))
	}
	kinds := map[xconflict.Kind]bool{}
	for _, w := range want {
		s, ok := got[w.id]
		if !ok {
			t.Errorf("missing scenario %s (have %v)", w.id, keys(got))
			continue
		}
		kinds[s.Kind] = true
		if s.Operation != w.op || s.Kind != w.kind || s.Source != w.source || s.Read != w.read || s.Subject != w.subject || !reflect.DeepEqual(s.Expect, w.expect) {
			t.Errorf("%s = {op %s kind %s source %s read %s subject %s expect %v}, want %+v", w.id, s.Operation, s.Kind, s.Source, s.Read, s.Subject, s.Expect, w)
		}
		if s.Blocked != "" {
			t.Errorf("%s blocked: %s", w.id, s.Blocked)
		}
		if len(s.Racers) == 0 {
			t.Errorf("%s has no racers", w.id)
		}
	}
	for _, k := range xconflict.Kinds {
		if !kinds[k] {
			t.Errorf("no %s scenario planned for the reference spec", k)
		}
	}
	if len(p.Uncovered) != 0 || len(p.Warnings) != 0 {
		t.Errorf("uncovered %v, warnings %v; want none", p.Uncovered, p.Warnings)
	}
	if p.Spec.OpenAPI != "3.0.3" || p.Spec.Title == "" {
		t.Errorf("spec info = %+v", p.Spec)
	}

	// Links take precedence: replaceItem's id comes from createItem's ReplaceItem link.
	r := got["stale-update/replaceItem"].Racers[0]
	if r.Binding != BindLink || r.Params["id"] != "$response.body#/id" {
		t.Errorf("replaceItem racer binding = %s %v, want link $response.body#/id", r.Binding, r.Params)
	}
	// The transition's subject is an order, which needs an item first.
	tr := got["transition/cancelOrder"]
	if len(tr.Setup) != 2 || tr.Setup[0].Operation != "createItem" || tr.Setup[1].Operation != "createOrder" {
		t.Fatalf("transition setup = %+v, want createItem then createOrder", tr.Setup)
	}
	if body, _ := tr.Setup[1].Body.(map[string]any); body["itemId"] != "$response.body#/id" {
		t.Errorf("createOrder setup body = %v, want itemId bound to the item", tr.Setup[1].Body)
	}
	if len(tr.Racers) != 2 || tr.Racers[0].Operation != "cancelOrder" || tr.Racers[1].Operation != "shipOrder" {
		t.Errorf("transition racers = %+v", tr.Racers)
	}
	// delete-in-use races a delete with an order for the same item, resolved by a cancel bound
	// to the order.
	d := got["delete-in-use/deleteItem"]
	if len(d.Racers) != 2 || d.Racers[1].Operation != "createOrder" || d.ResolveCall == nil || d.ResolveCall.Operation != "cancelOrder" || d.Concurrency != 2 {
		t.Errorf("delete-in-use = racers %+v resolve %+v concurrency %d", d.Racers, d.ResolveCall, d.Concurrency)
	}
	if body, _ := d.Racers[1].Body.(map[string]any); body["itemId"] != "$response.body#/id" {
		t.Errorf("dependent body = %v, want itemId bound to the item", d.Racers[1].Body)
	}
	// Idempotency: one key for every racer; capacity: a fresh key per racer.
	if k := got["idempotency-key/createOrder"].Racers[0].Params["Idempotency-Key"]; k == "" {
		t.Errorf("idempotency racer has no key: %v", got["idempotency-key/createOrder"].Racers[0].Params)
	}
	if l := got["duplicate-create/createItem"].ListCall; l == nil || l.Operation != "listItems" || !reflect.DeepEqual(l.Params, map[string]string{"sku": "$request.body#/sku"}) {
		t.Errorf("duplicate-create list call %+v; want listItems filtered by sku from the racer's body", l)
	}
	for id, sc := range got {
		if sc.ListCall != nil && id != "duplicate-create/createItem" {
			t.Errorf("%s has a list call %+v; only duplicate-create lists", id, sc.ListCall)
		}
	}
	if c := got["capacity/createOrder"]; !reflect.DeepEqual(c.Racers[0].Fresh, []string{"Idempotency-Key"}) || c.InvariantCall == nil || c.InvariantCall.Operation != "getItem" {
		t.Errorf("capacity racer fresh %v, invariant call %+v", c.Racers[0].Fresh, c.InvariantCall)
	}
}

func TestUniquePerRunEqualWithinScenario(t *testing.T) {
	path := referencePath(t)
	a, b, a2 := planFile(t, path, "run-a"), planFile(t, path, "run-b"), planFile(t, path, "run-a")
	sku := func(p *Plan, id string) any {
		body, _ := byID(p)[id].Racers[0].Body.(map[string]any)
		return body["sku"]
	}
	dup := "duplicate-create/createItem"
	if sku(a, dup) == nil || sku(a, dup) == sku(b, dup) {
		t.Errorf("duplicate-create sku is %v in run a and %v in run b: want unique per run", sku(a, dup), sku(b, dup))
	}
	if !reflect.DeepEqual(a, a2) {
		t.Errorf("same seed and run id planned differently")
	}
	// Setup creates of different scenarios must not collide with each other either.
	seen := map[any]string{}
	for _, s := range a.Scenarios {
		for _, c := range s.Setup {
			if c.Operation != "createItem" {
				continue
			}
			v := c.Body.(map[string]any)["sku"]
			if prev, dup := seen[v]; dup {
				t.Errorf("setup sku %v shared by %s and %s", v, prev, s.ID)
			}
			seen[v] = s.ID
		}
	}
	if v, ok := seen[sku(a, dup)]; ok {
		t.Errorf("duplicate-create key %v also used by the setup of %s", sku(a, dup), v)
	}
}

func TestPlanInference(t *testing.T) {
	p := planFile(t, "testdata/inferred.yaml", "r")
	got := byID(p)
	for id, want := range map[string]struct {
		kind   xconflict.Kind
		expect []int
	}{
		"duplicate-create/createWidget": {xconflict.DuplicateCreate, []int{409}},
		"stale-update/replaceWidget":    {xconflict.StaleUpdate, []int{412}},
		"stale-update/patchWidget":      {xconflict.StaleUpdate, []int{409}},
		"transition/publishWidget":      {xconflict.Transition, []int{409}},
		"idempotency-key/createPayment": {xconflict.IdempotencyKey, []int{409}},
	} {
		s, ok := got[id]
		if !ok {
			t.Errorf("missing inferred scenario %s (have %v)", id, keys(got))
			continue
		}
		if s.Source != FromInference || s.Kind != want.kind || !reflect.DeepEqual(s.Expect, want.expect) || len(s.Notes) == 0 {
			t.Errorf("%s = source %s kind %s expect %v notes %v", id, s.Source, s.Kind, s.Expect, s.Notes)
		}
	}
	if v := got["stale-update/patchWidget"].Version; v == nil || v.Field != "/_rev" {
		t.Errorf("patchWidget version = %+v, want field /_rev", v)
	}
	if v := got["stale-update/replaceWidget"].Version; v == nil || v.Header != "ETag" {
		t.Errorf("replaceWidget version = %+v, want header ETag", v)
	}
	// Inferred binding: widgetId is a property of the created widget.
	if r := got["stale-update/replaceWidget"].Racers[0]; r.Binding != BindInferred || r.Params["widgetId"] != "$response.body#/widgetId" {
		t.Errorf("replaceWidget binding = %s %v", r.Binding, r.Params)
	}
	// The synthesised key honours its pattern; readOnly fields are left out.
	body := got["duplicate-create/createWidget"].Racers[0].Body.(map[string]any)
	if name, _ := body["name"].(string); !strings.Contains(name, "-") {
		t.Errorf("createWidget name = %v, want a match of ^[a-z]{3,8}-[0-9]{2}$", body["name"])
	}
	unc := map[string]string{}
	for _, u := range p.Uncovered {
		unc[u.Operation] = u.Reason
	}
	if !strings.Contains(unc["deleteWidget"], "dependent") || !strings.Contains(unc["putTag"], "If-Match") {
		t.Errorf("uncovered = %v, want deleteWidget (needs dependent) and putTag (no If-Match)", unc)
	}
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "createNote") {
		t.Errorf("warnings = %v, want one about createNote", p.Warnings)
	}
}

func TestWriteJSONShape(t *testing.T) {
	p := planFile(t, referencePath(t), "r")
	var buf bytes.Buffer
	if err := p.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Spec      map[string]string `json:"spec"`
		Scenarios []map[string]any  `json:"scenarios"`
		Uncovered []map[string]any  `json:"uncovered"`
		Warnings  []string          `json:"warnings"`
	}
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatalf("plan JSON: %v\n%s", err, buf.String())
	}
	for _, k := range []string{"title", "version", "openapi"} {
		if out.Spec[k] == "" {
			t.Errorf("spec.%s missing", k)
		}
	}
	for _, s := range out.Scenarios {
		for _, k := range []string{"id", "kind", "operation", "method", "path", "source", "expect", "read", "subject"} {
			if _, ok := s[k]; !ok {
				t.Errorf("scenario %v lacks %q", s["id"], k)
			}
		}
	}
	if out.Uncovered == nil || out.Warnings == nil {
		t.Errorf("uncovered and warnings must be arrays, not null: %s", buf.String())
	}
	var text bytes.Buffer
	if err := p.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"KIND", "duplicate-create", "createItem", "POST /items", "x-conflict", "409", "getItem", "id ← $response.body#/id (link)"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text plan lacks %q:\n%s", want, text.String())
		}
	}
}

func keys(m map[string]Scenario) []string { return slices.Sorted(maps.Keys(m)) }

func TestProbes(t *testing.T) {
	got := byID(planFile(t, referencePath(t), "probe"))
	ops := func(pr *Probe) []string {
		var out []string
		for _, c := range pr.Calls {
			out = append(out, c.Operation)
		}
		return out
	}
	tests := []struct {
		id          string
		calls       []string
		expect      []int
		sameVersion bool
		until       int
	}{
		{"duplicate-create/createItem", []string{"createItem", "createItem"}, []int{409}, false, 0},
		{"stale-update/replaceItem", []string{"replaceItem", "replaceItem"}, []int{412}, true, 0},
		{"stale-update/patchItem", []string{"patchItem", "patchItem"}, []int{409}, true, 0},
		{"transition/cancelOrder", []string{"cancelOrder", "shipOrder"}, []int{409}, false, 0},
		{"delete-in-use/deleteItem", []string{"createOrder", "deleteItem"}, []int{409, 422}, false, 0},
		{"idempotency-key/createOrder", []string{"createOrder", "createOrder"}, []int{422}, false, 0},
		{"capacity/createOrder", []string{"createOrder"}, []int{409}, false, DefaultProbeLimit},
	}
	for _, tt := range tests {
		pr := got[tt.id].Probe
		if pr == nil {
			t.Errorf("%s: no probe", tt.id)
			continue
		}
		if !reflect.DeepEqual(ops(pr), tt.calls) || !reflect.DeepEqual(pr.Expect, tt.expect) || pr.SameVersion != tt.sameVersion || pr.UntilRejected != tt.until {
			t.Errorf("%s probe = %v expect %v same-version %v until %d; want %+v", tt.id, ops(pr), pr.Expect, pr.SameVersion, pr.UntilRejected, tt)
		}
	}
	// The duplicate-create probe has its own key, so the race's key is still free.
	dup := got["duplicate-create/createItem"]
	if a, b := dup.Probe.Calls[0].Body.(map[string]any)["sku"], dup.Racers[0].Body.(map[string]any)["sku"]; a == b || a == nil {
		t.Errorf("probe sku %v equals the race's %v", a, b)
	}
	// The idempotency probe reuses its own key with another payload.
	idem := got["idempotency-key/createOrder"].Probe
	k0, k1 := idem.Calls[0].Params["Idempotency-Key"], idem.Calls[1].Params["Idempotency-Key"]
	race := got["idempotency-key/createOrder"].Racers[0].Params["Idempotency-Key"]
	if k0 == "" || k0 != k1 || k0 == race || reflect.DeepEqual(idem.Calls[0].Body, idem.Calls[1].Body) {
		t.Errorf("idempotency probe keys %q %q (race %q), bodies %v %v: want one new key, two payloads", k0, k1, race, idem.Calls[0].Body, idem.Calls[1].Body)
	}
}

func TestRetries(t *testing.T) {
	got := byID(planFile(t, referencePath(t), "retry"))
	dup := got["duplicate-create/createItem"]
	sku := func(c *Call) any { return c.Body.(map[string]any)["sku"] }
	if dup.Retry == nil || sku(dup.Retry) == sku(&dup.Racers[0]) || sku(dup.Retry) == sku(&dup.Probe.Calls[0]) {
		t.Errorf("duplicate-create retry = %+v: want a key of its own", dup.Retry)
	}
	idem := got["idempotency-key/createOrder"]
	if idem.Retry == nil || idem.Retry.Params["Idempotency-Key"] == idem.Racers[0].Params["Idempotency-Key"] {
		t.Errorf("idempotency retry = %+v: want a new key", idem.Retry)
	}
	if got["stale-update/patchItem"].Retry != nil || got["capacity/createOrder"].Retry != nil {
		t.Errorf("stale-update retries by re-reading and capacity has no generic resolution: want no Retry call")
	}
}

func TestCapacityIsSizedBelowTheRacers(t *testing.T) {
	c := byID(planFile(t, referencePath(t), "cap"))["capacity/createOrder"]
	body := c.Setup[len(c.Setup)-1].Body.(map[string]any)
	if stock, _ := body["stock"].(float64); stock != float64(c.Concurrency/2) {
		t.Errorf("capacity subject stock = %v, want %d (half of %d racers)", body["stock"], c.Concurrency/2, c.Concurrency)
	}
	// Other scenarios keep the example's stock.
	if s := byID(planFile(t, referencePath(t), "cap"))["idempotency-key/createOrder"].Setup[0].Body.(map[string]any)["stock"]; s == float64(4) {
		t.Errorf("idempotency-key subject stock changed to %v", s)
	}
}

func TestRekey(t *testing.T) {
	p := planFile(t, referencePath(t), "rekey")
	got := byID(p)
	setup := got["transition/cancelOrder"].Setup[0]
	if len(setup.Unique) != 1 || setup.Unique[0].Pointer != "/sku" {
		t.Fatalf("setup unique = %+v, want the sku", setup.Unique)
	}
	a, err := p.Rekey(setup, "1")
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := p.Rekey(setup, "1")
	b, _ := p.Rekey(setup, "2")
	sku := func(c Call) any { return c.Body.(map[string]any)["sku"] }
	if sku(a) == sku(setup) || sku(a) == sku(b) || sku(a) != sku(a2) {
		t.Errorf("rekeyed skus: original %v, salt 1 %v and %v, salt 2 %v: want new, equal per salt, distinct across salts", sku(setup), sku(a), sku(a2), sku(b))
	}
	if s, _ := sku(a).(string); !regexp.MustCompile(`^SKU-`).MatchString(s) || a.Body.(map[string]any)["name"] != setup.Body.(map[string]any)["name"] {
		t.Errorf("rekeyed body %v: want only the sku changed, still shaped like one", a.Body)
	}
	if sku(setup) == sku(a) || setup.Body.(map[string]any)["sku"] != got["transition/cancelOrder"].Setup[0].Body.(map[string]any)["sku"] {
		t.Errorf("Rekey changed the plan's own call")
	}
	racer := got["idempotency-key/createOrder"].Racers[0]
	k, _ := p.Rekey(racer, "attempt-2")
	if k.Params["Idempotency-Key"] == racer.Params["Idempotency-Key"] || k.Params["Idempotency-Key"] == "" {
		t.Errorf("rekeyed idempotency key %q, original %q", k.Params["Idempotency-Key"], racer.Params["Idempotency-Key"])
	}
	if _, err := (&Plan{}).Rekey(racer, "x"); err == nil {
		t.Error("Rekey on a plan not made by New succeeded")
	}
}

func TestReadBinding(t *testing.T) {
	got := byID(planFile(t, referencePath(t), "read"))
	for id, winner := range map[string]bool{
		"duplicate-create/createItem": true, "idempotency-key/createOrder": true, "capacity/createOrder": true,
		"stale-update/patchItem": false, "transition/cancelOrder": false, "delete-in-use/deleteItem": false,
	} {
		sc := got[id]
		if sc.ReadsWinner != winner || sc.ReadCall == nil || sc.ReadCall.Binding != BindLink {
			t.Errorf("%s: reads winner %v, read call %+v; want reads winner %v bound by a link", id, sc.ReadsWinner, sc.ReadCall, winner)
		}
	}
}

func TestJSONMediaPicksTheDeclaredType(t *testing.T) {
	op := &openapi3.Operation{RequestBody: &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithContent(openapi3.Content{
		"text/plain":                   openapi3.NewMediaType(),
		"application/merge-patch+json": openapi3.NewMediaType(),
	})}}
	if name, mt := jsonMedia(op); name != "application/merge-patch+json" || mt == nil {
		t.Errorf("jsonMedia = %q, want application/merge-patch+json", name)
	}
	if c := (&planner{gen: synth.New(1)}).bare(specload.Operation{ID: "x", Method: "PATCH", Path: "/x", Op: op}); c.ContentType != "application/merge-patch+json" {
		t.Errorf("call content type = %q", c.ContentType)
	}
}

// A setup whose body references its own parent is made unique before the reference is bound:
// the expression is no valid uuid, so validating after binding would refuse the unique key.
func TestSetupKeyUniqueDespiteForeignKey(t *testing.T) {
	sc := byID(planFile(t, "testdata/children.yaml", "fk"))["stale-update/replaceChild"]
	if len(sc.Setup) != 2 || sc.Setup[0].Operation != "createParent" || sc.Setup[1].Operation != "createChild" {
		t.Fatalf("setup = %+v, want createParent then createChild", sc.Setup)
	}
	child := sc.Setup[1]
	body := child.Body.(map[string]any)
	if body["parentId"] != "$response.body#/id" {
		t.Errorf("child parentId = %v, want bound to the parent", body["parentId"])
	}
	if !slices.ContainsFunc(child.Unique, func(u Unique) bool { return u.Pointer == "/name" }) {
		t.Errorf("child unique = %+v, notes %v: want /name made unique", child.Unique, sc.Notes)
	}
	if name, _ := body["name"].(string); !regexp.MustCompile(`^[a-z]{3,8}-[0-9]{2}$`).MatchString(name) {
		t.Errorf("child name %q breaks its pattern", name)
	}
}

package suites

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega/types"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/reftest"
	"github.com/conflictcheck/conflictcheck/internal/scenario"
	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/internal/xconflict"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
)

const referenceSpec = "../openapi/reference.yaml"

var (
	docOnce sync.Once
	refDoc  *specload.Document
	refPlan *plan.Plan
	docErr  error
)

// reference loads the reference document and its plan once.
func reference(t *testing.T) (*specload.Document, *plan.Plan) {
	t.Helper()
	docOnce.Do(func() {
		refDoc, docErr = specload.Load(t.Context(), referenceSpec, specload.Options{})
		if docErr == nil {
			refPlan, docErr = plan.New(refDoc, plan.Options{Seed: 1})
		}
	})
	if docErr != nil {
		t.Fatal(docErr)
	}
	return refDoc, refPlan
}

// µs is n microseconds.
func µs(n int) time.Duration { return time.Duration(n) * time.Microsecond }

// exch is a hand-built exchange answered status with body, its times fixed from start (µs).
func exch(method, url, reqBody string, status int, header http.Header, body string, start int) engine.Exchange {
	return engine.Exchange{
		Request: engine.Captured{Method: method, URL: url, Body: []byte(reqBody)},
		Status:  status, Header: header, Body: []byte(body),
		WriteStart: µs(start), Release: µs(start + 100), FirstByte: µs(start + 300), Done: µs(start + 320),
	}
}

var (
	jsonCT    = http.Header{"Content-Type": {"application/json"}}
	problemCT = http.Header{"Content-Type": {"application/problem+json"}}
)

const (
	itemsURL   = "http://127.0.0.1:1/items"
	itemURL    = "http://127.0.0.1:1/items/a1"
	createBody = `{"name":"Widget","price":1250,"sku":"S-1","stock":10}`
	item1      = `{"id":"a1","sku":"S-1","name":"Widget","price":1250,"stock":10,"version":1}`
	item2      = `{"id":"a2","sku":"S-1","name":"Widget","price":1250,"stock":10,"version":1}`
	skuTaken   = `{"detail":"sku S-1 is taken","existingId":"3f2c1a9e-0d4b-4c6e-9a51-7b8e2d4f6a10","sku":"S-1","status":409,"title":"Conflict","type":"urn:conflictcheck:problem:sku-taken"}`
)

// duplicateCreate is a hand-built duplicate-create scenario and result: racer 0 wins, 1 and 2
// are rejected with 409, the probe conflicts, the read after finds the winner's item.
func duplicateCreate() Evidence {
	create := plan.Call{Operation: "createItem", Method: http.MethodPost, Path: "/items"}
	sc := plan.Scenario{ID: "duplicate-create/createItem", Kind: xconflict.DuplicateCreate, Expect: []int{409},
		Racers: []plan.Call{create}, Concurrency: 3, Key: []string{"/sku"},
		Probe: &plan.Probe{Calls: []plan.Call{create, create}, Expect: []int{409}}, Retry: &create,
		ListCall: &plan.Call{Operation: "listItems", Method: http.MethodGet, Path: "/items", Params: map[string]string{"sku": "$request.body#/sku"}}}
	res := scenario.Result{
		Scenario: sc.ID,
		Probe: []engine.Exchange{
			exch("POST", itemsURL, createBody, 201, jsonCT, item1, 0),
			exch("POST", itemsURL, createBody, 409, problemCT, skuTaken, 0),
		},
		Race: engine.Outcome{Exchanges: []engine.Exchange{
			exch("POST", itemsURL, createBody, 201, jsonCT, item1, 0),
			exch("POST", itemsURL, createBody, 409, problemCT, skuTaken, 10),
			exch("POST", itemsURL, createBody, 409, problemCT, skuTaken, 20),
		}},
		Attempts: 1, Overlapped: true,
		After: ptr(exch("GET", itemURL, "", 200, jsonCT, item1, 0)),
		List:  ptr(exch("GET", itemsURL+"?sku=S-1", "", 200, jsonCT, `{"items":[`+item1+`]}`, 0)),
		Retry: ptr(exch("POST", itemsURL, strings.Replace(createBody, "S-1", "S-2", 1), 201, jsonCT, strings.Replace(item2, "S-1", "S-2", 1), 0)),
		Final: ptr(exch("GET", "http://127.0.0.1:1/items/a2", "", 200, jsonCT, strings.Replace(item2, "S-1", "S-2", 1), 0)),
	}
	for i := range res.Race.Exchanges {
		res.Race.Exchanges[i].Racer = i
	}
	return Evidence{Scenario: sc, Result: res}
}

func ptr[T any](v T) *T { return &v }

// edit returns duplicateCreate changed by f.
func edit(f func(ev *Evidence)) Evidence {
	ev := duplicateCreate()
	f(&ev)
	return ev
}

func matchers(t *testing.T) map[string]types.GomegaMatcher {
	doc, _ := reference(t)
	return Matchers(Config{Env: scenario.Env{Doc: doc}})
}

// TestHandBuiltPass: every matcher holds on the hand-built correct duplicate-create.
func TestHandBuiltPass(t *testing.T) {
	for id, m := range matchers(t) {
		ok, err := m.Match(duplicateCreate())
		if err != nil || !ok {
			t.Errorf("%s: ok %v, err %v, failure:\n%s", id, ok, err, m.FailureMessage(nil))
		}
		if got, want := m.NegatedFailureMessage(nil), id+" held for duplicate-create/createItem, expected it not to"; got != want {
			t.Errorf("negated message %q, want %q", got, want)
		}
	}
}

// TestHandBuiltFailures: each matcher's exact failure message on a broken duplicate-create.
func TestHandBuiltFailures(t *testing.T) {
	cases := []struct {
		check string
		ev    Evidence
		want  string
	}{
		{CheckSequentialConflict, edit(func(ev *Evidence) { ev.Result.Probe[1].Status = 201; ev.Result.Probe[1].Body = []byte(item2) }),
			`sequential-conflict failed for duplicate-create/createItem: the conflicting call answered 201, want one of [409]
racer    status  start µs  release µs  first-byte µs  done µs  body
probe 0  201     0         100         300            320      {"id":"a1","sku":"S-1","name":"Widget","price":1250,"stock"…
probe 1  201     0         100         300            320      {"id":"a2","sku":"S-1","name":"Widget","price":1250,"stock"…
`},
		{CheckConflictStatus, edit(func(ev *Evidence) {
			ev.Result.Race.Exchanges[1].Status = 500
			ev.Result.Race.Exchanges[2].Status = 400
		}),
			`conflict-status failed for duplicate-create/createItem: 2 of 2 losers got a status outside [409]: racer 1 got 500, racer 2 got 400
racer  status  start µs  release µs  first-byte µs  done µs  body
0      201     0         100         300            320      {"id":"a1","sku":"S-1","name":"Widget","price":1250,"stock"…
1      500     10        110         310            330      {"detail":"sku S-1 is taken","existingId":"3f2c1a9e-0d4b-4c…
2      400     20        120         320            340      {"detail":"sku S-1 is taken","existingId":"3f2c1a9e-0d4b-4c…
`},
		{CheckSingleWinner, edit(func(ev *Evidence) {
			ev.Result.Race.Exchanges[2].Status = 201
			ev.Result.Race.Exchanges[2].Body = []byte(item2)
		}),
			`single-winner failed for duplicate-create/createItem: 2 racers won, want exactly 1
racer  status  start µs  release µs  first-byte µs  done µs  body
0      201     0         100         300            320      {"id":"a1","sku":"S-1","name":"Widget","price":1250,"stock"…
1      409     10        110         310            330      {"detail":"sku S-1 is taken","existingId":"3f2c1a9e-0d4b-4c…
2      201     20        120         320            340      {"id":"a2","sku":"S-1","name":"Widget","price":1250,"stock"…
`},
		{CheckNoServerError, edit(func(ev *Evidence) {
			ev.Result.Race.Exchanges[1].Status = 500
			ev.Result.Retry.Status = 503
		}),
			`no-server-error failed for duplicate-create/createItem: 2 server errors: racer 1 got 500, retry got 503
racer  status  start µs  release µs  first-byte µs  done µs  body
0      201     0         100         300            320      {"id":"a1","sku":"S-1","name":"Widget","price":1250,"stock"…
1      500     10        110         310            330      {"detail":"sku S-1 is taken","existingId":"3f2c1a9e-0d4b-4c…
2      409     20        120         320            340      {"detail":"sku S-1 is taken","existingId":"3f2c1a9e-0d4b-4c…
retry  503     0         100         300            320      {"id":"a2","sku":"S-2","name":"Widget","price":1250,"stock"…
`},
		{CheckConflictBody, edit(func(ev *Evidence) {
			ev.Result.Race.Exchanges[2].Header = jsonCT
			ev.Result.Race.Exchanges[2].Body = []byte(`{"error":"conflict","status":"409"}`)
		}),
			`conflict-body failed for duplicate-create/createItem: 1 of 3 rejections break the declared response
  racer 2 (409): answered Content-Type "application/json"; the spec declares application/problem+json for 409
racer  status  start µs  release µs  first-byte µs  done µs  body
2      409     20        120         320            340      {"error":"conflict","status":"409"}
`},
		{CheckStateIntact, edit(func(ev *Evidence) {
			ev.Result.After.Body = []byte(strings.Replace(item1, `"version":1`, `"version":2`, 1))
		}),
			`state-intact failed for duplicate-create/createItem: the read after the race differs from winner 0's response
  version = 2, want 1
racer  status  start µs  release µs  first-byte µs  done µs  body
0      201     0         100         300            320      {"id":"a1","sku":"S-1","name":"Widget","price":1250,"stock"…
1      409     10        110         310            330      {"detail":"sku S-1 is taken","existingId":"3f2c1a9e-0d4b-4c…
2      409     20        120         320            340      {"detail":"sku S-1 is taken","existingId":"3f2c1a9e-0d4b-4c…
after  200     0         100         300            320      {"id":"a1","sku":"S-1","name":"Widget","price":1250,"stock"…
`},
		{CheckStateIntact, edit(func(ev *Evidence) {
			ev.Result.List.Body = []byte(`{"items":[` + item1 + `,` + item2 + `,` + strings.Replace(item2, "S-1", "S-9", 1) + `]}`)
		}),
			`state-intact failed for duplicate-create/createItem: 2 resources hold the key /sku="S-1" after the race, want 1
racer  status  start µs  release µs  first-byte µs  done µs  body
0      201     0         100         300            320      {"id":"a1","sku":"S-1","name":"Widget","price":1250,"stock"…
1      409     10        110         310            330      {"detail":"sku S-1 is taken","existingId":"3f2c1a9e-0d4b-4c…
2      409     20        120         320            340      {"detail":"sku S-1 is taken","existingId":"3f2c1a9e-0d4b-4c…
after  200     0         100         300            320      {"id":"a1","sku":"S-1","name":"Widget","price":1250,"stock"…
list   200     0         100         300            320      {"items":[{"id":"a1","sku":"S-1","name":"Widget","price":12…
`},
		{CheckRetrySucceeds, edit(func(ev *Evidence) { ev.Result.Retry.Status = 409; ev.Result.Retry.Body = []byte(skuTaken) }),
			`retry-succeeds failed for duplicate-create/createItem: the retry answered 409, want 2xx
racer  status  start µs  release µs  first-byte µs  done µs  body
0      201     0         100         300            320      {"id":"a1","sku":"S-1","name":"Widget","price":1250,"stock"…
1      409     10        110         310            330      {"detail":"sku S-1 is taken","existingId":"3f2c1a9e-0d4b-4c…
2      409     20        120         320            340      {"detail":"sku S-1 is taken","existingId":"3f2c1a9e-0d4b-4c…
retry  409     0         100         300            320      {"detail":"sku S-1 is taken","existingId":"3f2c1a9e-0d4b-4c…
final  200     0         100         300            320      {"id":"a2","sku":"S-2","name":"Widget","price":1250,"stock"…
`},
		{CheckLinearizable, edit(func(ev *Evidence) {
			ev.Result.Race.Exchanges[2].Status = 201
			ev.Result.Race.Exchanges[2].Body = []byte(item2)
		}),
			`linearizable failed for duplicate-create/createItem: no order of the 3 requests explains the responses (model key-set)
racer  status  start µs  release µs  first-byte µs  done µs  body
0      201     0         100         300            320      {"id":"a1","sku":"S-1","name":"Widget","price":1250,"stock"…
1      409     10        110         310            330      {"detail":"sku S-1 is taken","existingId":"3f2c1a9e-0d4b-4c…
2      201     20        120         320            340      {"id":"a2","sku":"S-1","name":"Widget","price":1250,"stock"…
`},
	}
	ms := matchers(t)
	for _, c := range cases {
		t.Run(c.check, func(t *testing.T) {
			m := ms[c.check]
			ok, err := m.Match(c.ev)
			if err != nil || ok {
				t.Fatalf("ok %v, err %v; want a failure", ok, err)
			}
			if got := m.FailureMessage(c.ev); got != c.want {
				t.Errorf("failure message:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

// TestLinearizableVisualization: a history that is not linearizable gets porcupine's view
// written into the report dir, named in the failure; a linearizable one writes nothing.
func TestLinearizableVisualization(t *testing.T) {
	dir := t.TempDir()
	m := BeLinearizableIn(dir)
	if ok, err := m.Match(duplicateCreate()); !ok || err != nil {
		t.Fatalf("correct history: ok %v, err %v", ok, err)
	}
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Fatalf("a linearizable history wrote %v", files)
	}
	bad := edit(func(ev *Evidence) {
		ev.Result.Race.Exchanges[2].Status = 201
		ev.Result.Race.Exchanges[2].Body = []byte(item2)
	})
	if ok, err := m.Match(bad); ok || err != nil {
		t.Fatalf("two creates of one key: ok %v, err %v; want a failure", ok, err)
	}
	path := filepath.Join(dir, "linearizable-duplicate-create_createItem.html")
	html, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(html), "<html") {
		t.Fatalf("visualization %s: %v (%d bytes)", path, err, len(html))
	}
	if msg := m.FailureMessage(bad); !strings.Contains(msg, "\n  visualization: "+path+"\n") {
		t.Errorf("failure does not name the visualization:\n%s", msg)
	}
}

// TestNoVerdict: without usable evidence, or where a check does not apply, a matcher returns
// an error wrapping ErrNoEvidence or ErrNotApplicable, never a verdict.
func TestNoVerdict(t *testing.T) {
	transition := edit(func(ev *Evidence) { ev.Scenario.Kind = xconflict.Transition })
	cases := []struct {
		name  string
		check string
		ev    any
		want  error
	}{
		{"stopped", CheckSingleWinner, edit(func(ev *Evidence) { ev.Result.Error = "setup createItem answered 400" }), ErrNoEvidence},
		{"not overlapped", CheckConflictStatus, edit(func(ev *Evidence) { ev.Result.Overlapped = false }), ErrNoEvidence},
		{"no race", CheckStateIntact, edit(func(ev *Evidence) { ev.Result.Race.Exchanges = nil }), ErrNoEvidence},
		{"no read after", CheckStateIntact, edit(func(ev *Evidence) { ev.Result.After = nil }), ErrNoEvidence},
		{"no probe", CheckSequentialConflict, edit(func(ev *Evidence) { ev.Result.Probe = nil }), ErrNoEvidence},
		{"no rejection", CheckConflictBody, edit(func(ev *Evidence) { ev.Result.Race.Exchanges = ev.Result.Race.Exchanges[:1]; ev.Result.Probe = nil }), ErrNoEvidence},
		{"no 5xx, not overlapped", CheckNoServerError, edit(func(ev *Evidence) { ev.Result.Overlapped = false }), ErrNoEvidence},
		{"transition retry", CheckRetrySucceeds, transition, ErrNotApplicable},
		{"no model", CheckLinearizable, edit(func(ev *Evidence) { ev.Scenario.Kind = "made-up" }), ErrNotApplicable},
		{"no idempotency header", CheckLinearizable, edit(func(ev *Evidence) { ev.Scenario.Kind = xconflict.IdempotencyKey }), ErrNotApplicable},
		{"pointer", CheckSingleWinner, ptr(edit(func(ev *Evidence) { ev.Result.Overlapped = false })), ErrNoEvidence},
	}
	ms := matchers(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ok, err := ms[c.check].Match(c.ev)
			if !errors.Is(err, c.want) || ok {
				t.Errorf("ok %v, err %v; want an error wrapping %v", ok, err, c.want)
			}
		})
	}
	if _, err := HaveExactlyOneWinner().Match(duplicateCreate().Result); err == nil || !strings.Contains(err.Error(), "want a suites.Evidence") {
		t.Errorf("a bare Result: err %v", err)
	}
	// A 5xx is a verdict even when the scenario stopped.
	ev := edit(func(ev *Evidence) { ev.Result.Error = "race: cancelled"; ev.Result.Race.Exchanges[2].Status = 502 })
	if ok, err := ms[CheckNoServerError].Match(ev); ok || err != nil {
		t.Errorf("5xx in a stopped scenario: ok %v, err %v; want a failure", ok, err)
	}
}

// runScenario runs the reference plan's scenario id against a reference server with fault f
// (memory store, 5 ms race window), trying again while the racers do not overlap.
func runScenario(t *testing.T, f fault.Name, id string) Evidence {
	t.Helper()
	doc, p := reference(t)
	i := slices.IndexFunc(p.Scenarios, func(sc plan.Scenario) bool { return sc.ID == id })
	if i < 0 {
		t.Fatalf("no scenario %s in the reference plan", id)
	}
	srv := reftest.Start(t, f, 5*time.Millisecond)
	env := scenario.Env{Doc: doc, Plan: p, Engine: engine.New(engine.Options{Strategy: engine.LastByte, Timeout: 5 * time.Second}), Targets: []string{srv.URL}}
	var ev Evidence
	for range 3 {
		ev = Evidence{Scenario: p.Scenarios[i], Result: scenario.Run(t.Context(), p.Scenarios[i], env)}
		if ev.Result.Error == "" && ev.Result.Overlapped {
			break
		}
	}
	return ev
}

// TestReferenceServerHolds: on the correct reference server every check holds on every
// scenario of the reference plan, or says it does not apply.
func TestReferenceServerHolds(t *testing.T) {
	_, p := reference(t)
	for _, sc := range p.Scenarios {
		t.Run(sc.ID, func(t *testing.T) {
			ev := runScenario(t, fault.None, sc.ID)
			if ev.Result.Error != "" || !ev.Result.Overlapped {
				t.Skipf("no usable race (error %q, overlapped %v)", ev.Result.Error, ev.Result.Overlapped)
			}
			for id, m := range matchers(t) {
				ok, err := m.Match(ev)
				switch {
				case errors.Is(err, ErrNotApplicable):
				case err != nil:
					t.Errorf("%s: %v", id, err)
				case !ok:
					t.Errorf("%s:\n%s", id, m.FailureMessage(ev))
				}
			}
		})
	}
}

// TestFaultsCaught: each fault fails the check fault.All maps it to.
func TestFaultsCaught(t *testing.T) {
	cases := []struct {
		fault    fault.Name
		scenario string
		check    string
	}{
		{fault.Status500, "duplicate-create/createItem", CheckNoServerError},
		{fault.Status400, "duplicate-create/createItem", CheckConflictStatus},
		{fault.Status200, "stale-update/replaceItem", CheckConflictStatus},
		{fault.Race, "duplicate-create/createItem", CheckSingleWinner},
		{fault.Race, "duplicate-create/createItem", CheckLinearizable},
		{fault.Race, "stale-update/patchItem", CheckLinearizable},
		{fault.Race, "transition/cancelOrder", CheckLinearizable},
		{fault.Race, "capacity/createOrder", CheckSingleWinner},
		{fault.PartialWrite, "duplicate-create/createItem", CheckStateIntact},
		{fault.PartialWrite, "stale-update/replaceItem", CheckStateIntact},
		{fault.BadBody, "duplicate-create/createItem", CheckConflictBody},
		{fault.StaleETag, "stale-update/replaceItem", CheckRetrySucceeds},
		{fault.LostUpdate, "stale-update/replaceItem", CheckSequentialConflict},
		{fault.LostUpdate, "stale-update/patchItem", CheckStateIntact},
		{fault.IdempotencyRace, "idempotency-key/createOrder", CheckSingleWinner},
		{fault.DeleteOrphan, "delete-in-use/deleteItem", CheckSequentialConflict},
		{fault.StaleRead, "transition/cancelOrder", CheckStateIntact},
		{fault.StaleRead, "transition/cancelOrder", CheckLinearizable},
	}
	for _, c := range cases {
		t.Run(string(c.fault)+"/"+c.check+"/"+c.scenario, func(t *testing.T) {
			if i := slices.IndexFunc(fault.All, func(f fault.Fault) bool { return f.Name == c.fault }); i < 0 || !slices.Contains(fault.All[i].Checks, c.check) {
				t.Fatalf("fault.All does not map %s to %s", c.fault, c.check)
			}
			ev := runScenario(t, c.fault, c.scenario)
			m := matchers(t)[c.check]
			ok, err := m.Match(ev)
			if err != nil || ok {
				t.Fatalf("ok %v, err %v; want a failure (race %v)", ok, err, len(ev.Result.Race.Exchanges))
			}
			if msg := m.FailureMessage(ev); !strings.HasPrefix(msg, c.check+" failed for "+c.scenario+": ") || !strings.Contains(msg, "status  start µs  release µs  first-byte µs  done µs  body") {
				t.Errorf("failure message:\n%s", msg)
			}
		})
	}
}

const (
	patchURL = "http://127.0.0.1:1/items/a1"
	v1       = `{"id":"a1","name":"Widget","price":1250,"version":1}`
	v2       = `{"id":"a1","name":"Widget","price":1400,"version":2}`
	v3       = `{"id":"a1","name":"Widget","price":1400,"version":3}`
	mismatch = `{"currentETag":"\"v2\"","currentVersion":2,"detail":"stale","status":409,"title":"Conflict","type":"urn:conflictcheck:problem:version-mismatch"}`
)

// staleUpdate is a hand-built stale-update on a body version: racer 1 wins, 0 and 2 get 409,
// the retry with the fresh version succeeds.
func staleUpdate() Evidence {
	patch := plan.Call{Operation: "patchItem", Method: http.MethodPatch, Path: "/items/{id}"}
	sc := plan.Scenario{ID: "stale-update/patchItem", Kind: xconflict.StaleUpdate, Expect: []int{409},
		Racers: []plan.Call{patch}, Concurrency: 3, Version: &xconflict.Version{Field: "/version"}}
	body := `{"price":1400,"version":1}`
	res := scenario.Result{
		Scenario: sc.ID,
		Before:   ptr(exch("GET", patchURL, "", 200, jsonCT, v1, 0)),
		Race: engine.Outcome{Exchanges: []engine.Exchange{
			exch("PATCH", patchURL, body, 409, problemCT, mismatch, 0),
			exch("PATCH", patchURL, body, 200, jsonCT, v2, 10),
			exch("PATCH", patchURL, body, 409, problemCT, mismatch, 20),
		}},
		Attempts: 1, Overlapped: true,
		After: ptr(exch("GET", patchURL, "", 200, jsonCT, v2, 0)),
		Retry: ptr(exch("PATCH", patchURL, `{"price":1400,"version":2}`, 200, jsonCT, v3, 0)),
		Final: ptr(exch("GET", patchURL, "", 200, jsonCT, v3, 0)),
	}
	return Evidence{Scenario: sc, Result: res}
}

const (
	placed    = `{"id":"o1","quantity":1,"status":"placed"}`
	cancelled = `{"id":"o1","quantity":1,"status":"cancelled"}`
	shipped   = `{"id":"o1","quantity":1,"status":"shipped"}`
	notPlaced = `{"currentStatus":"cancelled","detail":"not placed","status":409,"title":"Conflict","type":"urn:conflictcheck:problem:invalid-transition"}`
)

// transition is a hand-built cancel/ship race on a placed order: the cancel wins.
func transition() Evidence {
	cancel := plan.Call{Operation: "cancelOrder", Method: http.MethodPost, Path: "/orders/{id}/cancel"}
	ship := plan.Call{Operation: "shipOrder", Method: http.MethodPost, Path: "/orders/{id}/ship"}
	sc := plan.Scenario{ID: "transition/cancelOrder", Kind: xconflict.Transition, Expect: []int{409},
		Racers: []plan.Call{cancel, ship}, Concurrency: 2}
	res := scenario.Result{
		Scenario: sc.ID,
		Before:   ptr(exch("GET", "http://127.0.0.1:1/orders/o1", "", 200, jsonCT, placed, 0)),
		Race: engine.Outcome{Exchanges: []engine.Exchange{
			exch("POST", "http://127.0.0.1:1/orders/o1/cancel", "", 200, jsonCT, cancelled, 0),
			exch("POST", "http://127.0.0.1:1/orders/o1/ship", "", 409, problemCT, notPlaced, 10),
		}},
		Attempts: 1, Overlapped: true,
		After: ptr(exch("GET", "http://127.0.0.1:1/orders/o1", "", 200, jsonCT, cancelled, 0)),
	}
	return Evidence{Scenario: sc, Result: res}
}

const (
	orderURL = "http://127.0.0.1:1/orders"
	orderReq = `{"itemId":"a1","quantity":1}`
	noStock  = `{"available":0,"detail":"out of stock","status":409,"title":"Conflict","type":"urn:conflictcheck:problem:insufficient-stock"}`
)

// capacity is a hand-built capacity race: stock 2, racers 0 and 2 win, 1 is refused.
func capacity() Evidence {
	create := plan.Call{Operation: "createOrder", Method: http.MethodPost, Path: "/orders"}
	zero := 0.0
	sc := plan.Scenario{ID: "capacity/createOrder", Kind: xconflict.Capacity, Expect: []int{409},
		Racers: []plan.Call{create}, Concurrency: 3, Invariant: &xconflict.Invariant{Read: "getItem", Field: "/stock", Min: &zero}}
	res := scenario.Result{
		Scenario: sc.ID,
		Setup:    []engine.Exchange{exch("POST", itemsURL, createBody, 201, jsonCT, `{"id":"a1","stock":2}`, 0)},
		Race: engine.Outcome{Exchanges: []engine.Exchange{
			exch("POST", orderURL, orderReq, 201, jsonCT, `{"id":"o1","status":"placed"}`, 0),
			exch("POST", orderURL, orderReq, 409, problemCT, noStock, 10),
			exch("POST", orderURL, orderReq, 201, jsonCT, `{"id":"o2","status":"placed"}`, 20),
		}},
		Attempts: 1, Overlapped: true,
		InvariantAfter: ptr(exch("GET", itemURL, "", 200, jsonCT, `{"id":"a1","stock":0}`, 0)),
	}
	return Evidence{Scenario: sc, Result: res}
}

// TestKinds: the kind-specific rules, on hand-built evidence of each kind: "" means the check
// holds, else the exact failure message.
func TestKinds(t *testing.T) {
	cases := []struct {
		name  string
		check string
		ev    Evidence
		want  string
	}{
		{"stale-update holds", CheckStateIntact, staleUpdate(), ""},
		{"stale-update linearizable", CheckLinearizable, staleUpdate(), ""},
		{"stale-update retry", CheckRetrySucceeds, staleUpdate(), ""},
		{"stale-update one winner", CheckSingleWinner, staleUpdate(), ""},
		{"transition holds", CheckStateIntact, transition(), ""},
		{"transition linearizable", CheckLinearizable, transition(), ""},
		{"transition one winner", CheckSingleWinner, transition(), ""},
		{"capacity within stock", CheckSingleWinner, capacity(), ""},
		{"capacity linearizable", CheckLinearizable, capacity(), ""},
		{"capacity state", CheckStateIntact, capacity(), ""},
		{"stale-update version twice", CheckStateIntact, withEv(staleUpdate(), func(ev *Evidence) { ev.Result.After.Body = []byte(v3) }),
			`state-intact failed for stale-update/patchItem: version went from 1 to 3, want exactly one step
racer  status  start µs  release µs  first-byte µs  done µs  body
0      409     0         100         300            320      {"currentETag":"\"v2\"","currentVersion":2,"detail":"stale"…
1      200     10        110         310            330      {"id":"a1","name":"Widget","price":1400,"version":2}
2      409     20        120         320            340      {"currentETag":"\"v2\"","currentVersion":2,"detail":"stale"…
after  200     0         100         300            320      {"id":"a1","name":"Widget","price":1400,"version":3}
`},
		{"stale-update two winners", CheckLinearizable, withEv(staleUpdate(), func(ev *Evidence) {
			ev.Result.Race.Exchanges[2].Status, ev.Result.Race.Exchanges[2].Body = 200, []byte(v2)
		}),
			`linearizable failed for stale-update/patchItem: no order of the 7 requests explains the responses (model register)
racer   status  start µs  release µs  first-byte µs  done µs  body
0       409     0         100         300            320      {"currentETag":"\"v2\"","currentVersion":2,"detail":"stale"…
1       200     10        110         310            330      {"id":"a1","name":"Widget","price":1400,"version":2}
2       200     20        120         320            340      {"id":"a1","name":"Widget","price":1400,"version":2}
before  200     0         100         300            320      {"id":"a1","name":"Widget","price":1250,"version":1}
after   200     0         100         300            320      {"id":"a1","name":"Widget","price":1400,"version":2}
retry   200     0         100         300            320      {"id":"a1","name":"Widget","price":1400,"version":3}
final   200     0         100         300            320      {"id":"a1","name":"Widget","price":1400,"version":3}
`},
		{"stale-update retry not visible", CheckRetrySucceeds, withEv(staleUpdate(), func(ev *Evidence) { ev.Result.Final.Body = []byte(v2) }),
			`retry-succeeds failed for stale-update/patchItem: the read after the retry does not reflect it
  version 2, want the retry's 3
racer  status  start µs  release µs  first-byte µs  done µs  body
0      409     0         100         300            320      {"currentETag":"\"v2\"","currentVersion":2,"detail":"stale"…
1      200     10        110         310            330      {"id":"a1","name":"Widget","price":1400,"version":2}
2      409     20        120         320            340      {"currentETag":"\"v2\"","currentVersion":2,"detail":"stale"…
retry  200     0         100         300            320      {"id":"a1","name":"Widget","price":1400,"version":3}
final  200     0         100         300            320      {"id":"a1","name":"Widget","price":1400,"version":2}
`},
		{"transition both moved", CheckLinearizable, withEv(transition(), func(ev *Evidence) {
			ev.Result.Race.Exchanges[1].Status, ev.Result.Race.Exchanges[1].Body = 200, []byte(shipped)
		}),
			`linearizable failed for transition/cancelOrder: no order of the 4 requests explains the responses (model state-machine)
racer   status  start µs  release µs  first-byte µs  done µs  body
0       200     0         100         300            320      {"id":"o1","quantity":1,"status":"cancelled"}
1       200     10        110         310            330      {"id":"o1","quantity":1,"status":"shipped"}
before  200     0         100         300            320      {"id":"o1","quantity":1,"status":"placed"}
after   200     0         100         300            320      {"id":"o1","quantity":1,"status":"cancelled"}
`},
		{"transition both moved, state", CheckStateIntact, withEv(transition(), func(ev *Evidence) {
			ev.Result.Race.Exchanges[1].Status, ev.Result.Race.Exchanges[1].Body = 200, []byte(shipped)
		}),
			`state-intact failed for transition/cancelOrder: 2 racers wrote, want only the winner's write
racer  status  start µs  release µs  first-byte µs  done µs  body
0      200     0         100         300            320      {"id":"o1","quantity":1,"status":"cancelled"}
1      200     10        110         310            330      {"id":"o1","quantity":1,"status":"shipped"}
after  200     0         100         300            320      {"id":"o1","quantity":1,"status":"cancelled"}
`},
		{"capacity oversold", CheckSingleWinner, withEv(capacity(), func(ev *Evidence) {
			ev.Result.Race.Exchanges[1].Status, ev.Result.Race.Exchanges[1].Body = 201, []byte(`{"id":"o3","status":"placed"}`)
			ev.Result.InvariantAfter.Body = []byte(`{"id":"a1","stock":-1}`)
		}),
			`single-winner failed for capacity/createOrder: /stock = -1, below its minimum 0 after 3 wins
racer      status  start µs  release µs  first-byte µs  done µs  body
0          201     0         100         300            320      {"id":"o1","status":"placed"}
1          201     10        110         310            330      {"id":"o3","status":"placed"}
2          201     20        120         320            340      {"id":"o2","status":"placed"}
invariant  200     0         100         300            320      {"id":"a1","stock":-1}
`},
		{"capacity lost decrement", CheckSingleWinner, withEv(capacity(), func(ev *Evidence) {
			ev.Result.Race.Exchanges[1].Status, ev.Result.Race.Exchanges[1].Body = 201, []byte(`{"id":"o3","status":"placed"}`)
		}),
			`single-winner failed for capacity/createOrder: 3 racers won, but /stock = 2 allowed at most 2
racer      status  start µs  release µs  first-byte µs  done µs  body
0          201     0         100         300            320      {"id":"o1","status":"placed"}
1          201     10        110         310            330      {"id":"o3","status":"placed"}
2          201     20        120         320            340      {"id":"o2","status":"placed"}
invariant  200     0         100         300            320      {"id":"a1","stock":0}
`},
		{"capacity lost decrement, history", CheckLinearizable, withEv(capacity(), func(ev *Evidence) {
			ev.Result.Race.Exchanges[1].Status, ev.Result.Race.Exchanges[1].Body = 201, []byte(`{"id":"o3","status":"placed"}`)
		}),
			`linearizable failed for capacity/createOrder: no order of the 4 requests explains the responses (model counter)
racer      status  start µs  release µs  first-byte µs  done µs  body
0          201     0         100         300            320      {"id":"o1","status":"placed"}
1          201     10        110         310            330      {"id":"o3","status":"placed"}
2          201     20        120         320            340      {"id":"o2","status":"placed"}
invariant  200     0         100         300            320      {"id":"a1","stock":0}
`},
		{"idempotency replays", CheckConflictStatus, idempotency(false), ""},
		{"idempotency one order", CheckSingleWinner, idempotency(false), ""},
		{"idempotency two orders", CheckSingleWinner, idempotency(true),
			`single-winner failed for idempotency-key/createOrder: 2 distinct resources among 2 winners, want exactly 1
racer  status  start µs  release µs  first-byte µs  done µs  body
0      201     0         100         300            320      {"id":"o1","status":"placed"}
1      201     10        110         310            330      {"id":"o2","status":"placed"}
2      409     20        120         320            340      {"detail":"in flight","status":409}
`},
		{"idempotency two orders, status", CheckConflictStatus, idempotency(true),
			`conflict-status failed for idempotency-key/createOrder: 1 of 2 losers got a status outside [409]: racer 1 got 201
racer  status  start µs  release µs  first-byte µs  done µs  body
0      201     0         100         300            320      {"id":"o1","status":"placed"}
1      201     10        110         310            330      {"id":"o2","status":"placed"}
2      409     20        120         320            340      {"detail":"in flight","status":409}
`},
		{"delete-in-use both won", CheckSingleWinner, deleteInUse(201),
			`single-winner failed for delete-in-use/deleteItem: the delete and 1 dependent creation(s) all won, want one side refused
racer  status  start µs  release µs  first-byte µs  done µs  body
0      204     0         100         300            320
1      201     10        110         310            330      {"id":"o1","status":"placed"}
`},
		{"delete-in-use delete won", CheckSingleWinner, deleteInUse(422), ""},
		{"delete-in-use delete won, state", CheckStateIntact, deleteInUse(422), ""},
		{"idempotency linearizable", CheckLinearizable, idempotency(false), ""},
		{"idempotency two orders, history", CheckLinearizable, idempotency(true),
			`linearizable failed for idempotency-key/createOrder: no order of the 3 requests explains the responses (model idempotency)
racer  status  start µs  release µs  first-byte µs  done µs  body
0      201     0         100         300            320      {"id":"o1","status":"placed"}
1      201     10        110         310            330      {"id":"o2","status":"placed"}
2      409     20        120         320            340      {"detail":"in flight","status":409}
`},
		{"delete-in-use linearizable", CheckLinearizable, deleteInUse(422), ""},
		{"delete-in-use both won, history", CheckLinearizable, deleteInUse(201),
			`linearizable failed for delete-in-use/deleteItem: no order of the 3 requests explains the responses (model delete-in-use)
racer  status  start µs  release µs  first-byte µs  done µs  body
0      204     0         100         300            320
1      201     10        110         310            330      {"id":"o1","status":"placed"}
after  404     0         100         300            320      {"status":404}
`},
	}
	ms := matchers(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := ms[c.check]
			ok, err := m.Match(c.ev)
			if err != nil {
				t.Fatalf("err %v", err)
			}
			got := ""
			if !ok {
				got = m.FailureMessage(c.ev)
			}
			if got != c.want {
				t.Errorf("failure message:\n%s\nwant:\n%s", got, c.want)
				t.Logf("WANT %q", got)
			}
		})
	}
}

func withEv(ev Evidence, f func(ev *Evidence)) Evidence {
	f(&ev)
	return ev
}

// idempotency is a hand-built idempotency-key race: racer 0 creates o1, racer 1 replays it,
// racer 2 is refused while the key is in flight; with second, racer 1 creates o2 instead.
func idempotency(second bool) Evidence {
	create := plan.Call{Operation: "createOrder", Method: http.MethodPost, Path: "/orders"}
	sc := plan.Scenario{ID: "idempotency-key/createOrder", Kind: xconflict.IdempotencyKey, Expect: []int{409},
		Racers: []plan.Call{create}, Concurrency: 3, Header: "Idempotency-Key"}
	replay := http.Header{"Content-Type": {"application/json"}, "Idempotent-Replayed": {"true"}}
	one := exch("POST", orderURL, orderReq, 201, replay, `{"id":"o1","status":"placed"}`, 10)
	if second {
		one = exch("POST", orderURL, orderReq, 201, jsonCT, `{"id":"o2","status":"placed"}`, 10)
	}
	res := scenario.Result{
		Scenario: sc.ID,
		Race: engine.Outcome{Exchanges: []engine.Exchange{
			exch("POST", orderURL, orderReq, 201, jsonCT, `{"id":"o1","status":"placed"}`, 0),
			one,
			exch("POST", orderURL, orderReq, 409, problemCT, `{"detail":"in flight","status":409}`, 20),
		}},
		Attempts: 1, Overlapped: true,
		After: ptr(exch("GET", orderURL+"/o1", "", 200, jsonCT, `{"id":"o1","status":"placed"}`, 0)),
	}
	for i := range res.Race.Exchanges {
		res.Race.Exchanges[i].Request.Header = http.Header{"Idempotency-Key": {"k1"}}
	}
	return Evidence{Scenario: sc, Result: res}
}

// deleteInUse is a hand-built delete-in-use race: the delete wins, the dependent order gets
// dependent.
func deleteInUse(dependent int) Evidence {
	del := plan.Call{Operation: "deleteItem", Method: http.MethodDelete, Path: "/items/{id}"}
	create := plan.Call{Operation: "createOrder", Method: http.MethodPost, Path: "/orders"}
	sc := plan.Scenario{ID: "delete-in-use/deleteItem", Kind: xconflict.DeleteInUse, Expect: []int{409, 422},
		Racers: []plan.Call{del, create}, Concurrency: 2}
	body := `{"detail":"no such item","status":422}`
	if dependent/100 == 2 {
		body = `{"id":"o1","status":"placed"}`
	}
	res := scenario.Result{
		Scenario: sc.ID,
		Race: engine.Outcome{Exchanges: []engine.Exchange{
			exch("DELETE", itemURL, "", 204, nil, "", 0),
			exch("POST", orderURL, orderReq, dependent, jsonCT, body, 10),
		}},
		Attempts: 1, Overlapped: true,
		After: ptr(exch("GET", itemURL, "", 404, problemCT, `{"status":404}`, 0)),
	}
	return Evidence{Scenario: sc, Result: res}
}

// TestVisualizationFile: ids become safe file names: no path separator, no traversal.
func TestVisualizationFile(t *testing.T) {
	tests := map[string]string{
		"stale-update/patchItem":   "linearizable-stale-update_patchItem.html",
		"capacity/createOrder":     "linearizable-capacity_createOrder.html",
		"a b/c?d=é..x":             "linearizable-a_b_c_d__..x.html",
		"../../etc/passwd":         "linearizable-.._.._etc_passwd.html",
		"transition/ship.Order-v2": "linearizable-transition_ship.Order-v2.html",
	}
	for id, want := range tests {
		if got := VisualizationFile(id); got != want {
			t.Errorf("VisualizationFile(%q) = %q, want %q", id, got, want)
		}
	}
}

// TestScenarioNames: every container gets a unique name, repeats numbered, so `ginkgo -p`
// neither runs a spec twice nor skips one; SpecText is what --focus sees.
func TestScenarioNames(t *testing.T) {
	p := &plan.Plan{Scenarios: []plan.Scenario{
		{Kind: xconflict.DuplicateCreate, Operation: "createItem"},
		{Kind: xconflict.StaleUpdate, Operation: "patchItem"},
		{Kind: xconflict.DuplicateCreate, Operation: "createItem"},
		{Kind: xconflict.DuplicateCreate, Operation: "createItem"},
	}}
	want := []string{"duplicate-create createItem", "stale-update patchItem", "duplicate-create createItem #2", "duplicate-create createItem #3"}
	if got := ScenarioNames(p); !slices.Equal(got, want) {
		t.Errorf("ScenarioNames = %q, want %q", got, want)
	}
	if got := SpecText(want[1], CheckSingleWinner); got != "conflictcheck conflictcheck stale-update patchItem single-winner" {
		t.Errorf("SpecText = %q", got)
	}
}

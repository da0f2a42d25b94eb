package scenario

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
)

// dryEnv is an environment without an engine, as a dry run has.
func dryEnv(t *testing.T, targets ...string) (Env, *plan.Plan) {
	t.Helper()
	doc, p := loadPlan(t)
	return Env{Doc: doc, Plan: p, Targets: targets, Header: http.Header{"X-Test-Auth": {"secret"}}}, p
}

func scenarioByID(t *testing.T, p *plan.Plan, id string) plan.Scenario {
	t.Helper()
	i := slices.IndexFunc(p.Scenarios, func(sc plan.Scenario) bool { return sc.ID == id })
	if i < 0 {
		t.Fatalf("no scenario %s in the reference plan", id)
	}
	return p.Scenarios[i]
}

// outline is a step as "phase METHOD path" (its first request), or "phase: note" without one.
func outline(s Step) string {
	if len(s.Requests) == 0 {
		return s.Phase + ": " + s.Note
	}
	return s.Phase + " " + s.Requests[0].Method + " " + s.Requests[0].Path
}

// TestDryRunReference: every scenario of the reference plan is listed in the runner's order,
// with placeholders where the target's responses provide the values.
func TestDryRunReference(t *testing.T) {
	env, p := dryEnv(t, "http://target.test")
	const (
		item  = "{$response.body#/id of createItem}"
		order = "{$response.body#/id of createOrder}"
	)
	leftover := "cleanup: not deleted: what createOrder creates at /orders/{id}, for the document has no DELETE /orders/{id}"
	tests := []struct {
		id   string
		want []string
	}{
		{"duplicate-create/createItem", []string{
			"probe POST /items", "probe POST /items",
			"race POST /items",
			"read after GET /items/{$response.body#/id of the winning createItem}",
			"list GET /items?sku={$request.body#/sku of the first racer}",
			"retry POST /items",
			"final read GET /items/{$response.body#/id of the retry}",
			"cleanup DELETE /items/{id}",
		}},
		{"stale-update/replaceItem", []string{
			"setup POST /items",
			"probe setup POST /items", "probe read GET /items/" + item,
			"probe PUT /items/" + item, "probe PUT /items/" + item,
			"read before GET /items/" + item,
			"race PUT /items/" + item,
			"read after GET /items/" + item,
			"retry PUT /items/" + item,
			"final read GET /items/" + item,
			"cleanup DELETE /items/{id}",
		}},
		{"stale-update/patchItem", []string{
			"setup POST /items",
			"probe setup POST /items", "probe read GET /items/" + item,
			"probe PATCH /items/" + item, "probe PATCH /items/" + item,
			"read before GET /items/" + item,
			"race PATCH /items/" + item,
			"read after GET /items/" + item,
			"retry PATCH /items/" + item,
			"final read GET /items/" + item,
			"cleanup DELETE /items/{id}",
		}},
		{"delete-in-use/deleteItem", []string{
			"setup POST /items",
			"probe setup POST /items",
			"probe POST /orders", "probe DELETE /items/" + item,
			"read before GET /items/" + item,
			"race DELETE /items/" + item,
			"read after GET /items/" + item,
			"resolve POST /orders/{$response.body#/id of the winning createOrder}/cancel",
			"retry DELETE /items/" + item,
			"final read GET /items/" + item,
			leftover,
			"cleanup DELETE /items/{id}",
		}},
		{"idempotency-key/createOrder", []string{
			"setup POST /items",
			"probe setup POST /items",
			"probe POST /orders", "probe POST /orders",
			"race POST /orders",
			"read after GET /orders/{$response.body#/id of the winning createOrder}",
			"retry POST /orders",
			"final read GET /orders/{$response.body#/id of the retry}",
			leftover,
			"cleanup DELETE /items/{id}",
		}},
		{"capacity/createOrder", []string{
			"setup POST /items",
			"probe setup POST /items",
			"probe POST /orders",
			"race POST /orders",
			"read after GET /orders/{$response.body#/id of the winning createOrder}",
			"invariant read GET /items/" + item,
			leftover,
			"cleanup DELETE /items/{id}",
		}},
		{"transition/cancelOrder", []string{
			"setup POST /items", "setup POST /orders",
			"probe setup POST /items", "probe setup POST /orders",
			"probe POST /orders/" + order + "/cancel", "probe POST /orders/" + order + "/ship",
			"read before GET /orders/" + order,
			"race POST /orders/" + order + "/cancel",
			"read after GET /orders/" + order,
			leftover,
			"cleanup DELETE /items/{id}",
		}},
		{"transition/shipOrder", []string{
			"setup POST /items", "setup POST /orders",
			"probe setup POST /items", "probe setup POST /orders",
			"probe POST /orders/" + order + "/ship", "probe POST /orders/" + order + "/ship",
			"read before GET /orders/" + order,
			"race POST /orders/" + order + "/ship",
			"read after GET /orders/" + order,
			leftover,
			"cleanup DELETE /items/{id}",
		}},
	}
	if len(tests) != len(p.Scenarios) {
		t.Errorf("the table covers %d scenarios, the reference plan has %d", len(tests), len(p.Scenarios))
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			sc := scenarioByID(t, p, tt.id)
			steps := DryRun(sc, env)
			var got []string
			for _, s := range steps {
				got = append(got, outline(s))
				for _, r := range s.Requests {
					if r.Target != "http://target.test" {
						t.Errorf("%s: target %q", outline(s), r.Target)
					}
					if r.Header.Get("X-Test-Auth") != "secret" {
						t.Errorf("%s lacks the environment's header: %v", outline(s), r.Header)
					}
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("steps:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			race := steps[slices.IndexFunc(steps, func(s Step) bool { return s.Phase == PhaseRace })]
			if len(race.Requests) != sc.Concurrency {
				t.Errorf("race shows %d racers, want %d", len(race.Requests), sc.Concurrency)
			}
			for i, r := range race.Requests {
				if c := sc.Racers[i%len(sc.Racers)]; r.Method != c.Method || !strings.HasPrefix(r.Path, strings.Split(c.Path, "{")[0]) {
					t.Errorf("racer %d: %s %s, want %s %s", i, r.Method, r.Path, c.Method, c.Path)
				}
			}
			if race.Times != DefaultAttempts || race.TimesWithPushback != DefaultAttempts+MaxResends {
				t.Errorf("race Times %d / %d, want %d / %d", race.Times, race.TimesWithPushback, DefaultAttempts, DefaultAttempts+MaxResends)
			}
			if !strings.Contains(race.Note, "fired together; up to 3 attempts") {
				t.Errorf("race note %q", race.Note)
			}
			if len(sc.Setup) > 0 && !strings.Contains(race.Note, "on a fresh subject") {
				t.Errorf("race note %q does not say later attempts get a fresh subject", race.Note)
			}
		})
	}
}

// TestDryRunPlaceholders: versions, fresh headers and bound values appear as placeholders in
// the header, body or path where the runner puts them; the probe's subject is re-keyed.
func TestDryRunPlaceholders(t *testing.T) {
	env, p := dryEnv(t, "http://a.test", "http://b.test")
	step := func(steps []Step, phase string) Step {
		t.Helper()
		i := slices.IndexFunc(steps, func(s Step) bool { return s.Phase == phase })
		if i < 0 {
			t.Fatalf("no %s step", phase)
		}
		return steps[i]
	}
	bodyOf := func(r PlannedRequest) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(r.Body, &m); err != nil {
			t.Fatalf("body %s: %v", r.Body, err)
		}
		return m
	}

	replace := DryRun(scenarioByID(t, p, "stale-update/replaceItem"), env)
	for phase, want := range map[string]string{
		PhaseProbe: "{ETag of the probe's read}", PhaseRace: "{ETag of the read before the race}", PhaseRetry: "{ETag of the read after the race}",
	} {
		if got := step(replace, phase).Requests[0].Header.Get("If-Match"); got != want {
			t.Errorf("replaceItem %s If-Match = %q, want %q", phase, got, want)
		}
	}
	if h := step(replace, PhaseBefore).Requests[0].Header.Get("If-Match"); h != "" {
		t.Errorf("the read before the race sends If-Match %q", h)
	}

	patch := DryRun(scenarioByID(t, p, "stale-update/patchItem"), env)
	if v := bodyOf(step(patch, PhaseRace).Requests[0])["version"]; v != "{/version of the read before the race}" {
		t.Errorf("patchItem racer version = %v", v)
	}
	if h := step(patch, PhaseRace).Requests[0].Header.Get("If-Match"); h != "" {
		t.Errorf("patchItem racer sends If-Match %q: its version is a body field", h)
	}

	capacity := scenarioByID(t, p, "capacity/createOrder")
	steps := DryRun(capacity, env)
	race := step(steps, PhaseRace)
	for i, r := range race.Requests {
		if got := r.Header.Get("Idempotency-Key"); got != FreshPlaceholder {
			t.Errorf("capacity racer %d Idempotency-Key = %q, want %q", i, got, FreshPlaceholder)
		}
		if got := bodyOf(r)["itemId"]; got != "{$response.body#/id of createItem}" {
			t.Errorf("capacity racer %d itemId = %v", i, got)
		}
		if want := []string{"http://a.test", "http://b.test"}[i%2]; r.Target != want {
			t.Errorf("racer %d goes to %s, want %s (round-robin)", i, r.Target, want)
		}
	}
	probe := step(steps, PhaseProbe)
	if probe.Times != capacity.Probe.UntilRejected || !strings.Contains(probe.Note, "until it is refused") {
		t.Errorf("capacity probe: Times %d, note %q; want up to %d until refused", probe.Times, probe.Note, capacity.Probe.UntilRejected)
	}
	if got := step(steps, PhaseProbe).Requests[0].Target; got != "http://a.test" {
		t.Errorf("a sequential request goes to %s, want the first target", got)
	}

	// The probe's subject is the setup re-keyed the way the runner re-keys it.
	sc := scenarioByID(t, p, "stale-update/replaceItem")
	want, err := p.Rekey(sc.Setup[0], "subject-1")
	if err != nil {
		t.Fatal(err)
	}
	got, first := bodyOf(step(replace, PhaseProbeSetup).Requests[0]), bodyOf(step(replace, PhaseSetup).Requests[0])
	if wantSku := want.Body.(map[string]any)["sku"]; got["sku"] != wantSku || got["sku"] == first["sku"] {
		t.Errorf("probe setup sku %v, want the re-keyed %v (the race's setup has %v)", got["sku"], wantSku, first["sku"])
	}

	transition := DryRun(scenarioByID(t, p, "transition/cancelOrder"), env)
	var verbs []string
	for _, r := range step(transition, PhaseRace).Requests {
		verbs = append(verbs, r.Path[strings.LastIndex(r.Path, "/")+1:])
	}
	if want := []string{"cancel", "ship", "cancel", "ship", "cancel", "ship", "cancel", "ship"}; !slices.Equal(verbs, want) {
		t.Errorf("transition racers %v, want %v", verbs, want)
	}
}

// TestDryRunStops: a blocked scenario sends nothing; one whose probe cannot be re-keyed stops
// there, after its setup, and still cleans up.
func TestDryRunStops(t *testing.T) {
	env, p := dryEnv(t, "http://target.test")
	sc := scenarioByID(t, p, "stale-update/replaceItem")
	sc.Blocked = "needs a body"
	steps := DryRun(sc, env)
	if len(steps) != 1 || steps[0].Phase != PhaseStop || !strings.Contains(steps[0].Note, "needs a body") || MaxRequests(steps).Requests != 0 {
		t.Errorf("blocked: %+v", steps)
	}

	env.Plan = nil
	steps = DryRun(scenarioByID(t, p, "stale-update/replaceItem"), env)
	var got []string
	for _, s := range steps {
		got = append(got, s.Phase)
	}
	if want := []string{PhaseSetup, PhaseStop, PhaseCleanup}; !slices.Equal(got, want) {
		t.Errorf("without a plan to re-key: phases %v, want %v", got, want)
	}
}

// TestDryRunBoundsRealRun: the bound of a dry run is at least what a real run of the scenario
// sends, counted by the engine's budget, on the first attempt and when every attempt is used
// (one racer never overlaps).
func TestDryRunBoundsRealRun(t *testing.T) {
	doc, p := loadPlan(t)
	for _, single := range []bool{false, true} {
		// A server per pass: the plan's keys are the same in both, and leftovers keep theirs.
		srv := reference(t, fault.None)
		for _, sc := range p.Scenarios {
			name := sc.ID
			if single {
				name += "/one racer"
				sc.Concurrency = 1
			}
			t.Run(name, func(t *testing.T) {
				budget := engine.NewBudget(0)
				env := newEnv(doc, p, srv.URL)
				env.Engine = engine.New(engine.Options{Strategy: engine.LastByte, Timeout: 5 * time.Second, Budget: budget})
				steps := DryRun(sc, env)
				res := Run(t.Context(), sc, env)
				if res.Error != "" {
					t.Fatalf("Error = %q", res.Error)
				}
				bound := MaxRequests(steps)
				sent := budget.Used()
				t.Logf("sent %d, bound %d (%d with pushback), %d attempts", sent, bound.Requests, bound.WithPushback, res.Attempts)
				if sent > bound.Requests || bound.Requests > bound.WithPushback {
					t.Errorf("sent %d requests, the dry run's bound is %d (%d with pushback)", sent, bound.Requests, bound.WithPushback)
				}
				if single && res.Attempts != DefaultAttempts {
					t.Errorf("one racer: %d attempts, want %d", res.Attempts, DefaultAttempts)
				}
				checkMirrors(t, steps, res)
			})
		}
	}
}

// checkMirrors: every exchange of a real run was announced by the dry run, in its phase, with
// the method, the URL (a placeholder matching any value), the headers and, on a first
// attempt, the body (re-keyed values change on later attempts).
func checkMirrors(t *testing.T, steps []Step, res Result) {
	t.Helper()
	one := func(x *engine.Exchange) []engine.Exchange {
		if x == nil {
			return nil
		}
		return []engine.Exchange{*x}
	}
	phases := []struct {
		phases []string
		xs     []engine.Exchange
	}{
		{[]string{PhaseSetup}, res.Setup},
		{[]string{PhaseProbeSetup, PhaseProbeRead}, res.ProbeSetup},
		{[]string{PhaseProbe}, res.Probe},
		{[]string{PhaseBefore}, one(res.Before)},
		{[]string{PhaseRace}, res.Race.Exchanges},
		{[]string{PhaseAfter}, one(res.After)},
		{[]string{PhaseInvariant}, one(res.InvariantAfter)},
		{[]string{PhaseList}, one(res.List)},
		{[]string{PhaseResolve}, one(res.Resolve)},
		{[]string{PhaseRetry}, one(res.Retry)},
		{[]string{PhaseFinal}, one(res.Final)},
		{[]string{PhaseCleanup}, res.Cleanup},
	}
	for _, ph := range phases {
		var planned []PlannedRequest
		for _, s := range steps {
			if slices.Contains(ph.phases, s.Phase) {
				planned = append(planned, s.Requests...)
			}
		}
		for i, x := range ph.xs {
			if len(planned) == 0 {
				t.Errorf("%v: %s %s sent, none announced", ph.phases, x.Request.Method, x.Request.URL)
				break
			}
			// A repeated probe call and the cleanup's deletes are one step sent several times.
			pr := planned[min(i, len(planned)-1)]
			if x.Request.Method != pr.Method || !placeholderPattern(pr.Target+pr.Path).MatchString(x.Request.URL) {
				t.Errorf("%v #%d: sent %s %s, announced %s %s%s", ph.phases, i, x.Request.Method, x.Request.URL, pr.Method, pr.Target, pr.Path)
			}
			for k := range pr.Header {
				if _, ok := x.Request.Header[k]; !ok {
					t.Errorf("%v #%d: announced header %s not sent", ph.phases, i, k)
				}
			}
			if res.Attempts == 1 && len(pr.Body) > 0 && !placeholderPattern(string(pr.Body)).Match(x.Request.Body) {
				t.Errorf("%v #%d: sent body %s, announced %s", ph.phases, i, x.Request.Body, pr.Body)
			}
		}
	}
}

// placeholder matches one placeholder in a path or a JSON body.
var placeholder = regexp.MustCompile(`"?\{[^{}":,]*\}"?`)

// placeholderPattern matches s with each placeholder standing for any value.
func placeholderPattern(s string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	last := 0
	for _, m := range placeholder.FindAllStringIndex(s, -1) {
		b.WriteString(regexp.QuoteMeta(s[last:m[0]]))
		b.WriteString(`("[^"]*"|[^"/?&,}]+)`)
		last = m[1]
	}
	b.WriteString(regexp.QuoteMeta(s[last:]))
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// TestBuildPlaceholders: expressions stand unescaped where their values would go, literals are
// escaped as BuildRequest escapes them, and an unbound path parameter is still an error.
func TestBuildPlaceholders(t *testing.T) {
	doc := loadParts(t)
	c := plan.Call{Operation: "addPart", Method: http.MethodPost, Path: "/things/{thingId}/parts",
		Params: map[string]string{"thingId": "$response.body#/id", "dryRun": "a b", "X-Request-Tag": "$response.header.ETag"},
		Body:   map[string]any{"of": "$response.body#/id", "n": 1.0}, Fresh: []string{"Idempotency-Key"}}
	ph := func(expr string) string { return "{" + expr + " of makeThing}" }
	req, err := buildPlaceholders(doc, c, http.Header{"Authorization": {"Bearer s"}}, ph)
	if err != nil {
		t.Fatal(err)
	}
	if want := "/things/{$response.body#/id of makeThing}/parts?dryRun=a+b"; req.Path != want {
		t.Errorf("path %s, want %s", req.Path, want)
	}
	if got := req.Header.Get("X-Request-Tag"); got != "{$response.header.ETag of makeThing}" {
		t.Errorf("header parameter %q", got)
	}
	if got := req.Header.Get("Idempotency-Key"); got != FreshPlaceholder {
		t.Errorf("fresh header %q", got)
	}
	if got := req.Header.Get("Authorization"); got != "Bearer s" {
		t.Errorf("extra header %q", got)
	}
	if want := `{"n":1,"of":"{$response.body#/id of makeThing}"}`; string(req.Body) != want {
		t.Errorf("body %s, want %s", req.Body, want)
	}
	q := c
	q.Params = map[string]string{"thingId": "t", "dryRun": "$request.body#/n"}
	if req, err = buildPlaceholders(doc, q, nil, ph); err != nil || req.Path != "/things/t/parts?dryRun={$request.body#/n of makeThing}" {
		t.Errorf("query placeholder: %s, %v", req.Path, err)
	}
	c.Params = map[string]string{}
	if _, err := buildPlaceholders(doc, c, nil, ph); err == nil || !strings.Contains(err.Error(), "unbound parameter") {
		t.Errorf("unbound path parameter: err %v", err)
	}
	// The real build of the same call is unchanged: the expression is evaluated and escaped.
	bound := &engine.Exchange{Status: 201, Body: []byte(`{"id":"a b"}`)}
	c.Params = map[string]string{"thingId": "$response.body#/id"}
	if req, err := BuildRequest(doc, c, bound, nil); err != nil || req.Path != "/things/a%20b/parts" {
		t.Errorf("BuildRequest: %s, %v", req.Path, err)
	}
}

// TestDryRunOneAttempt: with one attempt the race and its setup are listed once, and the
// bound shrinks accordingly.
func TestDryRunOneAttempt(t *testing.T) {
	env, p := dryEnv(t, "http://target.test")
	sc := scenarioByID(t, p, "transition/shipOrder")
	three := MaxRequests(DryRun(sc, env))
	env.Attempts = 1
	steps := DryRun(sc, env)
	for _, s := range steps {
		switch s.Phase {
		case PhaseRace:
			if s.Times != 1 || s.Note != "fired together once" {
				t.Errorf("race: Times %d, note %q", s.Times, s.Note)
			}
		case PhaseSetup, PhaseBefore:
			if s.Times != 1 || strings.Contains(s.Note, "attempt") {
				t.Errorf("%s: Times %d, note %q", s.Phase, s.Times, s.Note)
			}
		}
	}
	// Two fewer attempts: two setups of two calls, two reads before, two races of 8, and the
	// two items those setups created fewer to delete.
	one := MaxRequests(steps)
	if want := three.Requests - 2*(2+1+sc.Concurrency+1); one.Requests != want {
		t.Errorf("bound with one attempt %d, want %d (%d with three)", one.Requests, want, three.Requests)
	}
}

package main

import (
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/reftest"
	"github.com/conflictcheck/conflictcheck/internal/scenario"
	"github.com/conflictcheck/conflictcheck/internal/specload"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
	"github.com/conflictcheck/conflictcheck/suites"
)

// dryPlan is the embedded reference spec's plan, its unique values reproducible.
func dryPlan(t *testing.T) (*specload.Document, *plan.Plan) {
	t.Helper()
	doc, err := loadSpec(t.Context(), runFlags{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.New(doc, plan.Options{Seed: 1, RunID: "dry-run-test"})
	if err != nil {
		t.Fatal(err)
	}
	return doc, p
}

func dryRunText(t *testing.T, p *plan.Plan, env scenario.Env, names, secrets []string, maxRequests int) string {
	t.Helper()
	var b strings.Builder
	if err := writeDryRun(&b, p, env, names, secrets, maxRequests); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// requestLine matches the first line of a printed request.
var requestLine = regexp.MustCompile(`(?m)^    (GET|POST|PUT|PATCH|DELETE) http`)

// TestDryRunRedactsSecrets: neither a --header secret nor a credential header's value is
// printed; every request shows both headers, redacted.
func TestDryRunRedactsSecrets(t *testing.T) {
	doc, p := dryPlan(t)
	env := scenario.Env{Doc: doc, Plan: p, Targets: []string{"http://user:pw-in-url@127.0.0.1:8080"},
		Header: http.Header{"Authorization": {"Bearer s3cret"}, "X-Custom-Thing": {"hunter2-value"}}}
	// Only the custom header is named a secret: Authorization is one whatever --header says.
	out := dryRunText(t, p, env, suites.ScenarioNames(p), []string{"x-custom-thing"}, 0)
	for _, secret := range []string{"s3cret", "hunter2", "pw-in-url"} {
		if strings.Contains(out, secret) {
			t.Errorf("the dry run prints %q:\n%s", secret, out)
		}
	}
	requests := len(requestLine.FindAllString(out, -1))
	if requests < len(p.Scenarios)*5 {
		t.Fatalf("%d requests printed:\n%s", requests, out)
	}
	for _, h := range []string{"Authorization: [redacted]\n", "X-Custom-Thing: [redacted]\n"} {
		if n := strings.Count(out, h); n != requests {
			t.Errorf("%q on %d of %d requests", h, n, requests)
		}
	}
}

// TestDryRunSendsNothing: the printed URLs are the target's, and no connection reaches it.
func TestDryRunSendsNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	doc, p := dryPlan(t)
	base := "http://" + ln.Addr().String()
	env := scenario.Env{Doc: doc, Plan: p, Targets: []string{base}} // no engine: nothing to send with
	out := dryRunText(t, p, env, suites.ScenarioNames(p), nil, 0)
	if !strings.Contains(out, "    POST "+base+"/items\n") {
		t.Errorf("no POST to %s/items in:\n%s", base, out)
	}
	// A connection made during the dry run would be waiting in the backlog.
	if err := ln.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if c, err := ln.Accept(); !errors.Is(err, os.ErrDeadlineExceeded) {
		if c != nil {
			c.Close()
		}
		t.Errorf("the target was connected to during a dry run (accept: %v)", err)
	}
}

// TestDryRunText: one scenario's text, whole (the synthesised keys aside).
func TestDryRunText(t *testing.T) {
	doc, p := dryPlan(t)
	env := scenario.Env{Doc: doc, Plan: p, Targets: []string{"http://127.0.0.1:8080/"}, Header: http.Header{"Authorization": {"Bearer s3cret"}}}
	out := dryRunText(t, p, env, []string{"transition shipOrder"}, nil, 30)
	out = regexp.MustCompile(`"sku":"[^"]*"`).ReplaceAllString(out, `"sku":"…"`)
	const want = `dry run: nothing is sent. {…} stands for a value known only once the run sends the request: from the target's responses, or unique per racer.
The keys made unique per run (a sku, an idempotency key) are made anew by every run.

== transition shipOrder (POST /orders/{id}/ship): at most 42 requests
  setup: createItem (creates the race's subject; again before each later attempt, re-keyed for a fresh subject: up to 3 times)
    POST http://127.0.0.1:8080/items
      Authorization: [redacted]
      Content-Type: application/json
      {"name":"Widget","price":1250,"sku":"…","stock":10}
  setup: createOrder (creates the race's subject; again before each later attempt, re-keyed for a fresh subject: up to 3 times)
    POST http://127.0.0.1:8080/orders
      Authorization: [redacted]
      Content-Type: application/json
      {"itemId":"{$response.body#/id of createItem}","quantity":1}
  probe setup: createItem (creates the probe's own subject, re-keyed)
    POST http://127.0.0.1:8080/items
      Authorization: [redacted]
      Content-Type: application/json
      {"name":"Widget","price":1250,"sku":"…","stock":10}
  probe setup: createOrder (creates the probe's own subject, re-keyed)
    POST http://127.0.0.1:8080/orders
      Authorization: [redacted]
      Content-Type: application/json
      {"itemId":"{$response.body#/id of createItem}","quantity":1}
  probe: shipOrder (succeeds, so that the next one conflicts)
    POST http://127.0.0.1:8080/orders/{$response.body#/id of createOrder}/ship
      Authorization: [redacted]
  probe: shipOrder (the plain conflicting request, alone)
    POST http://127.0.0.1:8080/orders/{$response.body#/id of createOrder}/ship
      Authorization: [redacted]
  read before: getOrder (the subject before the race; before each attempt: up to 3 times)
    GET http://127.0.0.1:8080/orders/{$response.body#/id of createOrder}
      Authorization: [redacted]
  race: shipOrder × 8 together (fired together; up to 3 attempts, until the racers overlap; each later one on a fresh subject)
    POST http://127.0.0.1:8080/orders/{$response.body#/id of createOrder}/ship
      Authorization: [redacted]
  read after: getOrder (the state after the race)
    GET http://127.0.0.1:8080/orders/{$response.body#/id of createOrder}
      Authorization: [redacted]
  cleanup (not deleted: what createOrder creates at /orders/{id}, for the document has no DELETE /orders/{id})
  cleanup (created resources are deleted, newest first, up to 4: each one createItem creates at /items/{id}, at the path the response gives)
    DELETE http://127.0.0.1:8080/items/{id}
      Authorization: [redacted]

1 scenario, at most 42 requests (budget --max-requests 30); more than the budget: once it is spent no race is fired, and the cleanup still runs.
A target that answers 429 or 401 gets each such request or race again, at most 3 times: up to 168 requests.
`
	if out != want {
		t.Errorf("dry run text:\n%s\nwant:\n%s", out, want)
	}
}

// TestDryRunRacersAndBudget: distinct racers are listed each with their numbers; the totals
// line counts the scenarios printed and says when there is no budget; an unknown name is an
// error.
func TestDryRunRacersAndBudget(t *testing.T) {
	doc, p := dryPlan(t)
	env := scenario.Env{Doc: doc, Plan: p, Targets: []string{"http://a.test", "http://b.test"}}
	out := dryRunText(t, p, env, []string{"transition cancelOrder", "delete-in-use deleteItem"}, nil, 0)
	for _, want := range []string{
		"  race: cancelOrder × 8 together (fired together; up to 3 attempts, until the racers overlap; each later one on a fresh subject; spread over the 2 targets)\n",
		"    × 4: racers 1, 3, 5, 7\n    POST http://a.test/orders/{$response.body#/id of createOrder}/cancel\n",
		"    × 1: racer 1\n    DELETE http://a.test/items/{$response.body#/id of createItem}\n",
		"    × 1: racer 2\n    POST http://b.test/orders\n",
		"\n2 scenarios, at most ",
		" requests (no budget: --max-requests 0).\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Index(out, "== delete-in-use deleteItem") > strings.Index(out, "== transition cancelOrder") {
		t.Errorf("scenarios not in the plan's order:\n%s", out)
	}
	if strings.Contains(out, "== transition shipOrder") {
		t.Errorf("an unselected scenario is printed:\n%s", out)
	}
	if err := writeDryRun(&strings.Builder{}, p, env, []string{"nonesuch"}, nil, 0); err == nil {
		t.Error("an unknown scenario name is no error")
	}
}

// TestDryRunBoundsRealRun: each scenario's printed bound is at least what a real run of it
// sends to the reference server, counted by the engine.
func TestDryRunBoundsRealRun(t *testing.T) {
	doc, p := dryPlan(t)
	srv := reftest.Start(t, fault.None, time.Millisecond)
	names := suites.ScenarioNames(p)
	for i, sc := range p.Scenarios {
		t.Run(names[i], func(t *testing.T) {
			budget := engine.NewBudget(0)
			env := scenario.Env{Doc: doc, Plan: p, Targets: []string{srv.URL}, Header: http.Header{"Authorization": {"Bearer s3cret"}},
				Engine: engine.New(engine.Options{Strategy: engine.LastByte, Timeout: 5 * time.Second, Budget: budget})}
			out := dryRunText(t, p, env, []string{names[i]}, nil, 0)
			m := regexp.MustCompile(`\): at most (\d+) requests\n`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no bound in:\n%s", out)
			}
			bound, _ := strconv.Atoi(m[1])
			if res := scenario.Run(t.Context(), sc, env); res.Error != "" {
				t.Fatalf("Error = %q", res.Error)
			}
			if sent := budget.Used(); sent > bound || sent == 0 {
				t.Errorf("a run sent %d requests, the dry run's bound is %d", sent, bound)
			}
		})
	}
}

// TestRunDryRunCLI: `run --dry-run` from the CLI lists the requests, redacts --header and
// --auth-command credentials (without running the command), opens no connection to the
// target and writes no report.
func TestRunDryRunCLI(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	dir := t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	res := runCLI(t, dir, "run", "--dry-run", "--spec", referenceSpecFile(t, dir), "--target", "http://"+ln.Addr().String(),
		"--header", "X-Tenant: t3nant-secret", "--auth-command", "touch "+marker+"; echo Bearer x",
		"--label-filter", "stale-update")
	if res.code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{"== stale-update replaceItem", "== stale-update patchItem", "PUT http://" + ln.Addr().String() + "/items/", "X-Tenant: " + engine.Redacted, "2 scenarios, at most"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, res.stdout)
		}
	}
	if strings.Contains(res.stdout, "t3nant-secret") || strings.Contains(res.stdout, "== duplicate-create") {
		t.Errorf("stdout holds the secret or an unselected scenario:\n%s", res.stdout)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the dry run ran --auth-command")
	}
	if files := filesUnder(t, filepath.Join(dir, DefaultReportDir)); len(files) != 0 {
		t.Errorf("the dry run wrote %v", files)
	}
	time.Sleep(50 * time.Millisecond)
	if n := conns.Load(); n != 0 {
		t.Errorf("the dry run opened %d connections to the target", n)
	}
}

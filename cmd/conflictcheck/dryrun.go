package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/scenario"
	"github.com/conflictcheck/conflictcheck/suites"
)

// writeDryRun is `run --dry-run`: it prints, for each scenario of p named in names (as
// suites.ScenarioNames names them), every request a run would send, the values of the secret
// headers (and of every header engine.IsSensitive names) redacted, and a bound on the requests
// of the whole run against the budget maxRequests (0: none). It sends nothing.
func writeDryRun(w io.Writer, p *plan.Plan, env scenario.Env, names []string, secrets []string, maxRequests int) error {
	all := suites.ScenarioNames(p)
	for _, name := range names {
		if !slices.Contains(all, name) {
			return fmt.Errorf("dry run: no scenario named %q in the plan", name)
		}
	}
	var b strings.Builder
	b.WriteString("dry run: nothing is sent. {…} stands for a value known only once the run sends the request: from the target's responses, or unique per racer.\nThe keys made unique per run (a sku, an idempotency key) are made anew by every run.\n")
	if env.Auth != nil {
		b.WriteString("Every request also carries the credentials --auth-command supplies (not fetched in a dry run).\n")
	}
	var total scenario.Bound
	n := 0
	for i, name := range all {
		if !slices.Contains(names, name) {
			continue
		}
		n++
		sc := p.Scenarios[i]
		steps := scenario.DryRun(sc, env)
		bound := scenario.MaxRequests(steps)
		total.Requests += bound.Requests
		total.WithPushback += bound.WithPushback
		fmt.Fprintf(&b, "\n== %s (%s %s): at most %d requests\n", name, sc.Method, sc.Path, bound.Requests)
		for _, s := range steps {
			writeStep(&b, s, secrets)
		}
	}
	budget := "no budget: --max-requests 0"
	if maxRequests > 0 {
		budget = fmt.Sprintf("budget --max-requests %d", maxRequests)
	}
	fmt.Fprintf(&b, "\n%d %s, at most %d requests (%s)", n, plural(n, "scenario"), total.Requests, budget)
	if maxRequests > 0 && total.Requests > maxRequests {
		b.WriteString("; more than the budget: once it is spent no race is fired, and the cleanup still runs")
	}
	fmt.Fprintf(&b, ".\nA target that answers 429 or 401 gets each such request or race again, at most %d times: up to %d requests.\n",
		scenario.MaxResends, total.WithPushback)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write the dry run: %w", err)
	}
	return nil
}

// writeStep prints one step: a heading, then each distinct request it sends.
func writeStep(b *strings.Builder, s scenario.Step, secrets []string) {
	head := s.Phase
	if s.Operation != "" {
		head += ": " + s.Operation
	}
	if s.Phase == scenario.PhaseRace {
		head += fmt.Sprintf(" × %d together", len(s.Requests))
	}
	if s.Note != "" {
		head += " (" + s.Note + ")"
	}
	fmt.Fprintf(b, "  %s\n", head)

	// Racers sending the same request are shown once, with their numbers.
	var texts []string
	racers := map[string][]int{}
	for i, r := range s.Requests {
		t := requestText(r, secrets)
		if _, ok := racers[t]; !ok {
			texts = append(texts, t)
		}
		racers[t] = append(racers[t], i+1)
	}
	for _, t := range texts {
		if len(texts) > 1 {
			fmt.Fprintf(b, "    × %d: %s %s\n", len(racers[t]), plural(len(racers[t]), "racer"), numbers(racers[t]))
		}
		b.WriteString(t)
	}
}

// requestText is r as HTTP-like text, indented: the request line, the headers (sensitive
// values redacted), the body as compact JSON.
func requestText(r scenario.PlannedRequest, secrets []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "    %s %s%s\n", r.Method, strings.TrimSuffix(redactURL(r.Target), "/"), r.Path)
	h := engine.Redact(r.Header, secrets)
	for _, k := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[k] {
			fmt.Fprintf(&b, "      %s: %s\n", http.CanonicalHeaderKey(k), v)
		}
	}
	if len(r.Body) > 0 {
		var c bytes.Buffer
		body := r.Body
		if json.Compact(&c, r.Body) == nil {
			body = c.Bytes()
		}
		fmt.Fprintf(&b, "      %s\n", body)
	}
	return b.String()
}

// redactURL is the base URL u with the password of its user info, if any, masked.
func redactURL(u string) string {
	if parsed, err := url.Parse(u); err == nil && parsed.User != nil {
		return parsed.Redacted()
	}
	return u
}

// numbers lists racer numbers, runs of consecutive ones as ranges: "1-4, 7".
func numbers(ns []int) string {
	var parts []string
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && ns[j+1] == ns[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", ns[i], ns[j]))
		} else {
			parts = append(parts, fmt.Sprint(ns[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

// plural is noun for n of them: "racer", "racers".
func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

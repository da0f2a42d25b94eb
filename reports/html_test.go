package reports

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/conflictcheck/conflictcheck/suites"
)

// hostile is a value a target may send to break out of the page.
const hostile = `</pre><script>alert(1)</script><img src=x onerror=alert(2)>"'`

// htmlRacer is race exchange n answered with status (0: a transport error).
func htmlRacer(n, status int, body string) Exchange {
	e := Exchange{
		Phase: "race", Racer: n, Target: "http://127.0.0.1:1", Method: "POST", URL: "http://127.0.0.1:1/items",
		RequestHeader: http.Header{"Content-Type": {"application/json"}, "Authorization": {"[redacted]"}},
		RequestBody:   `{"sku":"a","name":"Widget"}`,
		Status:        status, Proto: "HTTP/1.1",
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       body,
		WriteStart: Micros(10 + n), Release: 400, FirstByte: Micros(900 + 40*n), Done: Micros(950 + 40*n),
	}
	if status == 0 {
		e.Proto, e.Header, e.Body, e.FirstByte, e.Error = "", nil, "", 0, "read: connection reset by peer"
	}
	return e
}

// htmlStep is a sequential exchange of phase.
func htmlStep(phase string, status int, body string) Exchange {
	return Exchange{
		Phase: phase, Target: "http://127.0.0.1:1", Method: "GET", URL: "http://127.0.0.1:1/items/1",
		Status: status, Proto: "HTTP/1.1", Header: http.Header{"Content-Type": {"application/json"}}, Body: body,
		WriteStart: 3, Release: 3, FirstByte: 120, Done: 130,
	}
}

// htmlScenarios are a passing, a failing (with a linearizability failure), an inconclusive
// scenario and one that stopped before its race, in plan order.
func htmlScenarios() []Scenario {
	checks := func(failed map[string]suites.Status) []suites.CheckOutcome {
		var out []suites.CheckOutcome
		for _, id := range suites.CheckIDs {
			c := suites.CheckOutcome{ID: id, Status: suites.Passed}
			if st, ok := failed[id]; ok {
				c.Status, c.Message = st, id+" "+string(st)+" for the scenario\nracer  status\n0      201\n1      201"
			}
			out = append(out, c)
		}
		return out
	}
	lin := checks(map[string]suites.Status{
		suites.CheckSingleWinner: suites.Failed, suites.CheckLinearizable: suites.Failed,
	})
	return []Scenario{
		{
			ID: "duplicate-create/createItem", Name: "duplicate-create createItem", Kind: "duplicate-create",
			Operation: "createItem", Method: "POST", Path: "/items", Verdict: suites.VerdictPass,
			Checks: checks(nil), Strategy: "lastbyte", Attempts: 1, Overlapped: true,
			Exchanges: []Exchange{
				htmlStep("setup", 200, `{"items":[]}`),
				htmlRacer(0, 201, `{"id":"1","sku":"a"}`), htmlRacer(1, 409, `{"status":409}`), htmlRacer(2, 409, `{"status":409}`),
				htmlStep("after", 200, `{"id":"1"}`),
			},
		},
		{
			ID: "stale-update/patchItem", Name: "stale-update patchItem", Kind: "stale-update",
			Operation: "patchItem", Method: "PATCH", Path: "/items/{id}", Verdict: suites.VerdictFail,
			Checks: lin, Strategy: "h2", Attempts: 1, Overlapped: true,
			Exchanges: []Exchange{
				htmlRacer(0, 200, `{"id":"1"}`), htmlRacer(1, 200, `{"id":"1"}`), htmlRacer(2, 500, hostile),
				htmlRacer(3, 0, ""), htmlRacer(4, 400, `{"status":400}`),
				htmlStep("final", 200, `{"id":"1"}`),
			},
			Leftovers: []string{"http://127.0.0.1:1/items/1"},
		},
		{
			ID: "transition/cancelOrder", Name: "transition cancelOrder", Kind: "transition",
			Operation: "cancelOrder", Method: "POST", Path: "/orders/{id}/cancel", Verdict: suites.VerdictInconclusive,
			Checks:   checks(map[string]suites.Status{suites.CheckSingleWinner: suites.Inconclusive}),
			Strategy: "barrier", Attempts: 3, Overlapped: false,
			Exchanges: []Exchange{htmlRacer(0, 200, `{}`), htmlRacer(1, 409, `{}`)},
		},
		{
			ID: "delete-in-use/deleteItem", Name: "delete-in-use deleteItem", Kind: "delete-in-use",
			Operation: "deleteItem", Method: "DELETE", Path: "/items/{id}", Verdict: suites.VerdictInconclusive,
			Checks:    []suites.CheckOutcome{{ID: suites.CheckSequentialConflict, Status: suites.Inconclusive, Message: "setup failed"}},
			Exchanges: []Exchange{htmlStep("setup", 503, `{"status":503}`)},
			Error:     "setup: createItem answered 503",
		},
	}
}

// htmlRun is a run of scenarios with its summary counted.
func htmlRun(scenarios []Scenario) Run {
	run := Run{
		Meta: Meta{
			Spec: "openapi/reference.yaml", Title: "inventory API", Targets: []string{"http://127.0.0.1:1"},
			Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Duration: 1234567,
		},
		Scenarios: scenarios,
	}
	for _, s := range scenarios {
		run.Summary.count(s.Checks)
	}
	return run
}

// racers counts the race exchanges of s.
func racers(s Scenario) int {
	n := 0
	for _, x := range s.Exchanges {
		if x.Phase == "race" {
			n++
		}
	}
	return n
}

// renderHTML writes run into a fresh dir, after writing the named files there, and parses it.
func renderHTML(t *testing.T, run Run, files ...string) (string, *html.Node) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("<!DOCTYPE html><title>view</title>"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteHTML(dir, run); err != nil {
		t.Fatalf("WriteHTML: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("parse %s: %v", HTMLFile, err)
	}
	return string(b), doc
}

// walk calls f on n and every node below it.
func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func hasClass(n *html.Node, class string) bool {
	v, _ := attr(n, "class")
	return slices.Contains(strings.Fields(v), class)
}

// find is every element below n named tag (any tag when empty) with class (any when empty).
func find(n *html.Node, tag, class string) []*html.Node {
	var out []*html.Node
	walk(n, func(c *html.Node) {
		if c.Type == html.ElementNode && (tag == "" || c.Data == tag) && (class == "" || hasClass(c, class)) {
			out = append(out, c)
		}
	})
	return out
}

// textOf is the text below n.
func textOf(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	})
	return b.String()
}

// sections maps each scenario section's data-scenario to its node, and lists them in page order.
func sections(t *testing.T, doc *html.Node) (map[string]*html.Node, []string) {
	t.Helper()
	m := map[string]*html.Node{}
	var order []string
	for _, s := range find(doc, "section", "scenario") {
		id, _ := attr(s, "data-scenario")
		m[id] = s
		order = append(order, id)
	}
	return m, order
}

func TestWriteHTMLSections(t *testing.T) {
	scenarios := htmlScenarios()
	run := htmlRun(scenarios)
	_, doc := renderHTML(t, run, suites.VisualizationFile("stale-update/patchItem"))
	got, order := sections(t, doc)
	// Failures and inconclusive scenarios come first, each group in plan order.
	want := []string{"stale-update/patchItem", "transition/cancelOrder", "delete-in-use/deleteItem", "duplicate-create/createItem"}
	if !slices.Equal(order, want) {
		t.Errorf("sections in order %q, want %q", order, want)
	}
	if n := len(find(doc, "svg", "")); n != 3 {
		t.Errorf("%d <svg> in the page, want 3 (one per scenario with a race)", n)
	}
	for _, s := range scenarios {
		t.Run(s.ID, func(t *testing.T) {
			sec := got[s.ID]
			if sec == nil {
				t.Fatalf("no section for %s", s.ID)
			}
			badges := find(sec, "span", "badge")
			if len(badges) == 0 || textOf(badges[0]) != string(s.Verdict) || !hasClass(badges[0], string(s.Verdict)) {
				t.Errorf("verdict badge %v, want %q", badges, s.Verdict)
			}
			head := textOf(find(sec, "div", "sc-head")[0])
			for _, w := range []string{s.Name, s.Method, s.Path} {
				if !strings.Contains(head, w) {
					t.Errorf("heading %q lacks %q", head, w)
				}
			}
			facts := textOf(find(sec, "div", "facts")[0])
			if s.Strategy != "" && !strings.Contains(facts, s.Strategy) {
				t.Errorf("facts %q lack strategy %q", facts, s.Strategy)
			}
			overlap := map[bool]string{true: "racers overlapped", false: "racers did not overlap"}
			if want := overlap[s.Overlapped]; racers(s) > 0 && !strings.Contains(facts, want) {
				t.Errorf("facts %q lack %q", facts, want)
			}
			if racers(s) == 0 && strings.Contains(facts, "racers") {
				t.Errorf("facts %q speak of racers in a scenario without a race", facts)
			}
			svgs := find(sec, "svg", "timeline")
			wantSVG := 0
			if racers(s) > 0 {
				wantSVG = 1
			}
			if len(svgs) != wantSVG {
				t.Fatalf("%d timelines, want %d", len(svgs), wantSVG)
			}
			if wantSVG == 1 {
				bars := find(svgs[0], "rect", "bar")
				if len(bars) != racers(s) {
					t.Errorf("%d bars, want one per racer (%d)", len(bars), racers(s))
				}
				for i, b := range bars {
					if w, _ := attr(b, "width"); w == "" || w == "0.0" || strings.HasPrefix(w, "-") {
						t.Errorf("bar %d has width %q", i, w)
					}
				}
			}
			// Every failed or inconclusive check shows its message in a <pre>; the others do not.
			for _, c := range s.Checks {
				var li *html.Node
				for _, n := range find(sec, "li", "check") {
					if strings.Contains(textOf(n), c.ID) && hasClass(n, string(c.Status)) {
						li = n
					}
				}
				if li == nil {
					t.Errorf("no %s item for check %s", c.Status, c.ID)
					continue
				}
				pres := find(li, "pre", "")
				evidence := c.Status == suites.Failed || c.Status == suites.Inconclusive
				if evidence != (len(pres) == 1) || evidence && textOf(pres[0]) != c.Message {
					t.Errorf("check %s (%s): %d <pre>, want the message only for failed or inconclusive checks", c.ID, c.Status, len(pres))
				}
			}
			xs := find(sec, "details", "x")
			if len(xs) != len(s.Exchanges) {
				t.Errorf("%d collapsible exchanges, want %d", len(xs), len(s.Exchanges))
			}
			if s.Error != "" && !strings.Contains(textOf(sec), s.Error) {
				t.Errorf("the section does not say why the scenario stopped (%q)", s.Error)
			}
		})
	}
	verdict := textOf(find(doc, "span", "big-verdict")[0])
	if verdict != "FAIL" {
		t.Errorf("run verdict %q, want FAIL", verdict)
	}
}

func TestWriteHTMLRunVerdict(t *testing.T) {
	sc := htmlScenarios()
	tests := []struct {
		name       string
		scenarios  []Scenario
		want, lede string
	}{
		{"all pass", sc[:1], "PASS", "the 1 scenario passes"},
		{"a failure", sc[:2], "FAIL", "1 of 2 scenarios failed"},
		{"inconclusive fails the run", sc[2:3], "FAIL", "1 of 1 scenario inconclusive"},
		{"both", sc, "FAIL", "1 of 4 scenarios failed, 2 inconclusive"},
		{"no scenario", nil, "PASS", "no scenario ran"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := htmlRun(tt.scenarios)
			_, doc := renderHTML(t, run)
			if got := textOf(find(doc, "span", "big-verdict")[0]); got != tt.want {
				t.Errorf("verdict %q, want %q", got, tt.want)
			}
			if got := textOf(find(doc, "p", "lede")[0]); !strings.HasPrefix(got, tt.lede+" ·") {
				t.Errorf("lede %q, want %q", got, tt.lede)
			}
			header := textOf(find(doc, "header", "run")[0])
			for _, w := range []string{run.Meta.Spec, run.Meta.Targets[0], "2026-01-02 03:04:05 UTC", "1.23 s"} {
				if !strings.Contains(header, w) {
					t.Errorf("header lacks %q", w)
				}
			}
			var tiles []string
			for _, tile := range find(doc, "div", "tile") {
				tiles = append(tiles, textOf(find(tile, "span", "")[0])+"="+textOf(find(tile, "b", "")[0]))
			}
			s, v := run.Summary, map[suites.Verdict]int{}
			for _, sc := range run.Scenarios {
				v[sc.Verdict]++
			}
			want := []string{
				fmt.Sprint("scenarios=", s.Scenarios), fmt.Sprint("pass=", v[suites.VerdictPass]),
				fmt.Sprint("fail=", v[suites.VerdictFail]), fmt.Sprint("inconclusive=", v[suites.VerdictInconclusive]),
				fmt.Sprint("checks=", s.Checks), fmt.Sprint("passed=", s.Passed), fmt.Sprint("failed=", s.Failed),
				fmt.Sprint("inconclusive=", s.Inconclusive), fmt.Sprint("skipped=", s.Skipped),
			}
			if !slices.Equal(tiles, want) {
				t.Errorf("tiles %q, want %q", tiles, want)
			}
		})
	}
}

func TestWriteHTMLNoExternalAssets(t *testing.T) {
	raw, doc := renderHTML(t, htmlRun(htmlScenarios()), suites.VisualizationFile("stale-update/patchItem"))
	external := func(v string) bool {
		v = strings.ToLower(strings.TrimSpace(v))
		return strings.HasPrefix(v, "http:") || strings.HasPrefix(v, "https:") || strings.HasPrefix(v, "//")
	}
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		for _, a := range n.Attr {
			switch a.Key {
			case "src", "href", "xlink:href", "action", "formaction", "poster", "srcset", "data", "background":
				if external(a.Val) {
					t.Errorf("<%s %s=%q> refers to another origin", n.Data, a.Key, a.Val)
				}
			}
		}
		switch n.Data {
		case "script", "iframe", "object", "embed", "img":
			t.Errorf("the page has a <%s>", n.Data)
		case "link":
			if rel, _ := attr(n, "rel"); rel != "icon" {
				t.Errorf("the page links %q", rel)
			}
		}
	})
	for _, style := range find(doc, "style", "") {
		css := textOf(style)
		if strings.Contains(css, "url(") || strings.Contains(css, "@import") {
			t.Errorf("the stylesheet loads something: %q", css)
		}
	}
	if !strings.Contains(raw, "Content-Security-Policy") {
		t.Error("the page sets no Content-Security-Policy")
	}
}

func TestWriteHTMLEscapes(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Scenario)
	}{
		{"response body", func(s *Scenario) { s.Exchanges[0].Body = hostile }},
		{"JSON response body", func(s *Scenario) { s.Exchanges[0].Body = `{"detail":"` + strings.ReplaceAll(hostile, `"`, `\"`) + `"}` }},
		{"request body", func(s *Scenario) { s.Exchanges[0].RequestBody = hostile }},
		{"response header", func(s *Scenario) { s.Exchanges[0].Header.Set("X-Evil", hostile) }},
		{"request header", func(s *Scenario) { s.Exchanges[1].RequestHeader.Set("X-Evil", hostile) }},
		{"URL", func(s *Scenario) { s.Exchanges[1].URL = "http://127.0.0.1:1/items?q=" + hostile }},
		{"transport error", func(s *Scenario) { s.Exchanges[1].Status, s.Exchanges[1].Error = 0, hostile }},
		{"check message", func(s *Scenario) { s.Checks[0].Status, s.Checks[0].Message = suites.Failed, hostile }},
		{"scenario name", func(s *Scenario) { s.Name = hostile }},
		{"scenario id", func(s *Scenario) { s.ID = hostile }},
		{"scenario error", func(s *Scenario) { s.Error = hostile }},
		{"leftover", func(s *Scenario) { s.Leftovers = []string{hostile} }},
		{"method", func(s *Scenario) { s.Exchanges[1].Method = hostile }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := htmlScenarios()[0]
			tt.set(&s)
			raw, doc := renderHTML(t, htmlRun([]Scenario{s}))
			if strings.Contains(raw, "<script>") || strings.Contains(raw, "<img") {
				t.Error("the hostile markup reached the page unescaped")
			}
			walk(doc, func(n *html.Node) {
				if n.Type != html.ElementNode {
					return
				}
				if n.Data == "script" || n.Data == "img" {
					t.Errorf("the page has a <%s>", n.Data)
				}
				for _, a := range n.Attr {
					if strings.HasPrefix(a.Key, "on") {
						t.Errorf("<%s> has a handler %s=%q", n.Data, a.Key, a.Val)
					}
				}
			})
			// The value is shown as text, not dropped.
			if !strings.Contains(textOf(doc), "<script>alert(1)</script>") && !strings.Contains(attrText(doc), "<script>alert(1)</script>") {
				t.Error("the hostile value is not shown as text")
			}
		})
	}
}

// attrText joins every attribute value of the page (tooltips hold some values).
func attrText(doc *html.Node) string {
	var b strings.Builder
	walk(doc, func(n *html.Node) {
		for _, a := range n.Attr {
			b.WriteString(a.Val)
		}
	})
	return b.String()
}

func TestWriteHTMLVisualizationLink(t *testing.T) {
	const id = "stale-update/patchItem"
	tests := []struct {
		name   string
		status suites.Status
		file   bool
		want   bool
	}{
		{"failed, file written", suites.Failed, true, true},
		{"failed, no file", suites.Failed, false, false},
		{"passed, stale file", suites.Passed, true, false},
		{"inconclusive, file", suites.Inconclusive, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := htmlScenarios()[1]
			for i := range s.Checks {
				if s.Checks[i].ID == suites.CheckLinearizable {
					s.Checks[i].Status = tt.status
				}
			}
			var files []string
			if tt.file {
				files = append(files, suites.VisualizationFile(id))
			}
			_, doc := renderHTML(t, htmlRun([]Scenario{s}), files...)
			links := find(doc, "a", "viz")
			if got := len(links) == 1; got != tt.want || len(links) > 1 {
				t.Fatalf("%d visualization links, want link=%v", len(links), tt.want)
			}
			if tt.want {
				if href, _ := attr(links[0], "href"); href != "linearizable-stale-update_patchItem.html" {
					t.Errorf("link href %q, want the file name relative to the report", href)
				}
				li := links[0].Parent
				if !strings.Contains(textOf(li), suites.CheckLinearizable) {
					t.Errorf("the link is not on the linearizable check: %q", textOf(li))
				}
			}
		})
	}
}

func TestBodyView(t *testing.T) {
	long := strings.Repeat("é", htmlBodyLimit) // 2 bytes a rune: cut inside the limit, on a rune
	tests := []struct {
		name      string
		body, enc string
		truncated bool
		want      string
		note      string
	}{
		{"JSON indented", `{"a":1,"b":[1,2]}`, "", false, "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ]\n}", ""},
		{"text as is", "plain  text", "", false, "plain  text", ""},
		{"empty", "", "", false, "", ""},
		{"base64", "AAEC", "base64", false, "AAEC", "not UTF-8, shown as base64"},
		{"captured cut", `{"a":`, "", true, `{"a":`, "the capture itself was cut short"},
		{"long", long, "", false, strings.Repeat("é", htmlBodyLimit/2), "showing the first 4 KiB of 8192 bytes; report.json has the whole body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bodyView(tt.body, tt.enc, tt.truncated)
			if got.Text != tt.want || got.Note != tt.note {
				t.Errorf("bodyView = %q (note %q), want %q (note %q)", trim(got.Text), got.Note, trim(tt.want), tt.note)
			}
		})
	}
}

func trim(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

func TestStatusClass(t *testing.T) {
	tests := map[int]string{0: "error", 200: "ok", 201: "ok", 204: "ok", 409: "conflict", 412: "conflict", 422: "conflict",
		400: "other", 404: "other", 428: "other", 304: "other", 500: "server", 503: "server"}
	for status, want := range tests {
		if got := statusClass(status); got != want {
			t.Errorf("statusClass(%d) = %q, want %q", status, got, want)
		}
	}
}

func TestTimelineGeometry(t *testing.T) {
	race := []Exchange{htmlRacer(1, 409, ""), htmlRacer(0, 201, ""), htmlRacer(2, 0, "")}
	race[2].Done = race[2].WriteStart // failed at once: still a visible bar
	tl := timelineOf(race)
	if len(tl.Rows) != 3 {
		t.Fatalf("%d rows, want 3", len(tl.Rows))
	}
	for i, r := range tl.Rows {
		if r.Racer != i {
			t.Errorf("row %d is racer %d: rows are in racer order", i, r.Racer)
		}
	}
	if tl.Rows[2].W != "2.0" || tl.Rows[2].Class != "error" || tl.Rows[2].HasFirst {
		t.Errorf("failed racer row %+v: want a 2-unit grey bar without a first byte", tl.Rows[2])
	}
	if !tl.Rows[0].HasRelease || !tl.Rows[0].HasFirst || tl.Rows[0].HeldW == "" {
		t.Errorf("racer 0 row %+v: want release, first byte and held part marked", tl.Rows[0])
	}
	last := tl.Ticks[len(tl.Ticks)-1]
	if last.X != tl.PlotRight {
		t.Errorf("last tick at %s, want the plot's right edge %s", last.X, tl.PlotRight)
	}
	for _, tt := range []struct {
		end, step, span float64
	}{{0, 1, 1}, {1, 1, 1}, {990, 200, 1000}, {2375, 500, 2500}, {6000, 1000, 6000}, {123456, 50000, 150000}} {
		if step, span := axis(tt.end); step != tt.step || span != tt.span {
			t.Errorf("axis(%v) = %v, %v, want %v, %v", tt.end, step, span, tt.step, tt.span)
		}
	}
}

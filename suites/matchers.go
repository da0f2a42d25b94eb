// Package suites holds conflictcheck's checks: the Gomega matchers that judge one scenario's
// evidence (and, later, the Ginkgo spec tree that runs them).
package suites

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/onsi/gomega/types"

	"github.com/conflictcheck/conflictcheck/internal/engine"
	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
	"github.com/conflictcheck/conflictcheck/internal/scenario"
)

// The check IDs of DESIGN.md, one per matcher.
const (
	CheckSequentialConflict = "sequential-conflict"
	CheckConflictStatus     = "conflict-status"
	CheckSingleWinner       = "single-winner"
	CheckNoServerError      = "no-server-error"
	CheckConflictBody       = "conflict-body"
	CheckStateIntact        = "state-intact"
	CheckRetrySucceeds      = "retry-succeeds"
	CheckLinearizable       = "linearizable"
)

// Evidence is the actual value every matcher of this package takes: a planned scenario and
// what running it observed. Matchers accept Evidence or *Evidence.
type Evidence struct {
	Scenario plan.Scenario
	Result   scenario.Result
}

// ErrNotApplicable is wrapped by the error a matcher returns when its check does not apply to
// the scenario (e.g. retry-succeeds on a transition): the suite skips the check.
var ErrNotApplicable = errors.New("not applicable")

// ErrNoEvidence is wrapped by the error a matcher returns when nothing usable was observed
// (the scenario stopped early, the racers never overlapped, a read is missing): the verdict
// is inconclusive, never a pass.
var ErrNoEvidence = errors.New("no usable evidence")

// excerptLen bounds a body excerpt in a failure table.
const excerptLen = 60

// row is one exchange of a failure table, with the label it is shown under.
type row struct {
	label string
	x     *engine.Exchange
}

// check is the shared part of every matcher: the check ID, the judge that fills a failure
// message, and the message of the last Match.
type check struct {
	id      string
	judge   func(ev *Evidence) (failure string, err error)
	failure string
	scID    string
}

// Match judges actual, an Evidence or *Evidence.
func (c *check) Match(actual any) (bool, error) {
	ev, err := evidenceOf(actual)
	if err != nil {
		return false, fmt.Errorf("%s: %w", c.id, err)
	}
	c.scID = ev.Scenario.ID
	failure, err := c.judge(ev)
	if err != nil {
		return false, fmt.Errorf("%s: %s: %w", c.id, ev.Scenario.ID, err)
	}
	c.failure = failure
	return failure == "", nil
}

// FailureMessage is the evidence of the failed check: a heading and the racers' table.
func (c *check) FailureMessage(any) string { return c.failure }

// NegatedFailureMessage says the check held where it was expected not to.
func (c *check) NegatedFailureMessage(any) string {
	return fmt.Sprintf("%s held for %s, expected it not to", c.id, c.scID)
}

func newCheck(id string, judge func(ev *Evidence) (string, error)) types.GomegaMatcher {
	return &check{id: id, judge: judge}
}

func evidenceOf(actual any) (*Evidence, error) {
	switch ev := actual.(type) {
	case Evidence:
		return &ev, nil
	case *Evidence:
		if ev != nil {
			return ev, nil
		}
	}
	return nil, fmt.Errorf("want a suites.Evidence or *suites.Evidence, got %T", actual)
}

// ran returns an error unless the scenario ran to its end.
func ran(ev *Evidence) error {
	if ev.Result.Error != "" {
		return fmt.Errorf("%w: the scenario stopped: %s", ErrNoEvidence, ev.Result.Error)
	}
	return nil
}

// raced returns an error unless the scenario ran to its end and its racers overlapped.
func raced(ev *Evidence) error {
	if err := ran(ev); err != nil {
		return err
	}
	if len(ev.Result.Race.Exchanges) == 0 {
		return fmt.Errorf("%w: no race was fired", ErrNoEvidence)
	}
	if !ev.Result.Overlapped {
		return fmt.Errorf("%w: %s", ErrNoEvidence, NoOverlap(ev.Result))
	}
	return nil
}

// NoOverlap says why a race that did not overlap is no evidence: no racer reached the target,
// or the first response was complete before the last racer was released, in every attempt.
func NoOverlap(r scenario.Result) string {
	for _, x := range r.Race.Exchanges {
		if x.Err == nil || x.Release > 0 {
			return fmt.Sprintf("the racers never overlapped in %s", plural(r.Attempts, "attempt"))
		}
	}
	return fmt.Sprintf("no racer reached the target in %s", plural(r.Attempts, "attempt"))
}

// plural is "1 attempt", "3 attempts".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// failf renders a failure: "<check> failed for <scenario>: <heading>", optional detail lines,
// then the table of rows.
func failf(id string, ev *Evidence, rows []row, details []string, format string, args ...any) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s failed for %s: %s\n", id, ev.Scenario.ID, fmt.Sprintf(format, args...))
	for _, d := range details {
		b.WriteString("  " + d + "\n")
	}
	b.WriteString(table(rows))
	return b.String()
}

// table renders rows as aligned columns; times are microseconds since the race's start.
func table(rows []row) string {
	var b bytes.Buffer
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "racer\tstatus\tstart µs\trelease µs\tfirst-byte µs\tdone µs\tbody")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", r.label, statusOf(r.x), us(r.x.WriteStart), us(r.x.Release), us(r.x.FirstByte), us(r.x.Done), excerpt(r.x.Body))
	}
	_ = w.Flush()
	lines := strings.SplitAfter(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \n")
	}
	return strings.Join(lines[:len(lines)-1], "\n") + "\n"
}

func racerRows(ev *Evidence) []row {
	xs := ev.Result.Race.Exchanges
	rows := make([]row, len(xs))
	for i := range xs {
		rows[i] = row{label: fmt.Sprint(i), x: &xs[i]}
	}
	return rows
}

func us(d time.Duration) int64 { return int64(d / time.Microsecond) }

// excerpt is body on one line, cut to excerptLen characters.
func excerpt(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if utf8.RuneCountInString(s) <= excerptLen {
		return s
	}
	r := []rune(s)
	return string(r[:excerptLen-1]) + "…"
}

func statusOf(x *engine.Exchange) string {
	switch {
	case x == nil:
		return "none"
	case x.Err != nil:
		return "err:" + string(x.Err.Kind)
	}
	return fmt.Sprint(x.Status)
}

func serverError(x *engine.Exchange) bool {
	return x != nil && x.Err == nil && x.Status >= 500
}

// rejectedWith reports whether x got a response whose status is one of expect.
func rejectedWith(x *engine.Exchange, expect []int) bool {
	return x != nil && x.Err == nil && slices.Contains(expect, x.Status)
}

// gone reports whether x answered that the resource does not exist (404 or 410).
func gone(x *engine.Exchange) bool {
	return x != nil && (x.Status == http.StatusNotFound || x.Status == http.StatusGone)
}

// deletes reports whether racer i sent a delete-in-use scenario's delete (its first racer call).
func deletes(sc plan.Scenario, i int) bool {
	return racerCall(sc, i).Operation == sc.Racers[0].Operation
}

// subjectCreated is the setup's last exchange, the subject's creation, when it succeeded.
func subjectCreated(r *scenario.Result) *engine.Exchange {
	if n := len(r.Setup); n > 0 && r.Setup[n-1].OK() {
		return &r.Setup[n-1]
	}
	return nil
}

// racerCall is the call racer i sent.
func racerCall(sc plan.Scenario, i int) plan.Call {
	return sc.Racers[i%len(sc.Racers)]
}

// winners are the indexes of the 2xx racers.
func winners(xs []engine.Exchange) []int {
	var out []int
	for i := range xs {
		if xs[i].OK() {
			out = append(out, i)
		}
	}
	return out
}

// jsonBody decodes x's body; nil when it is not JSON.
func jsonBody(b []byte) any {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return nil
	}
	return v
}

// pointer evaluates the JSON pointer ptr (RFC 6901, e.g. /stock) in body; false when body is
// not JSON or holds nothing (or null) there.
func pointer(body []byte, ptr string) (any, bool) {
	v, err := runtimeexpr.Pointer(jsonBody(body), ptr)
	return v, err == nil && v != nil
}

// number is v as a float when it is a JSON number.
func number(v any, ok bool) (float64, bool) {
	f, isNum := v.(float64)
	return f, ok && isNum
}

// createdID is the id of what x created: its body's id member, else its Location header.
func createdID(x *engine.Exchange) string {
	if v, ok := pointer(x.Body, "/id"); ok {
		return fmt.Sprint(v)
	}
	if x.Header != nil {
		return x.Header.Get("Location")
	}
	return ""
}

// replayed reports whether x says it replays an earlier response to the same idempotency key.
func replayed(x *engine.Exchange) bool {
	return x.Header != nil && strings.EqualFold(x.Header.Get("Idempotent-Replayed"), "true")
}

// members are the top-level members of a JSON object body; nil when it is no object.
func members(body []byte) map[string]any {
	m, _ := jsonBody(body).(map[string]any)
	return m
}

// mismatches lists the leaves of want that got lacks or holds with another value, sorted.
// Both are flattened by leaves.
func mismatches(want, got map[string]any) []string {
	var out []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s missing, want %s", k, compact(w)))
		case compact(g) != compact(w):
			out = append(out, fmt.Sprintf("%s = %s, want %s", k, compact(g), compact(w)))
		}
	}
	slices.Sort(out)
	return out
}

// leaves flattens a JSON object body to its leaf values (scalars and arrays) by dotted path:
// {"metadata":{"name":"a"}} is {"metadata.name":"a"}, so that a nested member (a Kubernetes
// object's metadata) is compared member by member; nil when the body is no object.
func leaves(body []byte) map[string]any {
	m := members(body)
	if m == nil {
		return nil
	}
	out := map[string]any{}
	flatten("", m, out)
	return out
}

func flatten(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
			flatten(prefix+k+".", sub, out)
			continue
		}
		out[prefix+k] = v
	}
}

// written are the leaves of the JSON object x sent, without the version field of a
// stale-update: what the request asks the resource to hold.
func written(sc plan.Scenario, x *engine.Exchange) map[string]any {
	m := leaves(x.Request.Body)
	if p := versionPath(sc); p != "" {
		delete(m, p)
	}
	return m
}

// compact is v as JSON.
func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// versionPath is the leaves path of the body field that holds a stale-update's version ("" when
// the version is a header): /metadata/resourceVersion is metadata.resourceVersion.
func versionPath(sc plan.Scenario) string {
	if sc.Version == nil || sc.Version.Field == "" {
		return ""
	}
	tokens := strings.Split(strings.TrimPrefix(sc.Version.Field, "/"), "/")
	for i, t := range tokens {
		tokens[i] = runtimeexpr.UnescapeToken(t)
	}
	return strings.Join(tokens, ".")
}

// versionOf is the version a response reports: the version header, else the version field.
func versionOf(sc plan.Scenario, x *engine.Exchange) string {
	if x == nil || sc.Version == nil {
		return ""
	}
	if sc.Version.Header != "" {
		if x.Header == nil {
			return ""
		}
		return x.Header.Get(sc.Version.Header)
	}
	if v, ok := pointer(x.Body, sc.Version.Field); ok {
		return compact(v)
	}
	return ""
}

// sentVersion is the version racer x sent: its If-Match header, else its body's version field.
func sentVersion(sc plan.Scenario, x *engine.Exchange) string {
	if sc.Version == nil {
		return ""
	}
	if sc.Version.Header != "" {
		return http.Header(x.Request.Header).Get("If-Match")
	}
	if v, ok := pointer(x.Request.Body, sc.Version.Field); ok {
		return compact(v)
	}
	return ""
}

package reports

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/suites"
)

// tableRows are the rows of the first Markdown table in md, each split into its cells at the
// pipes that are not escaped.
func tableRows(md string) [][]string {
	unescaped := regexp.MustCompile(`(^|[^\\])\|`)
	var rows [][]string
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			if len(rows) > 0 {
				break
			}
			continue
		}
		marked := unescaped.ReplaceAllString(line, "$1\x00")
		marked = unescaped.ReplaceAllString(marked, "$1\x00") // adjacent pipes: "||"
		cells := strings.Split(marked, "\x00")
		cells = cells[1 : len(cells)-1]
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	return rows
}

func TestMarkdownTable(t *testing.T) {
	md := Markdown(goldenRun())
	if first, _, _ := strings.Cut(md, "\n"); first != "**❌ conflictcheck: FAIL** — 5 scenarios: 1 pass, 2 fail, 2 inconclusive; 32 checks: 25 passed, 3 failed, 1 inconclusive, 3 skipped" {
		t.Errorf("verdict line %q", first)
	}
	rows := tableRows(md)
	want := [][]string{
		{"scenario", "verdict", "failed checks", "inconclusive"},
		{"---", "---", "---", "---"},
		{"duplicate-create createItem", "❌ fail", "conflict-status, single-winner", ""},
		{"stale-update patchItem", "⚠️ inconclusive", "", "conflict-status"},
		{"idempotency-key createOrder", "✅ pass", "", ""},
		{`transition cancel\|Order`, "❌ fail", "conflict-body", ""},
		{"capacity createOrder", "⚠️ inconclusive", "", "stopped: setup: POST /items answered 503"},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("table rows\n%q\nwant\n%q", rows, want)
	}
	// A block of evidence per failed check; a line for an inconclusive check whose evidence
	// is one line, and for the scenario that stopped.
	if got := strings.Count(md, "<details>"); got != 3 {
		t.Errorf("%d <details> blocks, want 3", got)
	}
	for _, line := range []string{
		"\n- `stale-update patchItem` conflict-status (inconclusive): conflict-status inconclusive for stale-update/patchItem: the racers never overlapped in 3 attempts (sync barrier)\n",
		"\n- `capacity createOrder` scenario (inconclusive): capacity/createOrder stopped before any check judged it: setup: POST /items answered 503\n",
	} {
		if !strings.Contains(md, line) {
			t.Errorf("no line %q", line)
		}
	}
	// The evidence that holds ``` is fenced by four backticks.
	if !strings.Contains(md, "\n````\nracer  status  body\n1      409     <html>```</html>\n") {
		t.Errorf("evidence with ``` not fenced by ````:\n%s", md)
	}
}

func TestMarkdownPassingRun(t *testing.T) {
	run := goldenRun()
	run.Scenarios = run.Scenarios[2:3]
	run.Summary = Summary{Scenarios: 1, Checks: 8, Passed: 6, Skipped: 2}
	md := Markdown(run)
	if !strings.HasPrefix(md, "**✅ conflictcheck: PASS** — 1 scenarios: 1 pass, 0 fail, 0 inconclusive;") {
		t.Errorf("verdict line of a passing run: %q", md)
	}
	if strings.Contains(md, "Evidence") || strings.Contains(md, "<details>") {
		t.Errorf("a passing run shows evidence:\n%s", md)
	}
	if md := Markdown(Run{}); !strings.Contains(md, "No scenario ran.") || strings.Contains(md, "| scenario |") {
		t.Errorf("empty run:\n%s", md)
	}
	inc := goldenRun()
	inc.Scenarios = inc.Scenarios[1:2]
	inc.Summary = Summary{Scenarios: 1, Checks: 8, Passed: 7, Inconclusive: 1}
	if md := Markdown(inc); !strings.HasPrefix(md, "**⚠️ conflictcheck: INCONCLUSIVE**") {
		t.Errorf("verdict line of an inconclusive run: %q", md)
	}
}

func TestMarkdownCell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"duplicate-create createItem", "duplicate-create createItem"},
		{"a|b", `a\|b`},
		{"two\nlines\r\n\tand tab", "two lines and tab"},
		{"<script>&", "&lt;script&gt;&amp;"},
		{"*x* _y_ `z` [l](u) #h ~s~ back\\slash", `\*x\* \_y\_ \` + "`" + `z\` + "`" + ` \[l\](u) \#h \~s\~ back\\slash`},
	}
	for _, tc := range tests {
		if got := mdCell(tc.in); got != tc.want {
			t.Errorf("mdCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	codes := []struct{ in, want string }{
		{"spec.yaml", "`spec.yaml`"},
		{"a`b", "``a`b``"},
		{"`x", "`` `x ``"},
		{"a|b\nc", "`a|b c`"},
	}
	for _, tc := range codes {
		if got := mdCode(tc.in); got != tc.want {
			t.Errorf("mdCode(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestMarkdownBounded checks that a run with thousands of long failures stays well below
// GitHub's 1 MiB step summary limit, each block of evidence bounded, and says what it left out.
func TestMarkdownBounded(t *testing.T) {
	long := strings.Repeat("x", 5000)
	var msg strings.Builder
	msg.WriteString("single-winner failed for k/op: " + long + "\n")
	for i := range 200 {
		fmt.Fprintf(&msg, "racer %d %s\n", i, long)
	}
	var run Run
	for i := range 3000 {
		run.Scenarios = append(run.Scenarios, Scenario{
			ID: fmt.Sprintf("k/op%d", i), Name: fmt.Sprintf("k op%d", i), Verdict: suites.VerdictFail,
			Checks: []suites.CheckOutcome{{ID: suites.CheckSingleWinner, Status: suites.Failed, Message: msg.String()}},
		})
	}
	run.Summary = Summary{Scenarios: 3000, Checks: 3000, Failed: 3000}
	md := Markdown(run)
	if len(md) > maxMarkdown {
		t.Errorf("summary is %d bytes, want at most %d", len(md), maxMarkdown)
	}
	if !strings.Contains(md, "more checks is not shown") {
		t.Error("the summary does not say that evidence was left out")
	}
	for _, block := range strings.Split(md, "<details>")[1:] {
		if len(block) > maxEvidenceBlock+2*maxHeading*4+200 {
			t.Fatalf("a block of evidence is %d bytes", len(block))
		}
		if !strings.Contains(block, "more lines in report.json") {
			t.Fatalf("a cut block does not say so:\n%s", block)
		}
	}

	// So many scenarios that the table alone would pass the bound: it stops, and says so.
	var many Run
	for i := range 20000 {
		many.Scenarios = append(many.Scenarios, Scenario{ID: fmt.Sprintf("k/op%d", i), Name: fmt.Sprintf("kind operation-%d", i), Verdict: suites.VerdictPass})
	}
	md = Markdown(many)
	if len(md) > maxMarkdown || !strings.Contains(md, "more scenarios not shown") {
		t.Errorf("20000 scenarios: %d bytes, cut notice %t", len(md), strings.Contains(md, "more scenarios not shown"))
	}
}

func TestDetailsBlockCut(t *testing.T) {
	var msg strings.Builder
	msg.WriteString("single-winner failed for k/op: 2 racers won")
	for i := 1; i <= 99; i++ {
		fmt.Fprintf(&msg, "\nl%d", i)
	}
	s := Scenario{ID: "k/op", Name: "k op", Exchanges: []Exchange{
		{Phase: "race", Racer: 0, Method: "POST", URL: "http://127.0.0.1:1/x", Status: 201},
	}}
	// The heading is the summary; of l1…l99, l1…l20 are shown and 79 are not; the exchanges
	// are not repeated.
	got := detailsBlock(s, suites.CheckSingleWinner, "failed", msg.String())
	want := "<details><summary><code>k op</code> single-winner (failed): single-winner failed for k/op: 2 racers won</summary>\n\n```\n"
	for i := 1; i <= 20; i++ {
		want += fmt.Sprintf("l%d\n", i)
	}
	want += "… 79 more lines in report.json\n```\n\n</details>\n\n"
	if got != want {
		t.Errorf("detailsBlock =\n%s\nwant\n%s", got, want)
	}
}

func TestWriteMarkdown(t *testing.T) {
	if b := writeFile(t, WriteMarkdown, MarkdownFile, goldenRun()); string(b) != Markdown(goldenRun()) {
		t.Error("summary.md is not Markdown(run)")
	}
	if err := WriteMarkdown(filepath.Join(t.TempDir(), "missing"), goldenRun()); err == nil || !strings.Contains(err.Error(), MarkdownFile) {
		t.Errorf("WriteMarkdown into a missing dir: %v, want an error naming %s", err, MarkdownFile)
	}
}

func TestAppendStepSummary(t *testing.T) {
	md := Markdown(goldenRun())
	path := filepath.Join(t.TempDir(), "step_summary.md")
	if err := os.WriteFile(path, []byte("# earlier step\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(StepSummaryEnv, path)
	for range 2 {
		if err := appendStepSummary(md); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "# earlier step\n\n" + md + "\n" + md; string(b) != want {
		t.Errorf("step summary after two appends:\n%s\nwant the earlier content and the summary twice", b)
	}

	// A step summary file that does not exist yet is created.
	fresh := filepath.Join(t.TempDir(), "new.md")
	t.Setenv(StepSummaryEnv, fresh)
	if err := appendStepSummary(md); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(fresh); err != nil || string(b) != md {
		t.Errorf("new step summary: %v\n%s", err, b)
	}

	// A file that cannot be opened is an error naming the step summary.
	t.Setenv(StepSummaryEnv, filepath.Join(t.TempDir(), "missing", "x.md"))
	if err := appendStepSummary(md); err == nil || !strings.Contains(err.Error(), "step summary") {
		t.Errorf("unwritable step summary: %v", err)
	}
}

func TestAppendStepSummaryUnset(t *testing.T) {
	// Empty, then unset: both do nothing (t.Setenv restores the variable afterwards).
	t.Setenv(StepSummaryEnv, "")
	if err := appendStepSummary(Markdown(goldenRun())); err != nil {
		t.Errorf("empty %s: %v", StepSummaryEnv, err)
	}
	if err := os.Unsetenv(StepSummaryEnv); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	if err := appendStepSummary(Markdown(goldenRun())); err != nil {
		t.Errorf("unset %s: %v", StepSummaryEnv, err)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("unset %s wrote %v (%v)", StepSummaryEnv, entries, err)
	}
}

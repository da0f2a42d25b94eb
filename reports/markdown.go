package reports

import (
	"fmt"
	"html"
	"os"
	"strings"

	"github.com/conflictcheck/conflictcheck/suites"
)

// MarkdownFile is the name of the Markdown summary in a report dir.
const MarkdownFile = "summary.md"

// StepSummaryEnv names the file GitHub Actions shows on the job page; WriteAll appends the
// Markdown summary to it.
const StepSummaryEnv = "GITHUB_STEP_SUMMARY"

// Bounds of the Markdown summary. GitHub refuses a step summary over 1 MiB, so the whole
// summary stays well below it however many scenarios fail: past maxMarkdown the table and the
// details stop with a line saying how many were left out.
const (
	maxMarkdown       = 256 << 10
	maxEvidenceLines  = 20
	maxEvidenceLine   = 200
	maxEvidenceBlock  = 4 << 10
	markdownTailSpace = 512
)

// WriteMarkdown writes run's Markdown summary to dir/summary.md: a verdict line, a table of
// scenarios and, for each failed or inconclusive check, the start of its evidence.
func WriteMarkdown(dir string, run Run) error {
	return writeReport(dir, MarkdownFile, []byte(Markdown(run)))
}

// appendStepSummary appends a Markdown summary to the file $GITHUB_STEP_SUMMARY names, so that
// it shows on the GitHub Actions job page; without the variable it does nothing.
func appendStepSummary(text string) error {
	path := os.Getenv(StepSummaryEnv)
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open step summary: %w", err)
	}
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		text = "\n" + text
	}
	if _, err := f.WriteString(text); err != nil {
		_ = f.Close()
		return fmt.Errorf("append to step summary %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("append to step summary %s: %w", path, err)
	}
	return nil
}

// Markdown is run's Markdown summary, at most about maxMarkdown bytes.
func Markdown(run Run) string {
	var b strings.Builder
	_, fail, inc := run.Verdicts()
	mark, verdict := runVerdict(run, fail, inc)
	fmt.Fprintf(&b, "**%s conflictcheck: %s** — %s\n\n", mark, verdict, run.Totals())
	if run.Meta.Spec != "" || len(run.Meta.Targets) > 0 {
		b.WriteString("Spec " + mdCode(orDash(run.Meta.Spec)))
		if run.Meta.Title != "" {
			b.WriteString(" (" + mdCell(run.Meta.Title) + ")")
		}
		if len(run.Meta.Targets) > 0 {
			ts := make([]string, len(run.Meta.Targets))
			for i, t := range run.Meta.Targets {
				ts[i] = mdCode(t)
			}
			b.WriteString(" against " + strings.Join(ts, ", "))
		}
		b.WriteString("\n\n")
	}
	if len(run.Scenarios) == 0 {
		b.WriteString("No scenario ran.\n")
		return b.String()
	}

	b.WriteString("| scenario | verdict | failed checks | inconclusive |\n| --- | --- | --- | --- |\n")
	for i, s := range run.Scenarios {
		row := fmt.Sprintf("| %s | %s | %s | %s |\n", mdCell(s.Title()), verdictCell(s.Verdict),
			mdCell(strings.Join(s.ChecksWith(suites.Failed), ", ")), inconclusiveCell(s))
		if b.Len()+len(row) > maxMarkdown-markdownTailSpace {
			fmt.Fprintf(&b, "\n… %d more scenarios not shown: see report.json or report.html.\n", len(run.Scenarios)-i)
			return b.String()
		}
		b.WriteString(row)
	}

	var items []evidenceItem
	for _, s := range run.Scenarios {
		for _, c := range s.Checks {
			if c.Status == suites.Failed || c.Status == suites.Inconclusive {
				items = append(items, evidenceItem{s, c.ID, string(c.Status), c.Message})
			}
		}
		if len(s.Checks) == 0 {
			items = append(items, evidenceItem{s, junitNoChecks, string(suites.Inconclusive), noChecksMessage(s)})
		}
	}
	if len(items) > 0 {
		b.WriteString("\n#### Evidence\n\n")
	}
	for i, it := range items {
		blk := detailsBlock(it.s, it.check, it.status, it.text)
		if b.Len()+len(blk) > maxMarkdown-markdownTailSpace {
			fmt.Fprintf(&b, "… the evidence of %d more checks is not shown: see report.json or report.html.\n", len(items)-i)
			break
		}
		b.WriteString(blk)
	}
	return b.String()
}

// evidenceItem is one failed or inconclusive check the summary shows the evidence of.
type evidenceItem struct {
	s                   Scenario
	check, status, text string
}

// runVerdict is the mark and word of run's verdict: FAIL when a check failed, else
// INCONCLUSIVE when one was or a scenario was (which fails the run too), else PASS.
func runVerdict(run Run, failScenarios, inconclusiveScenarios int) (mark, word string) {
	switch {
	case run.Summary.Failed > 0 || failScenarios > 0:
		return "❌", "FAIL"
	case run.Summary.Inconclusive > 0 || inconclusiveScenarios > 0:
		return "⚠️", "INCONCLUSIVE"
	}
	return "✅", "PASS"
}

// inconclusiveCell lists s's inconclusive checks, or says why no check judged s.
func inconclusiveCell(s Scenario) string {
	if len(s.Checks) == 0 {
		why := "no check judged it"
		if s.Error != "" {
			why = "stopped: " + clipRunes(oneLine(s.Error), maxEvidenceLine)
		}
		return mdCell(why)
	}
	return mdCell(strings.Join(s.ChecksWith(suites.Inconclusive), ", "))
}

// verdictCell is a verdict as the summary table shows it.
func verdictCell(v suites.Verdict) string {
	switch v {
	case suites.VerdictPass:
		return "✅ pass"
	case suites.VerdictFail:
		return "❌ fail"
	case suites.VerdictInconclusive:
		return "⚠️ inconclusive"
	}
	return mdCell(string(v))
}

// detailsBlock is a collapsed block with the heading of one check's evidence as its summary
// and the start of the rest of it (the racers' table) in a code block; or, when the heading is
// all there is, a list item with the heading. The exchanges themselves are left to the HTML
// and JSON reports: every failed check of a scenario would repeat them.
func detailsBlock(s Scenario, check, status, msg string) string {
	// Only the first lines are shown: a long message is cut before the evidence is built,
	// and the lines cut are counted.
	more := 0
	if n := strings.Count(msg, "\n"); n > maxEvidenceLines+2 {
		cut := msg
		for range maxEvidenceLines + 2 {
			_, cut, _ = strings.Cut(cut, "\n")
		}
		more = strings.Count(strings.TrimRight(cut, "\n"), "\n") + 1
		msg = msg[:len(msg)-len(cut)]
	}
	lines := strings.Split(strings.TrimRight(msg, "\n"), "\n")
	heading := evidenceHeading(msg)
	if strings.TrimSpace(lines[0]) == heading {
		lines = lines[1:] // the summary line shows it
	}
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	title := fmt.Sprintf("<code>%s</code> %s (%s): %s", html.EscapeString(s.Title()),
		html.EscapeString(check), html.EscapeString(status), html.EscapeString(heading))
	if len(lines) == 0 {
		return fmt.Sprintf("- %s %s (%s): %s\n\n", mdCode(s.Title()), mdCell(check), mdCell(status), mdCell(heading))
	}
	if len(lines) > maxEvidenceLines {
		more += len(lines) - maxEvidenceLines
		lines = lines[:maxEvidenceLines]
	}
	var code strings.Builder
	for i, l := range lines {
		l = clipRunes(strings.TrimRight(l, " \t\r"), maxEvidenceLine)
		if code.Len()+len(l) > maxEvidenceBlock {
			more += len(lines) - i
			break
		}
		code.WriteString(l)
		code.WriteString("\n")
	}
	if more > 0 {
		fmt.Fprintf(&code, "… %d more lines in report.json\n", more)
	}
	fence := codeFence(code.String())
	return fmt.Sprintf("<details><summary>%s</summary>\n\n%s\n%s%s\n\n</details>\n\n", title, fence, code.String(), fence)
}

// codeFence is a backtick fence longer than any run of backticks in text, so that text cannot
// close it.
func codeFence(text string) string {
	return strings.Repeat("`", max(3, longestBackticks(text)+1))
}

// longestBackticks is the length of the longest run of backticks in s.
func longestBackticks(s string) int {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
			continue
		}
		run = 0
	}
	return longest
}

// mdCell is s safe in a Markdown table cell: one line, pipes and Markdown and HTML
// punctuation escaped.
func mdCell(s string) string {
	s = oneLine(s)
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '|', '\\', '`', '*', '_', '[', ']', '#', '~':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// mdCode is s as inline code, on one line, delimited by more backticks than any run in s
// has. It is for running text, not table cells, where a pipe would need escaping.
func mdCode(s string) string {
	s = oneLine(s)
	fence := strings.Repeat("`", longestBackticks(s)+1)
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		pad = " "
	}
	return fence + pad + s + pad + fence
}

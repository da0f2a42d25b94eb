package reports

import (
	"encoding/xml"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/conflictcheck/conflictcheck/suites"
)

// JUnitFile is the name of the JUnit XML report in a report dir.
const JUnitFile = "junit.xml"

// junitSuiteName names the one test suite, as Ginkgo's reporter did.
const junitSuiteName = "conflictcheck"

// junitNoChecks is the testcase name of a scenario that stopped before any check judged it, so
// that CI still shows it (as an error) rather than nothing.
const junitNoChecks = "scenario"

// The JUnit document, in the shape CI viewers read (GitLab, Jenkins, GitHub test reporters):
// <testsuites> around one <testsuite> of <testcase>s.
type (
	junitSuites struct {
		XMLName xml.Name `xml:"testsuites"`
		junitTotals
		Suites []junitSuite `xml:"testsuite"`
	}
	junitSuite struct {
		junitTotals
		Timestamp  string          `xml:"timestamp,attr,omitempty"`
		Properties []junitProperty `xml:"properties>property,omitempty"`
		Cases      []junitCase     `xml:"testcase"`
	}
	// junitTotals are the attributes <testsuites> and its one <testsuite> share: the same
	// name, counts and time.
	junitTotals struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Errors   int    `xml:"errors,attr"`
		Skipped  int    `xml:"skipped,attr"`
		Time     string `xml:"time,attr"`
	}
	junitProperty struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	}
	junitCase struct {
		Name      string         `xml:"name,attr"`
		Classname string         `xml:"classname,attr"`
		Time      string         `xml:"time,attr"`
		Failure   *junitProblem  `xml:"failure,omitempty"`
		Error     *junitProblem  `xml:"error,omitempty"`
		Skipped   *junitSkipped  `xml:"skipped,omitempty"`
		SystemOut *junitCharData `xml:"system-out,omitempty"`
	}
	junitProblem struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",cdata"`
	}
	junitSkipped struct {
		Message string `xml:"message,attr"`
	}
	junitCharData struct {
		Text string `xml:",cdata"`
	}
)

// WriteJUnit writes run as JUnit XML to dir/junit.xml: a testcase per scenario and check, its
// classname the scenario's name and its name the check ID, sorted by both. A failed check is a
// <failure> and an inconclusive one an <error> whose message is the evidence's first line
// (short and stable, for CI lists and history); the full evidence and the scenario's exchanges
// are in <system-out>. Testcases take no time of their own, so the file depends on run alone.
func WriteJUnit(dir string, run Run) error {
	return writeEncoded(dir, JUnitFile, run, junitBytes)
}

// junitBytes is the JUnit document of run.
func junitBytes(run Run) ([]byte, error) {
	suite := junitSuite{junitTotals: junitTotals{Name: junitSuiteName, Time: junitSeconds(run.Meta.Duration)}}
	if !run.Meta.Started.IsZero() {
		suite.Timestamp = run.Meta.Started.UTC().Format("2006-01-02T15:04:05")
	}
	if run.Meta.Spec != "" {
		suite.Properties = append(suite.Properties, junitProperty{"spec", run.Meta.Spec})
	}
	if run.Meta.Title != "" {
		suite.Properties = append(suite.Properties, junitProperty{"title", run.Meta.Title})
	}
	for _, t := range run.Meta.Targets {
		suite.Properties = append(suite.Properties, junitProperty{"target", t})
	}
	for _, s := range run.Scenarios {
		suite.Cases = append(suite.Cases, junitCases(s)...)
	}
	sort.SliceStable(suite.Cases, func(i, j int) bool {
		a, b := suite.Cases[i], suite.Cases[j]
		if a.Classname != b.Classname {
			return a.Classname < b.Classname
		}
		return a.Name < b.Name
	})
	for _, c := range suite.Cases {
		suite.Tests++
		switch {
		case c.Failure != nil:
			suite.Failures++
		case c.Error != nil:
			suite.Errors++
		case c.Skipped != nil:
			suite.Skipped++
		}
	}
	doc := junitSuites{junitTotals: suite.junitTotals, Suites: []junitSuite{suite}}
	b, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(append([]byte(xml.Header), b...), '\n'), nil
}

// junitCases are the testcases of one scenario.
func junitCases(s Scenario) []junitCase {
	class := s.Title()
	if len(s.Checks) == 0 {
		msg := noChecksMessage(s)
		return []junitCase{{
			Name: junitNoChecks, Classname: class, Time: junitSeconds(0),
			Error: junitProblemOf(string(suites.Inconclusive), msg), SystemOut: junitEvidence(s, msg),
		}}
	}
	var out []junitCase
	for _, c := range s.Checks {
		tc := junitCase{Name: c.ID, Classname: class, Time: junitSeconds(0)}
		switch c.Status {
		case suites.Failed:
			tc.Failure, tc.SystemOut = junitProblemOf(c.ID, c.Message), junitEvidence(s, c.Message)
		case suites.Inconclusive:
			tc.Error, tc.SystemOut = junitProblemOf(string(suites.Inconclusive), c.Message), junitEvidence(s, c.Message)
		case suites.Skipped:
			tc.Skipped = &junitSkipped{Message: evidenceHeading(c.Message)}
		}
		out = append(out, tc)
	}
	return out
}

// junitProblemOf is a <failure> or <error> of type typ: msg's first line as its message, msg
// itself as its text.
func junitProblemOf(typ, msg string) *junitProblem {
	return &junitProblem{Message: evidenceHeading(msg), Type: typ, Text: xmlText(msg)}
}

// junitEvidence is the <system-out> of a check of s that failed or was inconclusive with msg.
func junitEvidence(s Scenario, msg string) *junitCharData {
	return &junitCharData{Text: xmlText(evidenceText(s, msg))}
}

// xmlText is s with every character XML 1.0 cannot hold (most control characters, such as a
// terminal's escape, and invalid UTF-8) replaced by U+FFFD: encoding/xml escapes them in
// attributes but writes CDATA sections as they are.
func xmlText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r',
			r >= 0x20 && r <= 0xD7FF,
			r >= 0xE000 && r <= 0xFFFD,
			r >= 0x10000 && r <= 0x10FFFF:
			return r
		}
		return '\uFFFD'
	}, s)
}

// noChecksMessage says that no check judged s, and why when s says.
func noChecksMessage(s Scenario) string {
	msg := s.ID + " stopped before any check judged it"
	if s.Error != "" {
		msg += ": " + s.Error
	}
	return msg
}

// junitSeconds is d in seconds, as JUnit's time attributes take it.
func junitSeconds(d Micros) string {
	return strconv.FormatFloat(float64(d)/1e6, 'f', 6, 64)
}

// maxHeading bounds a heading line, which may quote a response.
const maxHeading = 300

// evidenceHeading is the first line of a check's message: what failed, in one stable line.
func evidenceHeading(msg string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(msg), "\n")
	return clipRunes(strings.TrimSpace(line), maxHeading)
}

// judgedPhases are the phases of the exchanges a scenario judges, which the evidence lists
// (probes, setup and cleanup only prepare and tidy up).
var judgedPhases = map[string]bool{
	"before": true, "race": true, "after": true, "invariant": true, "list": true,
	"resolve": true, "retry": true, "final": true,
}

// evidenceText is msg followed by the scenario's judged exchanges, one per line, and why it
// stopped early if it did: what a person reads to see why a check failed.
func evidenceText(s Scenario, msg string) string {
	var b strings.Builder
	b.WriteString(strings.TrimRight(msg, "\n"))
	b.WriteString("\n")
	if s.Error != "" && !strings.Contains(msg, s.Error) {
		fmt.Fprintf(&b, "\nscenario stopped: %s\n", s.Error)
	}
	var xs []string
	for _, x := range s.Exchanges {
		if judgedPhases[x.Phase] {
			xs = append(xs, exchangeLine(x))
		}
	}
	if len(xs) > 0 {
		fmt.Fprintf(&b, "\nexchanges of %s (strategy %s, attempts %d, overlapped %t):\n", s.ID, orDash(s.Strategy), s.Attempts, s.Overlapped)
		for _, l := range xs {
			b.WriteString(l)
			b.WriteString("\n")
		}
	}
	return b.String()
}

// maxBodyInLine bounds the body an exchange line quotes.
const maxBodyInLine = 120

// exchangeLine summarises one exchange on one line: phase, racer, request, outcome, times
// (µs since its race started) and the start of the response body.
func exchangeLine(x Exchange) string {
	var b strings.Builder
	who := x.Phase
	if x.Phase == "race" {
		who = "racer " + strconv.Itoa(x.Racer)
	}
	fmt.Fprintf(&b, "%-9s %s %s", who, x.Method, x.URL)
	switch {
	case x.Error != "":
		fmt.Fprintf(&b, " -> error: %s", oneLine(x.Error))
	default:
		fmt.Fprintf(&b, " -> %d", x.Status)
	}
	fmt.Fprintf(&b, " | write %dµs release %dµs", x.WriteStart, x.Release)
	if x.FirstByte > 0 {
		fmt.Fprintf(&b, " first byte %dµs", x.FirstByte)
	}
	if x.Done > 0 {
		fmt.Fprintf(&b, " done %dµs", x.Done)
	}
	switch {
	case x.BodyEncoding != "":
		fmt.Fprintf(&b, " | body (%s, %d chars)", x.BodyEncoding, len(x.Body))
	case x.Body != "":
		fmt.Fprintf(&b, " | body %s", clipRunes(oneLine(x.Body), maxBodyInLine))
	}
	if x.Truncated {
		b.WriteString(" (truncated)")
	}
	return b.String()
}

// oneLine is s with its line breaks and tabs as spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// clipRunes is s cut to at most n runes, "…" marking a cut.
func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// orDash is s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

package reports

import (
	"encoding/xml"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/suites"
)

// junitRead is a JUnit document read back, as a CI viewer reads it.
type junitRead struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Suites   []struct {
		Name       string `xml:"name,attr"`
		Tests      int    `xml:"tests,attr"`
		Failures   int    `xml:"failures,attr"`
		Errors     int    `xml:"errors,attr"`
		Skipped    int    `xml:"skipped,attr"`
		Time       string `xml:"time,attr"`
		Timestamp  string `xml:"timestamp,attr"`
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []junitReadCase `xml:"testcase"`
	} `xml:"testsuite"`
}

type junitReadCase struct {
	Name      string `xml:"name,attr"`
	Classname string `xml:"classname,attr"`
	Time      string `xml:"time,attr"`
	Failure   *struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	} `xml:"failure"`
	Error *struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	} `xml:"error"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
	SystemOut string `xml:"system-out"`
}

// readJUnit writes run with WriteJUnit and reads the file back.
func readJUnit(t *testing.T, run Run) junitRead {
	t.Helper()
	b := writeFile(t, WriteJUnit, JUnitFile, run)
	var doc junitRead
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("junit.xml does not parse: %v\n%s", err, b)
	}
	if len(doc.Suites) != 1 {
		t.Fatalf("%d test suites, want 1", len(doc.Suites))
	}
	return doc
}

func TestWriteJUnitStructure(t *testing.T) {
	run := goldenRun()
	doc := readJUnit(t, run)
	suite := doc.Suites[0]
	if suite.Name != "conflictcheck" {
		t.Errorf("suite name %q", suite.Name)
	}

	// Counts: a testcase per scenario and check, plus one for the scenario no check judged
	// (an error); the attributes agree with the elements and with the run's summary.
	var failures, errors, skipped int
	for _, c := range suite.Cases {
		if c.Failure != nil {
			failures++
		}
		if c.Error != nil {
			errors++
		}
		if c.Skipped != nil {
			skipped++
		}
	}
	sum := run.Summary
	wantTests, wantErrors := sum.Checks+1, sum.Inconclusive+1
	for _, got := range []struct {
		what      string
		got, want int
	}{
		{"testcases", len(suite.Cases), wantTests},
		{"suite tests", suite.Tests, wantTests},
		{"testsuites tests", doc.Tests, wantTests},
		{"failure elements", failures, sum.Failed},
		{"suite failures", suite.Failures, sum.Failed},
		{"testsuites failures", doc.Failures, sum.Failed},
		{"error elements", errors, wantErrors},
		{"suite errors", suite.Errors, wantErrors},
		{"testsuites errors", doc.Errors, wantErrors},
		{"skipped elements", skipped, sum.Skipped},
		{"suite skipped", suite.Skipped, sum.Skipped},
		{"testsuites skipped", doc.Skipped, sum.Skipped},
	} {
		if got.got != got.want {
			t.Errorf("%s = %d, want %d", got.what, got.got, got.want)
		}
	}
	if suite.Time != "1.234567" || suite.Timestamp != "2026-11-24T12:00:00" {
		t.Errorf("suite time %q timestamp %q, want the run's duration and start", suite.Time, suite.Timestamp)
	}
	var props []string
	for _, p := range suite.Properties {
		props = append(props, p.Name+"="+p.Value)
	}
	if want := []string{"spec=specs/inventory.yaml", "title=Inventory | API <v1>", "target=http://127.0.0.1:8080", "target=http://127.0.0.1:8081"}; !slices.Equal(props, want) {
		t.Errorf("properties %q, want %q", props, want)
	}

	// Sorted by classname, then name.
	if !slices.IsSortedFunc(suite.Cases, func(a, b junitReadCase) int {
		return strings.Compare(a.Classname+"\x00"+a.Name, b.Classname+"\x00"+b.Name)
	}) {
		t.Error("testcases are not sorted by (classname, name)")
	}

	// Each check of each scenario is its testcase, with its status.
	byKey := map[string]junitReadCase{}
	for _, c := range suite.Cases {
		if c.Time != "0.000000" {
			t.Errorf("%s %s: time %q, want 0", c.Classname, c.Name, c.Time)
		}
		byKey[c.Classname+"/"+c.Name] = c
	}
	for _, s := range run.Scenarios {
		for _, chk := range s.Checks {
			c, ok := byKey[s.Name+"/"+chk.ID]
			if !ok {
				t.Errorf("no testcase %s / %s", s.Name, chk.ID)
				continue
			}
			heading, _, _ := strings.Cut(chk.Message, "\n")
			switch chk.Status {
			case suites.Passed:
				if c.Failure != nil || c.Error != nil || c.Skipped != nil || c.SystemOut != "" {
					t.Errorf("%s %s passed but has %+v", s.Name, chk.ID, c)
				}
			case suites.Failed:
				if c.Failure == nil {
					t.Errorf("%s %s: no <failure>", s.Name, chk.ID)
					continue
				}
				if c.Failure.Message != heading || c.Failure.Type != chk.ID {
					t.Errorf("%s %s: failure message %q type %q, want %q, %q", s.Name, chk.ID, c.Failure.Message, c.Failure.Type, heading, chk.ID)
				}
				if c.Failure.Text != chk.Message {
					t.Errorf("%s %s: failure text %q, want the full message", s.Name, chk.ID, c.Failure.Text)
				}
			case suites.Inconclusive:
				if c.Error == nil || c.Error.Message != heading || c.Error.Type != "inconclusive" {
					t.Errorf("%s %s: error %+v, want message %q type inconclusive", s.Name, chk.ID, c.Error, heading)
				}
			case suites.Skipped:
				if c.Skipped == nil || c.Skipped.Message != heading {
					t.Errorf("%s %s: skipped %+v, want message %q", s.Name, chk.ID, c.Skipped, heading)
				}
			}
			if chk.Status == suites.Failed || chk.Status == suites.Inconclusive {
				if !strings.HasPrefix(c.SystemOut, chk.Message) {
					t.Errorf("%s %s: system-out does not start with the check's message:\n%s", s.Name, chk.ID, c.SystemOut)
				}
			}
		}
	}

	// The evidence lists the judged exchanges one per line, not the probes or the cleanup.
	out := byKey["duplicate-create createItem/single-winner"].SystemOut
	for _, want := range []string{
		"racer 0   POST http://127.0.0.1:8080/items -> 201 | write 10µs release 200µs first byte 1400µs done 1440µs | body {\"id\":\"a1\",\"sku\":\"SKU-1\"}\n",
		"racer 2   POST http://127.0.0.1:8081/items -> error: timeout: no response in 5s | write 10µs release 200µs\n",
		"list      GET http://127.0.0.1:8080/items?sku=SKU-1 -> 200",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("system-out lacks %q:\n%s", want, out)
		}
	}
	for _, not := range []string{"probe", "cleanup", "/items/a1 ->"} {
		if strings.Contains(out, not) {
			t.Errorf("system-out has %q:\n%s", not, out)
		}
	}

	// The scenario that stopped early is an error, saying why.
	c := byKey["capacity createOrder/scenario"]
	if c.Error == nil || c.Error.Message != "capacity/createOrder stopped before any check judged it: setup: POST /items answered 503" {
		t.Errorf("stopped scenario: %+v", c.Error)
	}
}

func TestWriteJUnitHostileText(t *testing.T) {
	msg := "conflict-body failed for k/op: body \x1b[31mred\x00 ]]> <x>&amp;\xff\nsecond line ]]>\n"
	run := Run{Summary: Summary{Scenarios: 1, Checks: 1, Failed: 1}, Scenarios: []Scenario{{
		ID: "k/op", Name: "k op", Verdict: suites.VerdictFail,
		Checks:    []suites.CheckOutcome{{ID: suites.CheckConflictBody, Status: suites.Failed, Message: msg}},
		Exchanges: []Exchange{{Phase: "race", Method: "POST", URL: "http://127.0.0.1:1/x", Status: 409, Body: "]]>\x07"}},
	}}}
	doc := readJUnit(t, run)
	c := doc.Suites[0].Cases[0]
	want := "conflict-body failed for k/op: body \uFFFD[31mred\uFFFD ]]> <x>&amp;\uFFFD\nsecond line ]]>\n"
	if c.Failure == nil || c.Failure.Text != want {
		t.Fatalf("failure %+v, want text %q", c.Failure, want)
	}
	if got, want := c.Failure.Message, "conflict-body failed for k/op: body \uFFFD[31mred\uFFFD ]]> <x>&amp;\uFFFD"; got != want {
		t.Errorf("failure message %q, want %q", got, want)
	}
	if !strings.Contains(c.SystemOut, "| body ]]>\uFFFD") {
		t.Errorf("system-out %q lacks the body", c.SystemOut)
	}
}

func TestWriteJUnitEmptyRun(t *testing.T) {
	doc := readJUnit(t, Run{})
	if s := doc.Suites[0]; doc.Tests != 0 || s.Tests != 0 || len(s.Cases) != 0 || s.Timestamp != "" || s.Time != "0.000000" {
		t.Errorf("empty run: %+v", doc)
	}
}

func TestWriteJUnitError(t *testing.T) {
	err := WriteJUnit(filepath.Join(t.TempDir(), "missing"), goldenRun())
	if err == nil || !strings.Contains(err.Error(), "junit.xml") {
		t.Errorf("WriteJUnit into a missing dir: %v, want an error naming junit.xml", err)
	}
}

func TestEvidenceHeading(t *testing.T) {
	long := strings.Repeat("é", maxHeading+10)
	tests := []struct{ in, want string }{
		{"", ""},
		{"one line", "one line"},
		{"\n  first  \nsecond", "first"},
		{long, strings.Repeat("é", maxHeading-1) + "…"},
	}
	for _, tc := range tests {
		if got := evidenceHeading(tc.in); got != tc.want {
			t.Errorf("evidenceHeading(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

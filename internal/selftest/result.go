package selftest

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/conflictcheck/conflictcheck/reference-server/fault"
	"github.com/conflictcheck/conflictcheck/reports"
	"github.com/conflictcheck/conflictcheck/suites"
)

// Result is what a selftest showed: the clean run and a row per fault, in fault order.
type Result struct {
	// Store is the store the reference server ran on.
	Store string
	// Clean is the run against the server without a fault.
	Clean Row
	// Faults has a row per fault, skipped ones included.
	Faults []Row
}

// Row is one run of the suite (or a fault that was skipped): each check's status aggregated
// over the scenarios, and what the child exited with.
type Row struct {
	// Fault is the injected fault; the zero Fault is the clean run.
	Fault fault.Fault
	// Skip says why the fault was not run on this store; empty when it ran.
	Skip string
	// ExitCode is the child's exit code: 0 every check held, 1 some did not.
	ExitCode int
	// Checks is each check's status over all scenarios: failed if it failed in any, else
	// inconclusive if it was inconclusive in any, else passed if it passed in any, else
	// skipped.
	Checks map[string]suites.Status
	// Elapsed is how long the run took, servers included.
	Elapsed time.Duration
}

// evaluate makes the row of fault f's run from the child's exit code and report.
func evaluate(f fault.Fault, code int, run reports.Run, elapsed time.Duration) Row {
	row := Row{Fault: f, ExitCode: code, Checks: map[string]suites.Status{}, Elapsed: elapsed}
	for _, s := range run.Scenarios {
		for _, c := range s.Checks {
			if rank(c.Status) > rank(row.Checks[c.ID]) {
				row.Checks[c.ID] = c.Status
			}
		}
	}
	return row
}

// Failed are the IDs of the checks that failed in at least one scenario, sorted, never nil.
func (r Row) Failed() []string {
	out := []string{}
	for id, st := range r.Checks {
		if st == suites.Failed {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// rank orders statuses for aggregation: a failure anywhere outweighs everything.
func rank(s suites.Status) int {
	switch s {
	case suites.Failed:
		return 4
	case suites.Inconclusive:
		return 3
	case suites.Passed:
		return 2
	case suites.Skipped:
		return 1
	}
	return 0
}

// Name is the fault's name, or CleanName for the clean run.
func (r Row) Name() string {
	if r.Clean() {
		return CleanName
	}
	return string(r.Fault.Name)
}

// Clean reports whether r is the clean run.
func (r Row) Clean() bool { return r.Fault.Name == fault.None }

// Expected are the checks that must catch the fault (fault.Checks), never nil.
func (r Row) Expected() []string {
	return append([]string{}, r.Fault.Checks...)
}

// Caught reports whether a fault's run failed at least one of the fault's expected checks.
func (r Row) Caught() bool {
	return r.Skip == "" && slices.ContainsFunc(r.Fault.Checks, func(id string) bool {
		return r.Checks[id] == suites.Failed
	})
}

// Pass reports whether the clean run passed: the child exited 0.
func (r Row) Pass() bool { return r.ExitCode == 0 }

// progressLine is the line printed as the run finishes.
func (r Row) progressLine() string {
	name := fmt.Sprintf("selftest: %-16s", r.Name())
	failed := "none"
	if f := r.Failed(); len(f) > 0 {
		failed = strings.Join(f, ", ")
	}
	took := fmt.Sprintf("(exit %d, %v)", r.ExitCode, r.Elapsed.Round(10*time.Millisecond))
	switch {
	case r.Skip != "":
		return fmt.Sprintf("%s skipped: %s", name, r.Skip)
	case r.Clean() && r.Pass():
		return fmt.Sprintf("%s pass %s", name, took)
	case r.Clean():
		return fmt.Sprintf("%s FAIL: failed %s %s", name, failed, took)
	case r.Caught():
		return fmt.Sprintf("%s caught: failed %s %s", name, failed, took)
	}
	return fmt.Sprintf("%s NOT CAUGHT: expected %s to fail, failed %s %s", name, strings.Join(r.Fault.Checks, " or "), failed, took)
}

// Passed reports whether the selftest holds: the clean run passed and every fault that ran
// was caught. Skipped faults do not count against it.
func (res *Result) Passed() bool {
	if !res.Clean.Pass() {
		return false
	}
	for _, r := range res.Faults {
		if r.Skip == "" && !r.Caught() {
			return false
		}
	}
	return true
}

// The glyphs of a matrix cell.
const (
	glyphFailed       = "X"
	glyphInconclusive = "?"
	glyphPassed       = "."
	glyphNotRun       = "-"
)

// cell is r's matrix cell for check id: the status glyph, in brackets when id is one of the
// fault's expected checks.
func (r Row) cell(id string) string {
	g := glyphNotRun
	switch r.Checks[id] {
	case suites.Failed:
		g = glyphFailed
	case suites.Inconclusive:
		g = glyphInconclusive
	case suites.Passed:
		g = glyphPassed
	}
	if slices.Contains(r.Fault.Checks, id) {
		return "[" + g + "]"
	}
	return " " + g + " "
}

// verdict is the last column: pass/fail for the clean run, yes/no for a fault.
func (r Row) verdict() string {
	switch {
	case r.Clean() && r.Pass():
		return "pass"
	case r.Clean():
		return "FAIL"
	case r.Caught():
		return "yes"
	}
	return "NO"
}

// WriteMatrix writes the fault × check matrix with its legend and a closing summary line.
func (res *Result) WriteMatrix(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := []string{"run"}
	for i := range suites.CheckIDs {
		header = append(header, " "+strconv.Itoa(i+1)+" ")
	}
	header = append(header, "caught")
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range append([]Row{res.Clean}, res.Faults...) {
		cols := []string{r.Name()}
		if r.Skip != "" {
			cols = append(cols, "skipped: "+r.Skip)
		} else {
			for _, id := range suites.CheckIDs {
				cols = append(cols, r.cell(id))
			}
			cols = append(cols, r.verdict())
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write the matrix: %w", err)
	}

	var checks []string
	for i, id := range suites.CheckIDs {
		checks = append(checks, fmt.Sprintf("%d %s", i+1, id))
	}
	ran, caught, skipped := 0, 0, 0
	for _, r := range res.Faults {
		switch {
		case r.Skip != "":
			skipped++
		case r.Caught():
			ran++
			caught++
		default:
			ran++
		}
	}
	clean := "pass"
	if !res.Clean.Pass() {
		clean = "FAIL"
	}
	verdict := "ok"
	if !res.Passed() {
		verdict = "FAILED"
	}
	_, err := fmt.Fprintf(w, `
checks: %s
cells:  X failed  ? inconclusive  . passed  - not run;  [ ] marks the checks that must catch the fault
caught: yes when one of the fault's bracketed checks failed (the clean run says pass or FAIL)
selftest %s (%s store): clean run %s, %d of %d faults caught, %d skipped
`, strings.Join(checks, ", "), verdict, res.Store, clean, caught, ran, skipped)
	if err != nil {
		return fmt.Errorf("write the matrix: %w", err)
	}
	return nil
}

// JSONResult is the --json form of a Result.
type JSONResult struct {
	// Clean is "pass" or "fail".
	Clean string `json:"clean"`
	// Faults has an entry per fault that ran, by name.
	Faults map[string]JSONFault `json:"faults"`
	// Skipped has an entry per fault that did not run, by name, with the reason.
	Skipped map[string]string `json:"skipped"`
}

// JSONFault is one fault's entry in JSONResult.
type JSONFault struct {
	Expected []string `json:"expected"`
	Failed   []string `json:"failed"`
	Caught   bool     `json:"caught"`
}

// JSON is res in its --json form.
func (res *Result) JSON() JSONResult {
	out := JSONResult{Clean: "pass", Faults: map[string]JSONFault{}, Skipped: map[string]string{}}
	if !res.Clean.Pass() {
		out.Clean = "fail"
	}
	for _, r := range res.Faults {
		if r.Skip != "" {
			out.Skipped[r.Name()] = r.Skip
			continue
		}
		out.Faults[r.Name()] = JSONFault{Expected: r.Expected(), Failed: r.Failed(), Caught: r.Caught()}
	}
	return out
}

// WriteJSON writes res's --json form as one line.
func (res *Result) WriteJSON(w io.Writer) error {
	if err := json.NewEncoder(w).Encode(res.JSON()); err != nil {
		return fmt.Errorf("write the JSON result: %w", err)
	}
	return nil
}

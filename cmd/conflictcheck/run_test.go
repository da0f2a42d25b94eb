package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/reports"
)

// TestRunReferenceServer: `conflictcheck run` with no flags checks the embedded reference server
// on loopback, prints a line per scenario and a summary, exits 0, and writes junit.xml and
// report.json into the default report dir.
func TestRunReferenceServer(t *testing.T) {
	dir := t.TempDir()
	res := runCLI(t, dir, "run")
	if res.code != exitOK {
		t.Fatalf("exit %d; want 0\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	run, err := reports.ReadJSON(filepath.Join(dir, DefaultReportDir))
	if err != nil {
		t.Fatal(err)
	}
	if run.Summary.Scenarios == 0 || run.Summary.Failed+run.Summary.Inconclusive > 0 {
		t.Errorf("summary %+v; want scenarios and no failed or inconclusive check", run.Summary)
	}
	for _, sc := range run.Scenarios {
		if !strings.Contains(res.stdout, "PASS         "+sc.Name+"\n") {
			t.Errorf("stdout has no PASS line for %s:\n%s", sc.Name, res.stdout)
		}
	}
	if !strings.Contains(res.stdout, "8 scenarios: 8 pass, 0 fail, 0 inconclusive;") {
		t.Errorf("stdout has no summary line:\n%s", res.stdout)
	}
	junit, err := os.ReadFile(filepath.Join(dir, DefaultReportDir, "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(junit), "<testsuites") || !strings.Contains(string(junit), "single-winner") {
		t.Errorf("junit.xml holds no test suite with the checks:\n%.400s", junit)
	}
	if res.stderr != "" {
		t.Errorf("stderr not empty:\n%s", res.stderr)
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/openapi"
	"github.com/conflictcheck/conflictcheck/reports"
)

// asCLI, set in a test binary's environment, makes it run the CLI instead of the tests:
// commands that run the Ginkgo suite (once per process) are tested in such a subprocess, and
// selftest spawns its runs the same way.
const asCLI = "CONFLICTCHECK_TEST_AS_CLI"

func TestMain(m *testing.M) {
	useTestDNS()
	if os.Getenv(asCLI) == "1" {
		os.Exit(execute(context.Background(), os.Args[1:]))
	}
	os.Setenv(asCLI, "")
	os.Exit(m.Run())
}

// cliResult is what one CLI subprocess did.
type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs `conflictcheck args…` in a subprocess of this test binary, in dir (a fresh temp
// folder when empty), bounded to two minutes.
func runCLI(t *testing.T, dir string, args ...string) cliResult {
	t.Helper()
	return runCLIEnv(t, dir, nil, args...)
}

// runCLIEnv is runCLI with env added to the subprocess's environment.
func runCLIEnv(t *testing.T, dir string, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c := startCLI(t, ctx, dir, env, args...)
	return c.wait(t)
}

// cliProcess is a CLI subprocess started by startCLI.
type cliProcess struct {
	cmd            *exec.Cmd
	stdout, stderr *bytes.Buffer
}

// startCLI starts `conflictcheck args…` in a subprocess of this test binary, in dir (a fresh
// temp folder when empty), with env added, killed when ctx is done.
func startCLI(t *testing.T, ctx context.Context, dir string, env []string, args ...string) cliProcess {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if dir == "" {
		dir = t.TempDir()
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Dir = dir
	// A test's runs must not write into the CI job's summary.
	cmd.Env = append(append(os.Environ(), asCLI+"=1", "GITHUB_STEP_SUMMARY="), env...)
	p := cliProcess{cmd: cmd, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("conflictcheck %v: %v", args, err)
	}
	return p
}

// wait waits for the subprocess to exit and returns what it did.
func (p cliProcess) wait(t *testing.T) cliResult {
	t.Helper()
	err := p.cmd.Wait()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
	case err != nil:
		t.Fatalf("conflictcheck %v: %v", p.cmd.Args[1:], err)
	}
	return cliResult{code: p.cmd.ProcessState.ExitCode(), stdout: p.stdout.String(), stderr: p.stderr.String()}
}

// referenceSpecFile writes the reference spec into dir for --spec and returns its path.
func referenceSpecFile(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "ref.yaml")
	writeFile(t, path, string(openapi.Reference))
	return path
}

// readReport reads report.json of a run whose working folder was dir and that wrote into the
// default report dir.
func readReport(t *testing.T, dir string) reports.Run {
	t.Helper()
	run, err := reports.ReadJSON(filepath.Join(dir, DefaultReportDir))
	if err != nil {
		t.Fatal(err)
	}
	return run
}

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"
)

// asCLI, set in a test binary's environment, makes it run the CLI instead of the tests:
// commands that run the Ginkgo suite (once per process) are tested in such a subprocess, and
// selftest spawns its runs the same way.
const asCLI = "CONFLICTCHECK_TEST_AS_CLI"

func TestMain(m *testing.M) {
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
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Dir = dir
	// A test's runs must not write into the CI job's summary.
	cmd.Env = append(os.Environ(), asCLI+"=1", "GITHUB_STEP_SUMMARY=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
	case err != nil:
		t.Fatalf("conflictcheck %v: %v", args, err)
	}
	return cliResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

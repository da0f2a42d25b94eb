// Command conflictcheck proves that an HTTP API handles colliding clients correctly: it fires
// simultaneous conflicting requests derived from the API's OpenAPI document and checks, with
// evidence, that the losers are rejected, the data stays intact and the loser can retry.
//
// Exit codes: 0 every check holds; 1 a check failed or was inconclusive, or the run was stopped
// (interrupt, deadline, request budget); 2 a usage, spec or connection error; 130 a second
// interrupt.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes of the CLI contract (DESIGN.md).
const (
	exitOK       = 0
	exitFailed   = 1
	exitBadInput = 2
)

func main() {
	os.Exit(execute(context.Background(), os.Args[1:]))
}

// execute runs the CLI with args until it finishes or ctx is done, and returns the process exit
// code. Errors are printed as one line on stderr, never with a stack trace.
func execute(ctx context.Context, args []string) int {
	return executeIO(ctx, args, os.Stdout, os.Stderr)
}

// executeIO is execute with the output streams given, so tests can read them.
func executeIO(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errChecksFailed):
		return exitFailed
	}
	fmt.Fprintf(stderr, "conflictcheck: %s\n", oneLine(err.Error()))
	return exitBadInput
}

// oneLine folds a multi-line error message onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "conflictcheck",
		Short:         "Prove that an HTTP API answers colliding clients correctly",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(newServeReferenceCmd(), newBenchCmd())
	root.AddCommand(newRunCmd(), newPlanCmd())
	root.AddCommand(newSelftestCmd())
	return root
}

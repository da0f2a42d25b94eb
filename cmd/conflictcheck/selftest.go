package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/conflictcheck/conflictcheck/internal/selftest"
)

func newSelftestCmd() *cobra.Command {
	var (
		store, databaseURL string
		asJSON             bool
	)
	cmd := &cobra.Command{
		Use:   "selftest",
		Short: "Prove that every injected fault of the reference server is caught by its check",
		Long: `Run the suite against the bundled reference server without a fault, then once per fault
(each run is a child process: conflictcheck run against a reference server this process
starts on 127.0.0.1), and print a matrix of fault × check.

With --store memory (the default), faults that show only across replicas sharing a database
(per-replica-lock) are skipped. With --store postgres, every run has two replicas on the
database of --database-url, and the racing requests are spread over both.

Exit 0 when the clean server passes and every fault that ran failed at least one of the
checks that must catch it; 1 otherwise; 2 a usage, database or infrastructure error.`,
		Example: `  conflictcheck selftest
  conflictcheck selftest --json
  conflictcheck selftest --store postgres --database-url postgres://localhost/inventory`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("selftest: find the conflictcheck executable: %w", err)
			}
			if databaseURL == "" {
				databaseURL = os.Getenv("DATABASE_URL")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := selftest.Run(ctx, selftest.Config{
				Executable:  exe,
				Store:       store,
				DatabaseURL: databaseURL,
				Progress:    cmd.ErrOrStderr(),
			})
			if err != nil {
				return fmt.Errorf("selftest: %w", err)
			}
			if asJSON {
				err = res.WriteJSON(cmd.OutOrStdout())
			} else {
				err = res.WriteMatrix(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if !res.Passed() {
				return errChecksFailed
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&store, "store", selftest.StoreMemory, "reference server store: memory, or postgres (two replicas on one database)")
	// The default is resolved at use, not shown: --help must never print a password.
	f.StringVar(&databaseURL, "database-url", "", "PostgreSQL URL for --store postgres (default $DATABASE_URL)")
	f.BoolVar(&asJSON, "json", false, "print the result as one JSON object instead of the matrix")
	return cmd
}

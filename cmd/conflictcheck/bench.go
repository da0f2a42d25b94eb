package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/conflictcheck/conflictcheck/internal/bench"
)

func newBenchCmd() *cobra.Command {
	var (
		asJSON bool
		trials int
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure how simultaneously each firing strategy lands its racers",
		Long: `Start the reference server in-process on 127.0.0.1 and, for every firing strategy
(h2, lastbyte, barrier), measure the server-side arrival spread of 2, 8 and 32 racers
(p50/p95 in µs) and the share of races that a check-then-act gap of 1, 10 and 100 µs (at
least that long; longer while another handler holds the processor) lets through with 2 and
8 racers. Strategies alternate trial by trial. Progress
goes to stderr.`,
		Example: `  conflictcheck bench
  conflictcheck bench --trials 500 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if trials < 1 {
				return fmt.Errorf("--trials must be at least 1, got %d", trials)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := bench.Run(ctx, bench.Config{Trials: trials, Progress: cmd.ErrOrStderr()})
			if err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			return res.WriteTable(cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the figures as one JSON object")
	cmd.Flags().IntVar(&trials, "trials", bench.DefaultTrials, "races per strategy for every figure")
	return cmd
}

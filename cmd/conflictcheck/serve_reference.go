package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/conflictcheck/conflictcheck/reference-server/server"
)

func newServeReferenceCmd() *cobra.Command {
	var cfg server.Config
	cmd := &cobra.Command{
		Use:   "serve-reference",
		Short: "Run the bundled reference API, correct or with one injected fault",
		Long: `Run the reference inventory API that conflictcheck checks itself against.
Without --fault it handles every collision correctly; --fault injects one defect that a
conflictcheck check must catch (see reference-server/README.md).`,
		Example: `  conflictcheck serve-reference --addr 127.0.0.1:8080
  conflictcheck serve-reference --fault race --race-window 2ms
  conflictcheck serve-reference --store postgres --database-url postgres://localhost/inventory`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return server.Run(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
		},
	}
	cfg.BindFlags(cmd.Flags())
	return cmd
}

// Command reference-server runs the reference inventory API that conflictcheck checks itself
// against: correct by default, or with one injected fault (--fault).
//
//	go run ./reference-server --addr 127.0.0.1:8080 [--store memory|postgres] [--database-url URL]
//	                          [--fault NAME] [--race-window D]
//
// Exit codes: 0 after a graceful shutdown (SIGINT, SIGTERM); 2 for a bad flag, an unreachable
// database or an address that cannot be listened on.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/conflictcheck/conflictcheck/reference-server/server"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	var cfg server.Config
	fs := pflag.NewFlagSet("reference-server", pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line below, not with the usage
	cfg.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Println("usage: reference-server [flags]")
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(os.Stderr, "reference-server: %v (see --help)\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "reference-server: unexpected argument %q (see --help)\n", fs.Arg(0))
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := server.Run(ctx, cfg, log); err != nil {
		fmt.Fprintf(os.Stderr, "reference-server: %v\n", err)
		return 2
	}
	return 0
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// exitInterrupted is the exit code after a second interrupt: the shell's for SIGINT.
const exitInterrupted = 130

// errInterrupted is why a run stopped after its first interrupt.
var errInterrupted = errors.New("interrupted: no more requests were fired, and what the run created was cleaned up")

// watchInterrupts makes the first SIGINT or SIGTERM cancel the returned context with
// errInterrupted (the run stops firing, cleans up what it created and writes its reports) and
// the second exit the process at once. stop restores the default handling.
func watchInterrupts(ctx context.Context, stderr io.Writer) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			case sig := <-sigs:
				if n == 1 {
					fmt.Fprintf(stderr, "conflictcheck: %s: stopping; cleaning up what the run created (interrupt again to exit at once)\n", sig)
					cancel(errInterrupted)
					continue
				}
				fmt.Fprintf(stderr, "conflictcheck: %s again: exiting without cleaning up\n", sig)
				os.Exit(exitInterrupted)
			}
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}

package engine

import (
	"context"
	"fmt"
	"net/http"
)

// Reach sends one GET of target's base path with the engine's strategy, TLS and timeout, and
// returns an error when no HTTP response came back: a run checks every target this way before
// its first scenario, so an unreachable target is one clear error rather than every check
// failing. Any status counts as reachable.
func (e *Engine) Reach(ctx context.Context, target string) error {
	out, err := e.Fire(ctx, []string{target}, []Request{{Method: http.MethodGet, Path: "/"}})
	if err != nil {
		return err
	}
	if x := out.Exchanges[0]; x.Err != nil {
		return fmt.Errorf("target %s unreachable: %w", target, x.Err)
	}
	return nil
}

package engine

import "time"

// Timeout is the bound on each request (Options.Timeout, defaulted), for messages that say how
// long a target was given.
func (e *Engine) Timeout() time.Duration { return e.opts.Timeout }

// MaxBody is the cap on each captured response body (Options.MaxBody, defaulted), for messages
// about a truncated one.
func (e *Engine) MaxBody() int64 { return e.opts.MaxBody }

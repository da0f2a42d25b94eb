package engine

import "context"

// Temporary: replaced by h2.go and lastbyte.go.
func (r *race) fireH2(ctx context.Context)                    { r.fireBarrier(ctx) }
func (r *race) fireLastByte(ctx context.Context)              { r.fireBarrier(ctx) }
func (e *Engine) speaksH2(ctx context.Context, t target) bool { return false }

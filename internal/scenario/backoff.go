package scenario

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/engine"
)

// Limits of the courtesy a scenario extends to a target that pushes back.
const (
	// maxHolds bounds how often one request, or one scenario's race, is sent again after a
	// 429 or a 401; the last answer is then judged like any other.
	maxHolds = 3
	// maxBackoff caps one wait on a 429, whatever its Retry-After asks.
	maxBackoff = 30 * time.Second
)

// Credentials supply the headers that authenticate requests and renew them when the target
// answers 401 (a token that expired mid-run). auth.Source implements it.
type Credentials interface {
	// Header is the current credentials, a copy the caller may modify.
	Header(ctx context.Context) (http.Header, error)
	// Refresh renews the credentials unless they changed since used was handed out.
	Refresh(ctx context.Context, used http.Header) error
}

// Backoff is one wait on a 429 Too Many Requests before a request or a race was sent again.
type Backoff struct {
	// Phase is the call's operation, "race" or "cleanup".
	Phase string `json:"phase"`
	// RetryAfter is the Retry-After header as the target sent it (empty when absent).
	RetryAfter string `json:"retry_after,omitempty"`
	// Waited is how long the scenario waited.
	Waited time.Duration `json:"waited"`
}

// headers are the headers every request carries: env.Header and the current credentials.
func (r *runner) headers(ctx context.Context) (http.Header, error) {
	h := r.env.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if r.env.Auth == nil {
		return h, nil
	}
	cred, err := r.env.Auth.Header(ctx)
	if err != nil {
		return nil, err
	}
	for k, vs := range cred {
		h[k] = vs
	}
	return h, nil
}

// exchange sends the request build makes to target, again after renewing the credentials
// when it got 401, and again after the wait a 429 asks for, each a bounded number of times;
// it returns the last exchange. Its error means no request could be sent.
func (r *runner) exchange(ctx context.Context, phase, target string, build func() (engine.Request, error)) (*engine.Exchange, error) {
	req, err := build()
	if err != nil {
		return nil, err
	}
	for held := 0; ; held++ {
		x, err := r.send(ctx, target, req)
		if err != nil || held == maxHolds {
			return x, err
		}
		again, err := r.holdOff(ctx, phase, []engine.Exchange{*x}, req.Header)
		if err != nil {
			return x, err
		}
		if !again {
			return x, nil
		}
		if x.Status == http.StatusUnauthorized {
			if req, err = build(); err != nil {
				return x, err
			}
		}
	}
}

// holdOff handles a pushback among xs, sent with header: after a 401 it renews the
// credentials, after a 429 it waits as the Retry-After asks (bounded). It reports whether the
// requests should be sent again; its error is a failed renewal.
func (r *runner) holdOff(ctx context.Context, phase string, xs []engine.Exchange, header http.Header) (bool, error) {
	var limited *engine.Exchange // the 429 asking for the longest wait
	var longest time.Duration
	unauthorized := false
	for i := range xs {
		switch xs[i].Status {
		case http.StatusUnauthorized:
			unauthorized = true
		case http.StatusTooManyRequests:
			if d := retryAfter(&xs[i], 0); limited == nil || d > longest {
				limited, longest = &xs[i], d
			}
		}
	}
	switch {
	case unauthorized && r.env.Auth != nil:
		if err := r.env.Auth.Refresh(ctx, header); err != nil {
			return false, fmt.Errorf("renew the credentials after a 401: %w", err)
		}
		r.res.AuthRefreshes++
		return true, nil
	case limited != nil:
		d := retryAfter(limited, len(r.res.Backoffs))
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false, nil
		case <-t.C:
		}
		r.res.Backoffs = append(r.res.Backoffs, Backoff{Phase: phase, RetryAfter: limited.Header.Get("Retry-After"), Waited: d})
		return true, nil
	}
	return false, nil
}

// retryAfter is how long to wait after the 429 x: its Retry-After (delay-seconds or an
// HTTP-date, RFC 9110 §10.2.3), else an exponential default from the waits so far, capped at
// maxBackoff.
func retryAfter(x *engine.Exchange, waits int) time.Duration {
	d := time.Second << min(waits, 5)
	if h := x.Header.Get("Retry-After"); h != "" {
		if secs, err := strconv.Atoi(h); err == nil && secs >= 0 {
			d = time.Duration(secs) * time.Second
		} else if t, err := http.ParseTime(h); err == nil {
			d = max(time.Until(t), 0)
		}
	}
	return min(d, maxBackoff)
}

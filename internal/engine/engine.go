// Package engine fires N prepared requests at a target as simultaneously as the transport
// allows and records every exchange as data: the evidence the checks judge. It never prints.
//
// Strategies: h2 (single-packet HTTP/2: every stream opened, then all END_STREAM frames in one
// write), lastbyte (HTTP/1.1: one connection per racer, every request written but its last
// byte, then all last bytes released), barrier (goroutines released by a closed channel; the
// naive baseline) and auto (h2 where the target speaks HTTP/2, else lastbyte).
package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Strategy is how the racers are synchronised.
type Strategy string

// The strategies, spelled as `--sync` takes them.
const (
	Auto     Strategy = "auto"
	H2       Strategy = "h2"
	LastByte Strategy = "lastbyte"
	Barrier  Strategy = "barrier"
)

// Strategies lists the concrete strategies (not Auto) in the order bench reports them.
var Strategies = []Strategy{H2, LastByte, Barrier}

// ParseStrategy returns the strategy named s, or an error naming the valid ones.
func ParseStrategy(s string) (Strategy, error) {
	switch st := Strategy(s); st {
	case Auto, H2, LastByte, Barrier:
		return st, nil
	case "":
		return Auto, nil
	}
	return "", fmt.Errorf("unknown sync strategy %q (one of: auto, h2, lastbyte, barrier)", s)
}

// DefaultTimeout bounds each request when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// DefaultMaxBody caps each captured response body when Options.MaxBody is zero.
const DefaultMaxBody = 1 << 20

// Request is one racer's request. Path is the path and query, resolved against the racer's
// target base URL (racer i goes to target i mod len(targets)).
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	// PathParams are the values put into Path's template, by name, for $request.path
	// expressions bound to the exchange; they are not sent.
	PathParams map[string]string
}

// Captured is the request as it was sent, with sensitive header values redacted.
type Captured struct {
	Method string      `json:"method"`
	URL    string      `json:"url"`
	Header http.Header `json:"header,omitempty"`
	Body   []byte      `json:"body,omitempty"`
	// PathParams are Request.PathParams.
	PathParams map[string]string `json:"path_params,omitempty"`
}

// ErrorKind classifies a transport failure.
type ErrorKind string

// The transport failure classes an exchange may record.
const (
	ErrDial     ErrorKind = "dial"
	ErrTLS      ErrorKind = "tls"
	ErrReset    ErrorKind = "reset"    // connection reset or closed before a full response
	ErrTimeout  ErrorKind = "timeout"  // the per-request timeout or the context expired
	ErrProtocol ErrorKind = "protocol" // a malformed response, RST_STREAM, GOAWAY
)

// TransportError is why an exchange has no (complete) response. It is data, never a Go error
// that aborts the race.
type TransportError struct {
	Kind    ErrorKind `json:"kind"`
	Message string    `json:"message"`
	// Cause narrows Kind to what a person can act on (refused, a name that does not resolve,
	// an untrusted certificate); empty when nothing more is known.
	Cause Cause `json:"cause,omitempty"`
}

func (e *TransportError) Error() string { return string(e.Kind) + ": " + e.Message }

// Exchange is one racer's request and what came back.
type Exchange struct {
	Racer   int      `json:"racer"`
	Target  string   `json:"target"`
	Request Captured `json:"request"`

	Status    int         `json:"status,omitempty"`
	Proto     string      `json:"proto,omitempty"`
	Header    http.Header `json:"header,omitempty"`
	Body      []byte      `json:"body,omitempty"`
	Truncated bool        `json:"truncated,omitempty"`

	Err *TransportError `json:"error,omitempty"`

	// Monotonic times relative to Outcome.Start: when the racer began writing its request,
	// when its final bytes were released, when the first response byte arrived, and when the
	// exchange ended (response read, or failed). Zero means it never happened.
	WriteStart time.Duration `json:"write_start"`
	Release    time.Duration `json:"release"`
	FirstByte  time.Duration `json:"first_byte"`
	Done       time.Duration `json:"done"`
}

// OK reports whether x got a complete 2xx response; a nil exchange (a request never sent) did not.
func (x *Exchange) OK() bool {
	return x != nil && x.Err == nil && x.Status >= 200 && x.Status < 300
}

// Outcome is one race: the strategy actually used and one exchange per racer, in racer order.
type Outcome struct {
	Strategy  Strategy   `json:"strategy"`
	Start     time.Time  `json:"start"`
	Exchanges []Exchange `json:"exchanges"`
}

// Overlapped reports whether the racers overlapped: at least two were sent, and every racer
// sent was released before the first response was complete. Without overlap, a race proves
// nothing.
func (o Outcome) Overlapped() bool {
	var lastRelease, firstDone time.Duration = 0, -1
	sent := 0
	for _, x := range o.Exchanges {
		if x.Release == 0 && x.WriteStart == 0 {
			continue
		}
		sent++
		lastRelease = max(lastRelease, x.Release)
		if x.Err == nil && x.Done > 0 && (firstDone < 0 || x.Done < firstDone) {
			firstDone = x.Done
		}
	}
	return sent > 1 && (firstDone < 0 || lastRelease <= firstDone)
}

// Options configure an Engine.
type Options struct {
	Strategy Strategy
	// Timeout bounds each request from the start of the race to its last byte.
	Timeout time.Duration
	// MaxBody caps each captured response body; longer bodies are cut and flagged Truncated.
	MaxBody int64
	// TLS configures https targets (a private CA, InsecureSkipVerify, client certificates);
	// nil means the system roots.
	TLS *tls.Config
	// Secrets are header names (e.g. those given by --header) whose values are redacted at
	// capture, on top of the headers IsSensitive names.
	Secrets []string
	// Budget, when set, caps the requests of a run; Fire refuses a race it would exceed.
	Budget *Budget
	// Resolver looks up target host names; nil means net.DefaultResolver. Tests point it at a
	// loopback DNS server.
	Resolver *net.Resolver
}

// Engine fires races. It is safe for concurrent use; it remembers, per target, whether
// HTTP/2 is spoken so that auto probes once.
type Engine struct {
	opts Options

	mu     sync.Mutex
	speaks map[string]bool // target base URL → speaks HTTP/2
}

// New returns an Engine with opts, defaults filled in.
func New(opts Options) *Engine {
	if opts.Strategy == "" {
		opts.Strategy = Auto
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	return &Engine{opts: opts, speaks: map[string]bool{}}
}

// ErrNoRequests is returned by Fire when there is nothing to fire.
var ErrNoRequests = errors.New("no requests to fire")

// target is a parsed base URL.
type target struct {
	base *url.URL
	raw  string
}

// Fire sends reqs together, racer i to targets[i % len(targets)], and returns one exchange
// per racer. Its error is for unusable input (no requests, a bad target URL, an unknown
// strategy) and for a race the budget refuses (ErrBudgetSpent); every transport failure is
// recorded in its exchange.
func (e *Engine) Fire(ctx context.Context, targets []string, reqs []Request) (Outcome, error) {
	if len(reqs) == 0 {
		return Outcome{}, ErrNoRequests
	}
	if len(targets) == 0 {
		return Outcome{}, errors.New("no target to fire at")
	}
	ts := make([]target, len(targets))
	for i, raw := range targets {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Outcome{}, fmt.Errorf("target %q: not an absolute http(s) URL", raw)
		}
		ts[i] = target{base: u, raw: raw}
	}
	if err := e.opts.Budget.take(len(reqs), isUnbudgeted(ctx)); err != nil {
		return Outcome{}, err
	}
	st := e.opts.Strategy
	if st == Auto {
		st = e.resolveAuto(ctx, ts)
	}
	r := e.newRace(ts, reqs)
	switch st {
	case H2:
		r.fireH2(ctx)
	case LastByte:
		r.fireLastByte(ctx)
	case Barrier:
		r.fireBarrier(ctx)
	default:
		return Outcome{}, fmt.Errorf("unknown sync strategy %q", st)
	}
	// Response headers are redacted like the captured requests (a server echoing a secret
	// header must not carry it into the evidence), once the race is over rather than while
	// responses are still being read.
	for i := range r.xs {
		redact(r.xs[i].Header, e.opts.Secrets)
	}
	return Outcome{Strategy: st, Start: r.began, Exchanges: r.xs}, nil
}

// race is the state of one Fire call shared by the strategies.
type race struct {
	e       *Engine
	targets []target
	reqs    []Request
	xs      []Exchange
	began   time.Time // the race start (Outcome.Start); every Exchange time is relative to it
}

// newRace is the state of a race of reqs over ts, every exchange holding its captured request.
func (e *Engine) newRace(ts []target, reqs []Request) *race {
	r := &race{e: e, targets: ts, reqs: reqs, xs: make([]Exchange, len(reqs))}
	for i := range reqs {
		t := r.targetOf(i)
		r.xs[i] = Exchange{Racer: i, Target: t.raw, Request: e.capture(t, reqs[i])}
	}
	return r
}

func (r *race) targetOf(i int) target { return r.targets[i%len(r.targets)] }

// start marks the race start: call it once every connection is open.
func (r *race) start() { r.began = time.Now() }

// since is the monotonic time since the race start.
func (r *race) since() time.Duration { return time.Since(r.began) }

// deadline is when every request of the race times out: Options.Timeout after its start.
func (r *race) deadline() time.Time { return r.began.Add(r.e.opts.Timeout) }

// takeResponse records resp in x: status, protocol, header (Fire redacts it after the race)
// and the body capped at maxBody. Its error is the body's read error.
func (x *Exchange) takeResponse(resp *http.Response, maxBody int64) (err error) {
	x.Status, x.Proto, x.Header = resp.StatusCode, resp.Proto, resp.Header
	x.Body, x.Truncated, err = readCapped(resp.Body, maxBody)
	return err
}

// readCapped reads up to limit bytes of body, reporting whether more was there.
func readCapped(body io.Reader, limit int64) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if int64(len(b)) > limit {
		return b[:limit], true, err
	}
	return b, false, err
}

// resolveAuto picks h2 when every target speaks HTTP/2, else lastbyte.
func (e *Engine) resolveAuto(ctx context.Context, ts []target) Strategy {
	for _, t := range ts {
		e.mu.Lock()
		ok, known := e.speaks[t.raw]
		e.mu.Unlock()
		if !known {
			ok = e.speaksH2(ctx, t)
			e.mu.Lock()
			e.speaks[t.raw] = ok
			e.mu.Unlock()
		}
		if !ok {
			return LastByte
		}
	}
	return H2
}

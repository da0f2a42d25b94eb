package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"
)

// DefaultCommandTimeout bounds each run of --auth-command.
const DefaultCommandTimeout = 30 * time.Second

const (
	// maxOutput caps what the command may print: a header value, however long a JWT gets.
	maxOutput = 64 << 10
	// maxStderr caps the stderr kept to find its first line.
	maxStderr = 8 << 10
	// maxStderrLine clips the line of stderr an error quotes.
	maxStderrLine = 200
	// waitDelay is how long a finished command's output may stay open (held by a process it
	// left in the background) before it is closed.
	waitDelay = time.Second
)

// Command runs --auth-command through `sh -c` and caches the header it prints, so that a
// token that expires mid-run is fetched again: after a 401 (Refresh) and once older than the
// refresh interval (Header). It is safe for concurrent use, and concurrent callers share one run.
type Command struct {
	cmdline string
	refresh time.Duration
	timeout time.Duration    // bounds each run; tests shorten it
	now     func() time.Time // the clock; tests move it

	mu      sync.Mutex
	name    string          // canonical name of the cached header
	value   string          // the cached value; "" before the first successful run and after a failed one
	at      time.Time       // when the run that printed value started
	names   map[string]bool // every header name a run has printed
	runs    int
	pending *run // the run in progress, which every caller joins
}

// run is one execution of the command, shared by every caller that wanted it.
type run struct {
	done  chan struct{} // closed when the fields below are set
	name  string
	value string
	err   error
	// canceled: the context of the caller that executed the run ended it. A caller that
	// merely joined it and whose own context is alive runs the command again.
	canceled bool
}

// NewCommand returns the --auth-command cmdline, run again once its header is older than
// refresh; with refresh 0 it runs again only on Refresh (after a 401). It does not run yet.
func NewCommand(cmdline string, refresh time.Duration) *Command {
	return &Command{
		cmdline: cmdline,
		refresh: refresh,
		timeout: DefaultCommandTimeout,
		now:     time.Now,
		names:   map[string]bool{},
	}
}

// Header returns the command's header (a new map each call), running the command on first
// use and again once the value is older than the refresh interval; callers that arrive while a
// run is in progress wait for it and share its result.
func (c *Command) Header(ctx context.Context) (http.Header, error) {
	for {
		c.mu.Lock()
		if c.pending == nil && c.fresh() {
			h := http.Header{c.name: {c.value}}
			c.mu.Unlock()
			return h, nil
		}
		r, lead := c.join()
		c.mu.Unlock()
		again, err := c.await(ctx, r, lead)
		if again {
			continue
		}
		if err != nil {
			return nil, err
		}
		return http.Header{r.name: {r.value}}, nil
	}
}

// Refresh runs the command again after used (a header Header handed out) was refused with
// 401, unless the value changed since used was handed out: then someone already refreshed it,
// and the racers of one race that all got 401 cause one run, not one each. A run in progress
// is joined rather than repeated.
func (c *Command) Refresh(ctx context.Context, used http.Header) error {
	for {
		c.mu.Lock()
		if c.pending == nil && c.value != "" && used.Get(c.name) != c.value {
			c.mu.Unlock()
			return nil
		}
		r, lead := c.join()
		c.mu.Unlock()
		again, err := c.await(ctx, r, lead)
		if !again {
			return err
		}
	}
}

// Runs counts the runs of the command so far, failed ones included.
func (c *Command) Runs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs
}

// headerNames are the names the command's header was sent under, sorted: Authorization
// until a run printed "Name: value".
func (c *Command) headerNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.names) == 0 {
		return []string{"Authorization"}
	}
	return slices.Sorted(maps.Keys(c.names))
}

// fresh reports whether the cached value may be handed out. c.mu is held.
func (c *Command) fresh() bool {
	return c.value != "" && (c.refresh <= 0 || c.now().Sub(c.at) < c.refresh)
}

// join returns the run in progress, or starts one that the caller must execute (lead).
// c.mu is held.
func (c *Command) join() (r *run, lead bool) {
	if c.pending != nil {
		return c.pending, false
	}
	c.pending = &run{done: make(chan struct{})}
	c.runs++
	return c.pending, true
}

// await executes r when the caller leads it, then waits for its result. again says the
// leader's context ended the run while the caller's own is alive: the caller must try again.
func (c *Command) await(ctx context.Context, r *run, lead bool) (again bool, err error) {
	if lead {
		c.execute(ctx, r)
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		return false, fmt.Errorf("--auth-command: %w", ctx.Err())
	}
	if r.err != nil && r.canceled && !lead && ctx.Err() == nil {
		return true, nil
	}
	return false, r.err
}

// execute runs the command for r, caches its header (or forgets the cached one when it
// failed: it has expired or was refused) and hands the result to r's waiters.
func (c *Command) execute(ctx context.Context, r *run) {
	c.mu.Lock()
	start := c.now()
	c.mu.Unlock()
	name, value, err := c.exec(ctx)
	c.mu.Lock()
	if err == nil {
		c.name, c.value, c.at = name, value, start
		c.names[name] = true
	} else {
		c.value = ""
	}
	c.pending = nil
	c.mu.Unlock()
	r.name, r.value, r.err, r.canceled = name, value, err, err != nil && ctx.Err() != nil
	close(r.done)
}

// exec runs the command once and returns the header it printed. Its stdout is a secret: no
// error quotes it.
func (c *Command) exec(ctx context.Context) (name, value string, err error) {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, "sh", "-c", c.cmdline)
	stdout, stderr := &capped{max: maxOutput}, &capped{max: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = waitDelay
	killGroup(cmd)
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return "", "", fmt.Errorf("--auth-command: %w", ctx.Err())
	case rctx.Err() != nil:
		return "", "", fmt.Errorf("--auth-command: timed out after %v", c.timeout)
	case errors.As(err, &exit):
		if line := firstLine(stderr.buf.String()); line != "" {
			return "", "", fmt.Errorf("--auth-command: %w: %s", exit, line)
		}
		return "", "", fmt.Errorf("--auth-command: %w", exit)
	case errors.Is(err, exec.ErrWaitDelay):
		// The shell succeeded but left a process holding its output: what it printed stands.
	case err != nil:
		return "", "", fmt.Errorf("--auth-command: %w", err)
	}
	if stdout.over {
		return "", "", fmt.Errorf("--auth-command: printed more than %d KiB; want one header value", maxOutput>>10)
	}
	return parseOutput(stdout.buf.String())
}

// parseOutput reads the command's output: one line, either "Name: value" or the value of
// Authorization.
func parseOutput(out string) (name, value string, err error) {
	out = strings.TrimSpace(out)
	if out == "" {
		return "", "", errors.New("--auth-command: printed nothing")
	}
	if n := strings.Count(out, "\n") + 1; n > 1 {
		return "", "", fmt.Errorf("--auth-command: printed %d lines; want one header value", n)
	}
	name, value = "Authorization", out
	if n, v, ok := strings.Cut(out, ":"); ok && httpguts.ValidHeaderFieldName(n) {
		name, value = http.CanonicalHeaderKey(n), strings.TrimSpace(v)
		if value == "" {
			return "", "", fmt.Errorf("--auth-command: printed %s with an empty value", name)
		}
	}
	if !httpguts.ValidHeaderFieldValue(value) {
		return "", "", errors.New("--auth-command: printed a character no HTTP header value may hold (a control character)")
	}
	return name, value, nil
}

// firstLine is the first non-blank line of s without control characters, clipped to
// maxStderrLine characters.
func firstLine(s string) string {
	for l := range strings.SplitSeq(strings.ToValidUTF8(s, "\uFFFD"), "\n") {
		l = strings.TrimSpace(strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return -1
			}
			return r
		}, l))
		if l == "" {
			continue
		}
		if utf8.RuneCountInString(l) > maxStderrLine {
			l = string([]rune(l)[:maxStderrLine]) + "…"
		}
		return l
	}
	return ""
}

// capped keeps the first max bytes written to it and notes whether more came; it never fails
// a write, so the command is not killed by a broken pipe.
type capped struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (w *capped) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); len(p) > room {
		w.buf.Write(p[:max(room, 0)])
		w.over = true
		return len(p), nil
	}
	return w.buf.Write(p)
}

package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// counter is a command printing "Bearer token-N" on its Nth run (counted in a file of its
// own), running before the print whatever shell text extra holds (it sees $n).
func counter(t *testing.T, extra string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "n")
	return fmt.Sprintf(`f=%s; n=$(cat "$f" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$f"; %s echo "Bearer token-$n"`, shellQuote(f), extra)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// fakeClock is a Command's clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// header calls c.Header and wants a single value for name.
func header(t *testing.T, c *Command, name, want string) http.Header {
	t.Helper()
	h, err := c.Header(context.Background())
	if err != nil {
		t.Fatalf("Header: %v", err)
	}
	if got := h.Get(name); got != want || len(h) != 1 {
		t.Fatalf("Header = %v; want only %s: %s", h, name, want)
	}
	return h
}

func wantRuns(t *testing.T, c *Command, want int) {
	t.Helper()
	if got := c.Runs(); got != want {
		t.Errorf("Runs = %d; want %d", got, want)
	}
}

func TestCommandOutput(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 300)
	tests := []struct {
		name    string
		cmdline string
		want    http.Header
		wantErr string // a trailing * matches any rest
	}{
		{"a bare value is Authorization", "echo 'Bearer abc'", http.Header{"Authorization": {"Bearer abc"}}, ""},
		{"trimmed, CRLF tolerated", `printf '\n  Bearer abc \r\n\n'`, http.Header{"Authorization": {"Bearer abc"}}, ""},
		{"Name: value", "echo 'X-Api-Key: k1'", http.Header{"X-Api-Key": {"k1"}}, ""},
		{"Name: value canonicalised", "echo 'x-api-key:k1 '", http.Header{"X-Api-Key": {"k1"}}, ""},
		{"Name: value with colons", "echo 'Authorization: Basic a:b'", http.Header{"Authorization": {"Basic a:b"}}, ""},
		{"a colon after a space is a value", "echo 'Bearer a:b'", http.Header{"Authorization": {"Bearer a:b"}}, ""},
		{"stdin is empty", "cat", nil, "--auth-command: printed nothing"},
		{"nothing", "true", nil, "--auth-command: printed nothing"},
		{"blank lines", `printf '\n \n\t\n'`, nil, "--auth-command: printed nothing"},
		{"three lines", `printf '%s\n' ` + secret + ` b c`, nil, "--auth-command: printed 3 lines; want one header value"},
		{"a blank line between two", `printf '%s\n\nb\n' ` + secret, nil, "--auth-command: printed 3 lines; want one header value"},
		{"a name with no value", "echo 'X-Token:  '", nil, "--auth-command: printed X-Token with an empty value"},
		{"a control character", `printf 'Bearer ` + secret + `\001\n'`, nil, "--auth-command: printed a character no HTTP header value may hold (a control character)"},
		{"too much output", "head -c 70000 /dev/zero | tr '\\0' a", nil, "--auth-command: printed more than 64 KiB; want one header value"},
		{"exit 1 without stderr, output ignored", "echo " + secret + "; exit 1", nil, "--auth-command: exit status 1"},
		{"exit 2 with stderr", "echo " + secret + "; printf '\\n  vault: permission denied  \\nmore\\n' >&2; exit 2", nil, "--auth-command: exit status 2: vault: permission denied"},
		{"stderr clipped", "echo " + long + " >&2; exit 3", nil, "--auth-command: exit status 3: " + long[:200] + "…"},
		{"stderr without control characters", `printf '\033[31mdenied\033[0m\n' >&2; exit 1`, nil, "--auth-command: exit status 1: [31mdenied[0m"},
		{"not found", "no-such-command-xyz", nil, "--auth-command: exit status 127: sh: *"},
		{"killed", "echo " + secret + "; kill -9 $$", nil, "--auth-command: signal: killed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCommand(tt.cmdline, 0)
			got, err := c.Header(context.Background())
			wantRuns(t, c, 1)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Header: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("Header = %v; want %v", got, tt.want)
				}
				if names := c.headerNames(); len(names) != 1 || got.Get(names[0]) == "" {
					t.Errorf("headerNames = %v; want the name of %v", names, got)
				}
				return
			}
			if err == nil {
				t.Fatalf("Header = %v; want error %q", got, tt.wantErr)
			}
			if pre, ok := strings.CutSuffix(tt.wantErr, "*"); ok {
				if !strings.HasPrefix(err.Error(), pre) || strings.Contains(err.Error(), "\n") {
					t.Errorf("err = %q; want one line starting %q", err, pre)
				}
			} else if err.Error() != tt.wantErr {
				t.Errorf("err = %q; want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("err = %q shows the command's output", err)
			}
			if names := c.headerNames(); !reflect.DeepEqual(names, []string{"Authorization"}) {
				t.Errorf("headerNames after a failure = %v; want [Authorization]", names)
			}
		})
	}
}

// TestCommandEnvironment: the command sees the process environment.
func TestCommandEnvironment(t *testing.T) {
	t.Setenv("AUTH_TEST_TOKEN", "from-env")
	header(t, NewCommand(`echo "Bearer $AUTH_TEST_TOKEN"`, 0), "Authorization", "Bearer from-env")
}

func TestCommandCachesUntilRefresh(t *testing.T) {
	t.Parallel()
	c := NewCommand(counter(t, ""), 0)
	for range 3 {
		header(t, c, "Authorization", "Bearer token-1")
	}
	wantRuns(t, c, 1)
	used, _ := c.Header(context.Background())
	if err := c.Refresh(context.Background(), used); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	wantRuns(t, c, 2)
	header(t, c, "Authorization", "Bearer token-2")
	wantRuns(t, c, 2)
}

func TestCommandRefreshesAfterDuration(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	c := NewCommand(counter(t, ""), 50*time.Millisecond)
	c.now = clock.Now
	steps := []struct {
		advance  time.Duration
		want     string
		wantRuns int
	}{
		{0, "Bearer token-1", 1},
		{49 * time.Millisecond, "Bearer token-1", 1},
		{time.Millisecond, "Bearer token-2", 2}, // 50ms old: expired
		{0, "Bearer token-2", 2},
		{10 * time.Second, "Bearer token-3", 3},
	}
	for i, s := range steps {
		clock.advance(s.advance)
		h, err := c.Header(context.Background())
		if err != nil {
			t.Fatalf("step %d: Header: %v", i, err)
		}
		if got := h.Get("Authorization"); got != s.want {
			t.Errorf("step %d: Authorization = %q; want %q", i, got, s.want)
		}
		if got := c.Runs(); got != s.wantRuns {
			t.Errorf("step %d: Runs = %d; want %d", i, got, s.wantRuns)
		}
	}
}

// TestCommandRefreshesAfterDurationRealClock: with the real clock, a value older than the
// refresh interval is fetched again (only the lower bound of the sleep is relied on).
func TestCommandRefreshesAfterDurationRealClock(t *testing.T) {
	t.Parallel()
	c := NewCommand(counter(t, ""), 50*time.Millisecond)
	header(t, c, "Authorization", "Bearer token-1")
	time.Sleep(100 * time.Millisecond)
	header(t, c, "Authorization", "Bearer token-2")
}

// race runs f in n goroutines released together and returns their errors.
func race(n int, f func() error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f()
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func TestCommandHeaderSingleFlight(t *testing.T) {
	t.Parallel()
	c := NewCommand(counter(t, "sleep 0.2;"), 0)
	var mu sync.Mutex
	got := map[string]int{}
	errs := race(8, func() error {
		h, err := c.Header(context.Background())
		mu.Lock()
		got[h.Get("Authorization")]++
		mu.Unlock()
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	wantRuns(t, c, 1)
	if want := map[string]int{"Bearer token-1": 8}; !reflect.DeepEqual(got, want) {
		t.Errorf("values handed out = %v; want %v", got, want)
	}
}

func TestCommandRefreshSingleFlight(t *testing.T) {
	t.Parallel()
	c := NewCommand(counter(t, `if [ $n = 2 ]; then sleep 0.2; fi;`), 0)
	used := header(t, c, "Authorization", "Bearer token-1")
	errs := race(8, func() error {
		// Each racer got 401 with used and asks for a refresh.
		return c.Refresh(context.Background(), used.Clone())
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("racer %d: %v", i, err)
		}
	}
	wantRuns(t, c, 2)
	header(t, c, "Authorization", "Bearer token-2")
	wantRuns(t, c, 2)
}

func TestCommandRefreshWithOutdatedValue(t *testing.T) {
	t.Parallel()
	c := NewCommand(counter(t, ""), 0)
	ctx := context.Background()
	used1 := header(t, c, "Authorization", "Bearer token-1")
	if err := c.Refresh(ctx, used1); err != nil {
		t.Fatal(err)
	}
	wantRuns(t, c, 2)
	used2 := header(t, c, "Authorization", "Bearer token-2")
	// A late 401 to a request sent with token-1: token-2 is already there.
	if err := c.Refresh(ctx, used1); err != nil {
		t.Fatal(err)
	}
	wantRuns(t, c, 2)
	// used carrying more headers than the command's (a Source's) is compared on its name only.
	merged := used2.Clone()
	merged.Set("X-Tenant", "t")
	if err := c.Refresh(ctx, merged); err != nil {
		t.Fatal(err)
	}
	wantRuns(t, c, 3)
	header(t, c, "Authorization", "Bearer token-3")
}

func TestCommandRefreshBeforeFirstRun(t *testing.T) {
	t.Parallel()
	c := NewCommand(counter(t, ""), 0)
	if err := c.Refresh(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	wantRuns(t, c, 1)
	header(t, c, "Authorization", "Bearer token-1")
	wantRuns(t, c, 1)
}

func TestCommandNamedHeaderRefresh(t *testing.T) {
	t.Parallel()
	f := filepath.Join(t.TempDir(), "n")
	c := NewCommand(fmt.Sprintf(`f=%s; n=$(cat "$f" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$f"; echo "x-auth-token: t$n"`, shellQuote(f)), 0)
	used := header(t, c, "X-Auth-Token", "t1")
	if got, want := c.headerNames(), []string{"X-Auth-Token"}; !reflect.DeepEqual(got, want) {
		t.Errorf("headerNames = %v; want %v", got, want)
	}
	for range 2 {
		if err := c.Refresh(context.Background(), used); err != nil {
			t.Fatal(err)
		}
	}
	wantRuns(t, c, 2)
	header(t, c, "X-Auth-Token", "t2")
}

func TestCommandFailureIsNotCached(t *testing.T) {
	t.Parallel()
	c := NewCommand(counter(t, `if [ $n = 2 ]; then echo denied >&2; exit 1; fi;`), 0)
	used := header(t, c, "Authorization", "Bearer token-1")
	err := c.Refresh(context.Background(), used)
	if want := "--auth-command: exit status 1: denied"; err == nil || err.Error() != want {
		t.Fatalf("Refresh: err = %v; want %q", err, want)
	}
	// The refused token-1 is not handed out again: the next Header runs the command.
	header(t, c, "Authorization", "Bearer token-3")
	wantRuns(t, c, 3)
}

func TestCommandTimeout(t *testing.T) {
	t.Parallel()
	// sleep is not the shell's last command, so the shell forks it: the whole process group
	// must be killed for the output pipe to close.
	c := NewCommand("echo "+secret+"; sleep 20; echo Bearer x", 0)
	c.timeout = 200 * time.Millisecond
	start := time.Now()
	_, err := c.Header(context.Background())
	if want := "--auth-command: timed out after 200ms"; err == nil || err.Error() != want {
		t.Errorf("err = %v; want %q", err, want)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("Header returned after %v: the command was not killed", d)
	}
}

func TestCommandContextCanceled(t *testing.T) {
	t.Parallel()
	c := NewCommand("sleep 20; echo Bearer x", 0)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Header(ctx)
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "--auth-command: ") {
		t.Errorf("err = %v; want --auth-command: context canceled", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("Header returned after %v: the command was not killed", d)
	}
}

// TestCommandWaiterOutlivesLeader: a caller sharing a run that another caller's context ended
// runs the command itself rather than failing with someone else's cancellation.
func TestCommandWaiterOutlivesLeader(t *testing.T) {
	t.Parallel()
	c := NewCommand(counter(t, `if [ $n = 1 ]; then sleep 20; fi;`), 0)
	ctx, cancel := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := c.Header(ctx)
		leaderErr <- err
	}()
	for c.Runs() == 0 {
		time.Sleep(time.Millisecond)
	}
	waiter := make(chan http.Header, 1)
	go func() {
		h, err := c.Header(context.Background())
		if err != nil {
			t.Errorf("waiter: %v", err)
		}
		waiter <- h
	}()
	time.Sleep(100 * time.Millisecond) // let the waiter join the run (the result is the same if it does not)
	cancel()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Errorf("leader: err = %v; want context canceled", err)
	}
	if got := (<-waiter).Get("Authorization"); got != "Bearer token-2" {
		t.Errorf("waiter: Authorization = %q; want Bearer token-2", got)
	}
	wantRuns(t, c, 2)
}

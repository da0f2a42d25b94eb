package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/pgtest"
	"github.com/conflictcheck/conflictcheck/internal/racetest"
	"github.com/conflictcheck/conflictcheck/internal/spectest"
)

// childEnv makes the test binary run the reference server's main instead of the tests, so the
// tests can start real server processes without building a binary.
const childEnv = "REFERENCE_SERVER_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(run(os.Args[1:]))
	}
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

// child is a reference server process.
type child struct {
	cmd    *exec.Cmd
	addr   string
	stderr *syncBuffer
	exited chan struct{}
	code   int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listening = regexp.MustCompile(`reference server listening" addr=(\S+)`)

// spawn starts the server process with args; it is killed when the test ends.
func spawn(t *testing.T, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	pr, pw := io.Pipe()
	c := &child{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = io.MultiWriter(pw, c.stderr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		c.code = cmd.ProcessState.ExitCode()
		pw.Close()
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.exited
	})
	select {
	case c.addr = <-found:
	case <-c.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not start within 20s; stderr:\n%s", c.stderr)
	}
	return c
}

// wait returns the exit code, failing the test if the process runs longer than d.
func (c *child) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-c.exited:
		return c.code
	case <-time.After(d):
		t.Fatalf("process still running after %v; stderr:\n%s", d, c.stderr)
		return -1
	}
}

func TestBadInputExits2WithOneLine(t *testing.T) {
	closed := freePort(t)
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--nope"}, "unknown flag: --nope"},
		{"unknown fault", []string{"--fault", "dupe"}, `unknown fault "dupe" (one of: race,`},
		{"unknown store", []string{"--store", "mongo"}, `unknown store "mongo"`},
		{"negative window", []string{"--race-window", "-1ms"}, "--race-window must not be negative"},
		{"bad duration", []string{"--race-window", "soon"}, "invalid argument"},
		{"postgres without url", []string{"--store", "postgres", "--database-url", ""}, "--store postgres needs --database-url"},
		{"per-replica-lock on memory", []string{"--fault", "per-replica-lock"}, "needs --store postgres"},
		{"stray argument", []string{"serve"}, `unexpected argument "serve"`},
		{"address in use", []string{"--addr", held.Addr().String()}, "listen on " + held.Addr().String()},
		{"unreachable database", []string{"--store", "postgres", "--database-url", "postgres://postgres@" + closed + "/x?sslmode=disable"}, "postgres"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			c := spawn(t, tt.args...)
			if code := c.wait(t, 15*time.Second); code != 2 {
				t.Fatalf("exit code %d; want 2\nstderr:\n%s", code, c.stderr)
			}
			out := strings.TrimSpace(c.stderr.String())
			if strings.Count(out, "\n") != 0 || !strings.HasPrefix(out, "reference-server: ") || !strings.Contains(out, tt.want) {
				t.Fatalf("stderr = %q; want one line containing %q", out, tt.want)
			}
			if strings.Contains(out, "goroutine ") || strings.Contains(out, "panic") {
				t.Fatalf("stderr holds a stack trace: %s", out)
			}
			if d := time.Since(start); d > 12*time.Second {
				t.Fatalf("took %v to give up", d)
			}
		})
	}
}

func TestHelpExits0(t *testing.T) {
	c := spawn(t, "--help")
	if code := c.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("--help exit code %d; want 0", code)
	}
}

func TestGracefulShutdownOnSIGTERM(t *testing.T) {
	c := spawn(t, "--addr", "127.0.0.1:0")
	if c.addr == "" {
		t.Fatalf("no listening address; stderr:\n%s", c.stderr)
	}
	res, err := http.Get("http://" + c.addr + "/items")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET /items = %d", res.StatusCode)
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM %d; want 0\nstderr:\n%s", code, c.stderr)
	}
	if !strings.Contains(c.stderr.String(), "shutting down") {
		t.Errorf("no shutdown log line:\n%s", c.stderr)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// replicas are server processes that share one database; requests go round-robin over them.
type replicas struct {
	t  *testing.T
	rc *racetest.Client
	v  *spectest.Validator
}

func startReplicas(t *testing.T, n int, args ...string) *replicas {
	t.Helper()
	db := pgtest.Shared(t).CreateDB(t)
	v, err := spectest.New()
	if err != nil {
		t.Fatal(err)
	}
	r := &replicas{t: t, v: v, rc: &racetest.Client{HTTP: http.DefaultClient}}
	for range n {
		c := spawn(t, append([]string{"--addr", "127.0.0.1:0", "--store", "postgres", "--database-url", db}, args...)...)
		if c.addr == "" {
			t.Fatalf("replica did not start; stderr:\n%s", c.stderr)
		}
		r.rc.Bases = append(r.rc.Bases, "http://"+c.addr)
	}
	return r
}

// check reports a transport error, or with validate a response that breaks the spec.
func (r *replicas) check(req racetest.Request, rep racetest.Reply, validate bool) racetest.Reply {
	if rep.Err != nil {
		r.t.Error(rep.Err)
		return rep
	}
	if validate {
		probe, _ := http.NewRequest(req.Method, "http://127.0.0.1"+req.Path, nil)
		if err := r.v.Check(probe, rep.Status, rep.Header, rep.Body); err != nil {
			r.t.Errorf("response breaks reference.yaml: %v", err)
		}
	}
	return rep
}

// do sends one request to replica i (mod n); validate checks the response against the spec.
func (r *replicas) do(i int, method, path string, body any, validate bool, hdr ...string) racetest.Reply {
	req := racetest.Request{Method: method, Path: path, Body: body, Header: hdr}
	return r.check(req, r.rc.Do(r.t.Context(), i, req), validate)
}

// collide fires n requests at once, spread over the replicas, and counts statuses.
func (r *replicas) collide(n int, validate bool, mk func(i int) (method, path string, body any, hdr []string)) map[int]int {
	reqs := make([]racetest.Request, n)
	for i := range n {
		m, p, b, h := mk(i)
		reqs[i] = racetest.Request{Method: m, Path: p, Body: b, Header: h}
	}
	replies := r.rc.Collide(r.t.Context(), n, func(i int) racetest.Request { return reqs[i] })
	counts := map[int]int{}
	for i, rep := range replies {
		counts[r.check(reqs[i], rep, validate).Status]++
	}
	return counts
}

func (r *replicas) create(sku string, stock int) string {
	rep := r.do(0, "POST", "/items", map[string]any{"sku": sku, "name": "n", "price": 1, "stock": stock}, true)
	if rep.Status != 201 {
		r.t.Fatalf("create %s: %d %s", sku, rep.Status, rep.Body)
	}
	return rep.Object()["id"].(string)
}

// TestTwoReplicasKeepEveryGuarantee runs two server processes on one PostgreSQL database and
// races every conflict kind across them.
func TestTwoReplicasKeepEveryGuarantee(t *testing.T) {
	r := startReplicas(t, 2)
	const n = 20
	dup := r.collide(n, true, func(i int) (string, string, any, []string) {
		return "POST", "/items", map[string]any{"sku": "DUP", "name": fmt.Sprint(i), "price": 1, "stock": 1}, nil
	})
	if dup[201] != 1 || dup[409] != n-1 {
		t.Errorf("duplicate create: %v; want one 201", dup)
	}
	id := r.create("STALE", 2)
	stale := r.collide(n, true, func(i int) (string, string, any, []string) {
		return "PATCH", "/items/" + id, map[string]any{"version": 1, "name": fmt.Sprint(i)}, nil
	})
	if stale[200] != 1 || stale[409] != n-1 {
		t.Errorf("stale PATCH: %v; want one 200", stale)
	}
	put := r.collide(n, true, func(i int) (string, string, any, []string) {
		return "PUT", "/items/" + id, map[string]any{"name": fmt.Sprint(i), "price": 1, "stock": 5}, []string{"If-Match", `"v2"`}
	})
	if put[200] != 1 || put[412] != n-1 {
		t.Errorf("stale PUT: %v; want one 200", put)
	}
	capID := r.create("CAP", 4)
	cap := r.collide(n, true, func(int) (string, string, any, []string) {
		return "POST", "/orders", map[string]any{"itemId": capID, "quantity": 1}, nil
	})
	if cap[201] != 4 || cap[409] != n-4 {
		t.Errorf("capacity: %v; want four 201", cap)
	}
	if got := r.do(1, "GET", "/items/"+capID, nil, true); got.Object()["stock"] != float64(0) {
		t.Errorf("stock after the capacity race: %v; want 0", got.Object()["stock"])
	}
	trID := r.create("TR", 1)
	order := r.do(0, "POST", "/orders", map[string]any{"itemId": trID, "quantity": 1}, true)
	oid := order.Object()["id"].(string)
	tr := r.collide(n, true, func(i int) (string, string, any, []string) {
		return "POST", "/orders/" + oid + []string{"/cancel", "/ship"}[i%2], nil, nil
	})
	if tr[200] != 1 || tr[409] != n-1 {
		t.Errorf("transition: %v; want one 200", tr)
	}
	keyID := r.create("KEY", 100)
	key := r.collide(n, true, func(int) (string, string, any, []string) {
		return "POST", "/orders", map[string]any{"itemId": keyID, "quantity": 1}, []string{"Idempotency-Key", "one-key"}
	})
	if key[201] < 1 || key[201]+key[409] != n {
		t.Errorf("idempotency key: %v; want 201s (first and replays) and 409s (in flight) only", key)
	}
	if got := r.do(1, "GET", "/items/"+keyID, nil, true); got.Object()["stock"] != float64(99) {
		t.Errorf("stock after one key's requests: %v; want 99 (one execution)", got.Object()["stock"])
	}
}

// TestPerReplicaLock shows the fault: correct on one replica, broken on two sharing a database.
func TestPerReplicaLock(t *testing.T) {
	const n = 16
	race := func(r *replicas) int {
		return r.collide(n, false, func(i int) (string, string, any, []string) {
			return "POST", "/items", map[string]any{"sku": "LOCK", "name": fmt.Sprint(i), "price": 1, "stock": 1}, nil
		})[201]
	}
	if won := race(startReplicas(t, 1, "--fault", "per-replica-lock", "--race-window", "20ms")); won != 1 {
		t.Errorf("one replica: %d creates won; want 1 (the local lock suffices)", won)
	}
	if won := race(startReplicas(t, 2, "--fault", "per-replica-lock", "--race-window", "20ms")); won < 2 {
		t.Errorf("two replicas: %d creates won; want 2+ (a local lock does not guard shared data)", won)
	}
}

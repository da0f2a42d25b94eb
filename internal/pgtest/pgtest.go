// Package pgtest starts throwaway PostgreSQL servers for tests.
//
// A server lives in a temporary directory, listens on a free loopback port with trust
// authentication, runs with durability switched off (fsync, synchronous_commit and
// full_page_writes off) and is stopped with "pg_ctl -m immediate stop" before its directory is
// removed. The binaries (initdb, pg_ctl) are looked up on PATH, then in
// /usr/lib/postgresql/*/bin, highest version first. When they are missing the test is skipped,
// except under CI=true where a missing PostgreSQL fails the test instead.
//
// When the test runs as root, PostgreSQL (which refuses to run as root) runs as the
// unprivileged "postgres" user through runuser.
//
// Start gives a test its own server. Shared gives every test of the binary one server, started
// on first use; the package's TestMain must then call Stop after m.Run:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		pgtest.Stop()
//		os.Exit(code)
//	}
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// MissingMessage is the skip (or, under CI=true, failure) message when PostgreSQL is not
// installed.
const MissingMessage = "PostgreSQL not found (initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin): install postgresql to run these tests"

// errMissing marks a start that failed because the binaries are not installed.
var errMissing = errors.New(MissingMessage)

// Server is a running throwaway PostgreSQL server.
type Server struct {
	// Port is the loopback TCP port the server listens on.
	Port int
	// Dir is the temporary directory holding the data directory, the socket and the log.
	Dir string

	pgCtl   string
	dataDir string
	logFile string
	asUser  string // run the binaries as this user through runuser; empty: as ourselves
	dbs     atomic.Int64

	stopOnce sync.Once
	stopErr  error
}

// Start starts a server for tb alone and stops it when tb's test ends. It skips tb when
// PostgreSQL is not installed (fails it under CI=true) and fails tb when the server cannot
// start.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := start()
	if err != nil {
		fail(tb, err)
	}
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return s
}

var shared struct {
	once sync.Once
	srv  *Server
	err  error
	mu   sync.Mutex // serialises Stop against a concurrent first Shared
}

// Shared returns the server shared by every test of this test binary, starting it on first
// use. The server outlives the test: the package's TestMain must call Stop after m.Run. Like
// Start, it skips tb when PostgreSQL is not installed (fails it under CI=true) and fails tb
// when the server cannot start.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	shared.mu.Lock()
	shared.once.Do(func() {
		shared.srv, shared.err = start()
	})
	shared.mu.Unlock()
	if shared.err != nil {
		fail(tb, shared.err)
	}
	return shared.srv
}

// Stop stops the server started by Shared, if any, and removes its directory. Call it from
// TestMain after m.Run; it does nothing when no test asked for the shared server, and a
// failure to stop is reported on standard error.
func Stop() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil {
		return
	}
	if err := shared.srv.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
	}
}

// fail skips or fails tb for a start error: a missing installation skips, unless CI=true.
func fail(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, errMissing) {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			tb.Fatal(MissingMessage)
		}
		tb.Skip(MissingMessage)
	}
	tb.Fatalf("pgtest: %v", err)
}

// URL returns the connection URL of database db on the server, as the postgres superuser.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// CreateDB creates a fresh, uniquely named, empty database and returns its URL. The database
// lives as long as the server. It fails tb when the database cannot be created.
func (s *Server) CreateDB(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), s.dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres")+"&connect_timeout=5")
	if err != nil {
		tb.Fatalf("pgtest: connect to create database %s: %v", name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	return s.URL(name)
}

// Stop stops the server immediately and removes its directory. It is safe to call more than
// once; Start's cleanup calls it.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		out, err := s.run(s.pgCtl, "-D", s.dataDir, "-m", "immediate", "-w", "stop")
		if err != nil {
			s.stopErr = fmt.Errorf("pg_ctl stop: %v\n%s%s", err, out, s.log())
		}
		if err := os.RemoveAll(s.Dir); err != nil && s.stopErr == nil {
			s.stopErr = fmt.Errorf("remove %s: %w", s.Dir, err)
		}
	})
	return s.stopErr
}

// start initialises and starts a server; errMissing when PostgreSQL is not installed.
func start() (_ *Server, err error) {
	initdb, pgCtl, err := findBinaries()
	if err != nil {
		return nil, err
	}
	s := &Server{pgCtl: pgCtl}
	var owner *user.User
	if os.Geteuid() == 0 {
		owner, err = user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, PostgreSQL must run as the postgres user: %w", err)
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			return nil, fmt.Errorf("running as root, runuser is needed to run PostgreSQL as the postgres user: %w", err)
		}
		s.asUser = owner.Username
	}

	parent, err := tempParent(owner != nil)
	if err != nil {
		return nil, err
	}
	s.Dir, err = os.MkdirTemp(parent, "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(s.Dir)
		}
	}()
	s.dataDir = filepath.Join(s.Dir, "data")
	runDir := filepath.Join(s.Dir, "run") // socket and log
	s.logFile = filepath.Join(runDir, "postgres.log")
	for _, d := range []string{s.dataDir, runDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	if owner != nil {
		// The postgres user must traverse the temp dir and own what PostgreSQL writes.
		if err := os.Chmod(s.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("chmod %s: %w", s.Dir, err)
		}
		uid, err1 := strconv.Atoi(owner.Uid)
		gid, err2 := strconv.Atoi(owner.Gid)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("postgres user ids: %w", err)
		}
		for _, d := range []string{s.dataDir, runDir} {
			if err := os.Chown(d, uid, gid); err != nil {
				return nil, fmt.Errorf("chown %s to postgres: %w", d, err)
			}
		}
	}

	if out, err := s.run(initdb, "-D", s.dataDir, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}

	// The free port can be taken between our probe and the server's bind: retry on another.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		s.Port, err = freePort()
		if err != nil {
			return nil, err
		}
		opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300", s.Port, runDir)
		out, err := s.run(s.pgCtl, "-D", s.dataDir, "-l", s.logFile, "-w", "-t", "60", "-o", opts, "start")
		if err == nil {
			return s, nil
		}
		log := s.log()
		if attempt < attempts && strings.Contains(log, "could not bind") {
			continue
		}
		// A half-started server must not outlive the failure.
		s.run(s.pgCtl, "-D", s.dataDir, "-m", "immediate", "-w", "stop")
		return nil, fmt.Errorf("pg_ctl start on port %d: %v\n%s%s", s.Port, err, out, log)
	}
}

// run runs a PostgreSQL binary, as the postgres user when s.asUser says so, and returns its
// combined output.
func (s *Server) run(bin string, args ...string) ([]byte, error) {
	var cmd *exec.Cmd
	if s.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", s.asUser, "--", bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	// A working directory the postgres user can enter, and a predictable locale.
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// pg_ctl start leaves the postmaster running with our pipes open: do not wait for them.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil
	}
	return out.Bytes(), err
}

// log returns the server log, framed for an error message.
func (s *Server) log() string {
	b, err := os.ReadFile(s.logFile)
	if err != nil {
		return fmt.Sprintf("(no server log: %v)\n", err)
	}
	return fmt.Sprintf("--- server log %s ---\n%s", s.logFile, b)
}

// findBinaries finds initdb and pg_ctl, on PATH or in the highest /usr/lib/postgresql/*/bin.
func findBinaries() (initdb, pgCtl string, err error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		initdb = resolve(p)
		// Prefer the pg_ctl of the same installation.
		if c := filepath.Join(filepath.Dir(initdb), "pg_ctl"); isExecutable(c) {
			return initdb, c, nil
		}
		if c, err := exec.LookPath("pg_ctl"); err == nil {
			return initdb, resolve(c), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionLess(dirs[j], dirs[i]) })
	for _, d := range dirs {
		i, c := filepath.Join(d, "initdb"), filepath.Join(d, "pg_ctl")
		if isExecutable(i) && isExecutable(c) {
			return i, c, nil
		}
	}
	return "", "", errMissing
}

// versionLess orders /usr/lib/postgresql/<version>/bin paths by numeric version (9.6 < 15).
func versionLess(a, b string) bool {
	va := strings.Split(filepath.Base(filepath.Dir(a)), ".")
	vb := strings.Split(filepath.Base(filepath.Dir(b)), ".")
	for k := 0; k < len(va) && k < len(vb); k++ {
		x, errx := strconv.Atoi(va[k])
		y, erry := strconv.Atoi(vb[k])
		if errx != nil || erry != nil {
			if va[k] != vb[k] {
				return va[k] < vb[k]
			}
			continue
		}
		if x != y {
			return x < y
		}
	}
	return len(va) < len(vb)
}

// resolve follows symlinks so that the binaries find their installation, and so that the
// postgres user runs them by an absolute path.
func resolve(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	if a, err := filepath.Abs(p); err == nil {
		p = a
	}
	return p
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// tempParent returns the directory to create the server's temp dir in. For another user it
// must be traversable by everyone all the way up: os.TempDir() if so, else /tmp.
func tempParent(forOtherUser bool) (string, error) {
	dir := os.TempDir()
	if !forOtherUser {
		return dir, nil
	}
	for _, d := range []string{dir, "/tmp"} {
		if traversable(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("neither %s nor /tmp is traversable by the postgres user: set TMPDIR to a world-traversable directory", dir)
}

// traversable reports whether every directory from the root down to dir is searchable by
// other users.
func traversable(dir string) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	for d := abs; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}

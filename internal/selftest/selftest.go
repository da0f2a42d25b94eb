// Package selftest proves that conflictcheck's checks can fail: it runs the suite against the
// reference server once clean and once per injected fault, and reports whether every fault
// was caught by one of the checks that must catch it.
//
// Ginkgo's RunSpecs runs once per process, so every run is a child process: this process
// starts the reference server (two replicas on one database with the postgres store), and the
// child, the conflictcheck executable, runs `conflictcheck run` against it and writes its
// report.json, which this process reads back.
package selftest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/conflictcheck/conflictcheck/openapi"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
	"github.com/conflictcheck/conflictcheck/reference-server/server"
	"github.com/conflictcheck/conflictcheck/reports"
)

// The stores selftest can run the reference server on.
const (
	StoreMemory   = "memory"
	StorePostgres = "postgres"
)

// DefaultTimeout bounds each child run unless Config.Timeout says otherwise: far above what a
// run takes, so that only a hung child reaches it.
const DefaultTimeout = 5 * time.Minute

// CleanName names the clean run in the matrix, the progress and its report dir.
const CleanName = "clean"

// Config is one selftest.
type Config struct {
	// Executable is the conflictcheck executable each child runs as `conflictcheck run`: the
	// CLI passes os.Executable(), tests a test binary that acts as the CLI.
	Executable string
	// Env is added to the environment the children inherit.
	Env []string
	// Store is StoreMemory (the default when empty) or StorePostgres.
	Store string
	// DatabaseURL is the PostgreSQL database of the postgres store; both replicas share it.
	DatabaseURL string
	// Faults are the faults to inject, one run each; nil means fault.All.
	Faults []fault.Fault
	// Timeout bounds each child run; zero means DefaultTimeout.
	Timeout time.Duration
	// Progress receives a line as each run finishes; nil discards them.
	Progress io.Writer
	// Log receives the reference servers' logs; nil discards them.
	Log *slog.Logger
}

// validate checks c and fills in its defaults.
func (c *Config) validate() error {
	switch c.Store {
	case "":
		c.Store = StoreMemory
	case StoreMemory:
	case StorePostgres:
		if c.DatabaseURL == "" {
			return errors.New("--store postgres needs --database-url (or $DATABASE_URL)")
		}
	default:
		return fmt.Errorf("unknown --store %q (one of: memory, postgres)", c.Store)
	}
	if c.Executable == "" {
		return errors.New("no conflictcheck executable to run the suite with")
	}
	if c.Faults == nil {
		c.Faults = fault.All
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// replicas is how many reference servers each run starts: two on postgres, so that defects
// local to one process (per-replica-lock) show.
func (c *Config) replicas() int {
	if c.Store == StorePostgres {
		return 2
	}
	return 1
}

// skipReason says why fault f cannot show on c's store, or "" when it can.
func (c *Config) skipReason(f fault.Fault) string {
	if f.Postgres && c.Store != StorePostgres {
		return "needs --store postgres"
	}
	return ""
}

// Run runs the clean reference server and every fault of cfg, each in a child process, and
// returns what each run showed. An error is an infrastructure problem (bad configuration, a
// server that would not start, a child that exited 2, timed out or wrote no report), never a
// check that failed: that is in the Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "conflictcheck-selftest-")
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	spec := filepath.Join(dir, "reference.yaml")
	if err := os.WriteFile(spec, openapi.Reference, 0o644); err != nil {
		return nil, fmt.Errorf("write the reference spec: %w", err)
	}

	res := &Result{Store: cfg.Store}
	// The header waits for the first servers, so that a database error is the only line.
	header := func(targets []string) {
		replicas := "1 replica"
		if len(targets) > 1 {
			replicas = fmt.Sprintf("%d replicas", len(targets))
		}
		fmt.Fprintf(cfg.Progress, "selftest: %s store, %s; a clean run and %d faults\n", cfg.Store, replicas, len(cfg.Faults))
	}
	res.Clean, err = runOne(ctx, &cfg, dir, spec, fault.Fault{}, header)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(cfg.Progress, res.Clean.progressLine())
	for _, f := range cfg.Faults {
		row := Row{Fault: f, Skip: cfg.skipReason(f)}
		if row.Skip == "" {
			if row, err = runOne(ctx, &cfg, dir, spec, f, nil); err != nil {
				return nil, err
			}
		}
		fmt.Fprintln(cfg.Progress, row.progressLine())
		res.Faults = append(res.Faults, row)
	}
	return res, nil
}

// runOne starts the reference server with fault f, calls started (when not nil) with its
// URLs, runs the suite against it in a child and evaluates the child's report.
func runOne(ctx context.Context, cfg *Config, dir, spec string, f fault.Fault, started func(targets []string)) (Row, error) {
	name := Row{Fault: f}.Name()
	start := time.Now()
	targets, stop, err := startServers(ctx, cfg, f)
	if err != nil {
		return Row{}, fmt.Errorf("%s: start the reference server (%s store): %w", name, cfg.Store, err)
	}
	defer stop()
	if started != nil {
		started(targets)
	}

	reportDir := filepath.Join(dir, name)
	args := []string{"run", "--spec", spec}
	for _, t := range targets {
		args = append(args, "--target", t)
	}
	args = append(args, "--report-dir", reportDir)
	code, err := runChild(ctx, cfg, dir, args)
	if err != nil {
		return Row{}, fmt.Errorf("%s: %w", name, err)
	}
	run, err := reports.ReadJSON(reportDir)
	if err != nil {
		return Row{}, fmt.Errorf("%s: the run (exit %d) left no usable report: %w", name, code, err)
	}
	return evaluate(f, code, run, time.Since(start)), nil
}

// startServers starts cfg.replicas() reference servers with fault f on 127.0.0.1 and returns
// their URLs and a function that stops them.
func startServers(ctx context.Context, cfg *Config, f fault.Fault) ([]string, func(), error) {
	var (
		servers []*server.Server
		targets []string
	)
	stop := func() {
		for _, s := range servers {
			if err := s.Close(); err != nil {
				cfg.Log.Warn("stop the reference server", "addr", s.Addr, "err", err)
			}
		}
	}
	for range cfg.replicas() {
		s, err := server.Start(ctx, server.Config{
			Addr:        "127.0.0.1:0",
			Store:       cfg.Store,
			DatabaseURL: cfg.DatabaseURL,
			Fault:       string(f.Name),
			RaceWindow:  fault.DefaultRaceWindow,
		}, cfg.Log)
		if err != nil {
			stop()
			return nil, nil, err
		}
		servers = append(servers, s)
		targets = append(targets, "http://"+s.Addr)
	}
	return targets, stop, nil
}

// runChild runs the executable with args in dir, bounded by cfg.Timeout, and returns its exit
// code when it is a result (0 or 1). Exit 2, any other code, a timeout or a child that cannot
// start is an error that quotes the child's last line of stderr.
func runChild(ctx context.Context, cfg *Config, dir string, args []string) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, cfg.Executable, args...)
	cmd.Dir = dir
	// The children's summaries are no one's business: selftest prints its own matrix, so they
	// must not write into a CI job's step summary.
	cmd.Env = append(append(os.Environ(), reports.StepSummaryEnv+"="), cfg.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A grandchild holding the pipes open must not keep us waiting once the child is gone.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return 0, fmt.Errorf("conflictcheck run: %w", ctx.Err())
	case cctx.Err() != nil:
		return 0, fmt.Errorf("conflictcheck run did not finish within %v and was killed%s", cfg.Timeout, lastLine(&stderr, &stdout))
	case err == nil:
		return 0, nil
	case !errors.As(err, &exit):
		return 0, fmt.Errorf("conflictcheck run: %w", err)
	}
	switch code := exit.ExitCode(); code {
	case 1:
		return code, nil
	case 2:
		return 0, fmt.Errorf("conflictcheck run exited 2 (usage, spec or connection error)%s", lastLine(&stderr, &stdout))
	default:
		return 0, fmt.Errorf("conflictcheck run: %v%s", err, lastLine(&stderr, &stdout))
	}
}

// lastLine is ": " and the last non-empty line of the first output that has one, or "".
func lastLine(outputs ...*bytes.Buffer) string {
	for _, o := range outputs {
		lines := strings.Split(strings.TrimSpace(o.String()), "\n")
		if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
			return ": " + l
		}
	}
	return ""
}

// Package server assembles and runs the reference server: the flags shared by
// `go run ./reference-server` and `conflictcheck serve-reference`, the store chosen by them with
// the requested fault, and an http.Server with timeouts and graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/conflictcheck/conflictcheck/reference-server/api"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
	"github.com/conflictcheck/conflictcheck/reference-server/store"
)

// DefaultAddr is where the reference server listens unless told otherwise: loopback only.
const DefaultAddr = "127.0.0.1:8080"

// ShutdownTimeout bounds how long a graceful shutdown waits for requests in flight.
const ShutdownTimeout = 10 * time.Second

// Config is everything the reference server's flags set.
type Config struct {
	Addr        string
	Store       string // memory or postgres
	DatabaseURL string
	Fault       string
	RaceWindow  time.Duration
	// OnArrival, set by `conflictcheck bench` (it is no flag), stamps every request once its
	// body is read; see api.Options.OnArrival.
	OnArrival func(r *http.Request, at time.Time)
}

// BindFlags registers the reference server's flags on fs, writing into c.
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", DefaultAddr, "host:port to listen on")
	fs.StringVar(&c.Store, "store", "memory", "data store: memory or postgres")
	// The default is resolved at use, not shown: --help must never print a password.
	fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL URL for --store postgres (default $DATABASE_URL)")
	fs.StringVar(&c.Fault, "fault", "", "inject one defect: "+faultNames())
	fs.DurationVar(&c.RaceWindow, "race-window", fault.DefaultRaceWindow, "gap between check and act for the race, idempotency-race and per-replica-lock faults")
}

func faultNames() string {
	s := ""
	for i, f := range fault.All {
		if i > 0 {
			s += ", "
		}
		s += string(f.Name)
	}
	return s
}

// databaseURL is --database-url, or $DATABASE_URL when the flag is empty.
func (c Config) databaseURL() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return os.Getenv("DATABASE_URL")
}

// Validate checks the flags against each other and returns the chosen fault.
func (c Config) Validate() (fault.Fault, error) {
	f, err := fault.Parse(c.Fault)
	if err != nil {
		return fault.Fault{}, err
	}
	switch c.Store {
	case "memory":
		if f.Postgres {
			return fault.Fault{}, fmt.Errorf("fault %s needs --store postgres: it shows only when replicas share one database", f.Name)
		}
	case "postgres":
		if c.databaseURL() == "" {
			return fault.Fault{}, errors.New("--store postgres needs --database-url (or $DATABASE_URL)")
		}
	default:
		return fault.Fault{}, fmt.Errorf("unknown store %q (one of: memory, postgres)", c.Store)
	}
	if c.RaceWindow < 0 {
		return fault.Fault{}, fmt.Errorf("--race-window must not be negative, got %v", c.RaceWindow)
	}
	return f, nil
}

// StoreOptions are the store-level defects of fault f with the given window.
func StoreOptions(f fault.Name, window time.Duration) store.Options {
	o := store.Options{Window: window}
	switch f {
	case fault.Race:
		o.CheckThenAct = true
	case fault.PerReplicaLock:
		o.ReplicaLock = true
	case fault.IdempotencyRace:
		o.IdempotencyRace = true
	case fault.DeleteOrphan:
		o.SkipDependents = true
	}
	return o
}

// OpenStore opens the configured store with the fault's store-level defects.
func OpenStore(ctx context.Context, c Config, f fault.Fault) (store.Store, error) {
	opts := StoreOptions(f.Name, c.RaceWindow)
	var s store.Store
	if c.Store == "postgres" {
		pg, err := store.OpenPostgres(ctx, c.databaseURL(), opts)
		if err != nil {
			return nil, err
		}
		s = pg
	} else {
		s = store.NewMemory(opts)
	}
	if f.Name == fault.StaleRead {
		s = store.WithStaleReads(s, fault.StaleReadLag)
	}
	return s, nil
}

// Server is a running reference server.
type Server struct {
	// Addr is the address the server listens on, with the port resolved.
	Addr  string
	http  *http.Server
	store store.Store
	ln    net.Listener
	done  chan error
}

// Start validates c, opens the store, listens and serves in the background. A returned error
// is a configuration, database or listen problem: the server never started.
func Start(ctx context.Context, c Config, log *slog.Logger) (*Server, error) {
	f, err := c.Validate()
	if err != nil {
		return nil, err
	}
	st, err := OpenStore(ctx, c, f)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("listen on %s: %w", c.Addr, err)
	}
	s := &Server{Addr: ln.Addr().String(), store: st, ln: ln, done: make(chan error, 1)}
	s.http = NewHTTPServer(api.New(st, api.Options{Fault: f.Name, Logger: log, OnArrival: c.OnArrival}), log)
	go func() { s.done <- s.http.Serve(ln) }()
	log.Info("reference server listening", "addr", s.Addr, "store", c.Store, "fault", string(f.Name), "race_window", c.RaceWindow)
	return s, nil
}

// NewHTTPServer wraps h in an http.Server with the reference server's timeouts and limits. It
// speaks HTTP/1.1 and cleartext HTTP/2 with prior knowledge, so h2 collisions can be fired.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           h,
		Protocols:         &protocols,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Close shuts the server down gracefully within ShutdownTimeout and closes the store.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := s.http.Shutdown(ctx)
	s.store.Close()
	if err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// Done yields the error that stopped serving, if serving stops before Close.
func (s *Server) Done() <-chan error { return s.done }

// Run starts the server and serves until ctx is done (SIGINT or SIGTERM in the binaries), then
// shuts down gracefully.
func Run(ctx context.Context, c Config, log *slog.Logger) error {
	s, err := Start(ctx, c, log)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down", "addr", s.Addr)
		return s.Close()
	case err := <-s.done:
		s.store.Close()
		return fmt.Errorf("serve: %w", err)
	}
}

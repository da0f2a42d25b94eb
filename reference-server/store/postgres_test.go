package store_test

import (
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/conflictcheck/conflictcheck/internal/pgtest"
	"github.com/conflictcheck/conflictcheck/reference-server/store"
)

// TestMain stops the PostgreSQL server the tests share, if one started.
func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

// openPostgres opens a store on the database at url, closed when t ends.
func openPostgres(t *testing.T, url string, opts store.Options) *store.Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.OpenPostgres(ctx, url, opts)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// freshPostgres is the contract's opener: a store on a database of its own.
func freshPostgres(t *testing.T, opts store.Options) store.Store {
	return openPostgres(t, pgtest.Shared(t).CreateDB(t), opts)
}

// TestPostgresContract runs the store contract on PostgreSQL, each subtest on a fresh
// database. Like every PostgreSQL test, it skips when PostgreSQL is not installed (and fails
// under CI=true).
func TestPostgresContract(t *testing.T) {
	pgtest.Shared(t)
	runContract(t, freshPostgres)
}

// TestPostgresFaults shows that each injected defect really happens on PostgreSQL.
func TestPostgresFaults(t *testing.T) {
	pgtest.Shared(t)
	runFaults(t, freshPostgres)
}

// pgReplicas is one Store spread over n replicas (stores sharing one database, as server
// processes behind a load balancer): calls go to the replicas in turn, so the racers of a race
// alternate between them.
type pgReplicas struct {
	all  []store.Store
	next atomic.Uint64
}

// pgSpread opens n replicas with the given options on one fresh database.
func pgSpread(t *testing.T, n int, opts store.Options) *pgReplicas {
	t.Helper()
	url := pgtest.Shared(t).CreateDB(t)
	r := &pgReplicas{}
	for range n {
		r.all = append(r.all, openPostgres(t, url, opts))
	}
	return r
}

func (r *pgReplicas) pick() store.Store {
	return r.all[(r.next.Add(1)-1)%uint64(len(r.all))]
}

func (r *pgReplicas) CreateItem(ctx context.Context, in store.NewItem) (store.Item, error) {
	return r.pick().CreateItem(ctx, in)
}

func (r *pgReplicas) GetItem(ctx context.Context, id string) (store.Item, error) {
	return r.pick().GetItem(ctx, id)
}

func (r *pgReplicas) ListItems(ctx context.Context, f store.ItemFilter) ([]store.Item, error) {
	return r.pick().ListItems(ctx, f)
}

func (r *pgReplicas) UpdateItem(ctx context.Context, id string, pre store.Precondition, ch store.Change) (store.Item, error) {
	return r.pick().UpdateItem(ctx, id, pre, ch)
}

func (r *pgReplicas) DeleteItem(ctx context.Context, id string, pre store.Precondition) error {
	return r.pick().DeleteItem(ctx, id, pre)
}

func (r *pgReplicas) CreateOrder(ctx context.Context, in store.NewOrder) (store.Order, error) {
	return r.pick().CreateOrder(ctx, in)
}

func (r *pgReplicas) GetOrder(ctx context.Context, id string) (store.Order, error) {
	return r.pick().GetOrder(ctx, id)
}

func (r *pgReplicas) Transition(ctx context.Context, id string, to store.OrderStatus) (store.Order, error) {
	return r.pick().Transition(ctx, id, to)
}

func (r *pgReplicas) ClaimKey(ctx context.Context, key, fingerprint string) (store.KeyClaim, error) {
	return r.pick().ClaimKey(ctx, key, fingerprint)
}

func (r *pgReplicas) CompleteKey(ctx context.Context, key string, resp store.StoredResponse) error {
	return r.pick().CompleteKey(ctx, key, resp)
}

func (r *pgReplicas) ReleaseKey(ctx context.Context, key string) error {
	return r.pick().ReleaseKey(ctx, key)
}

// Close does nothing: each replica closes when its test ends.
func (r *pgReplicas) Close() {}

// TestPostgresReplicas runs the contract's races with the racers spread over replicas that
// share one database. A correct store keeps every guarantee across replicas, because they
// hold in the database. The per-replica-lock fault is correct with one replica and breaks
// with two, as a lock in one process does nothing to another.
func TestPostgresReplicas(t *testing.T) {
	pgtest.Shared(t)
	races := []struct {
		name string
		race func(*testing.T, store.Store, bool) bool
	}{
		{"duplicate create", raceDuplicateCreate},
		{"stale update", raceStaleUpdate},
		{"capacity", raceCapacity},
		{"transition", raceTransition},
		{"delete in use", raceDeleteInUse},
		{"idempotency key", raceKey},
	}
	replicaLock := store.Options{ReplicaLock: true, Window: 5 * time.Millisecond}
	correct := []struct {
		name     string
		opts     store.Options
		replicas int
		races    []string // nil: all
	}{
		{"correct store, two replicas", store.Options{}, 2, nil},
		{"correct store, three replicas", store.Options{}, 3, []string{"duplicate create", "stale update", "capacity", "transition"}},
		{"replica lock, one replica", replicaLock, 1, nil},
	}
	for _, tt := range correct {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range races {
				if tt.races == nil || slices.Contains(tt.races, r.name) {
					t.Run(r.name, func(t *testing.T) { r.race(t, pgSpread(t, tt.replicas, tt.opts), true) })
				}
			}
		})
	}

	// With two replicas, the first racer of each replica checks at about the same time; the
	// fault shows when both check within Window of each other. That is the rule, but a loaded
	// machine can deschedule a racer for longer than 5 ms, so a race that misses the window
	// runs again on a fresh database, up to three times.
	t.Run("replica lock, two replicas", func(t *testing.T) {
		for _, f := range races[:4] {
			t.Run(f.name, func(t *testing.T) {
				const attempts = 3
				for attempt := 1; attempt <= attempts; attempt++ {
					if f.race(t, pgSpread(t, 2, replicaLock), false) {
						return
					}
					t.Logf("attempt %d: the racers of the two replicas missed each other's window", attempt)
				}
				t.Fatalf("%s: no attempt of %d showed the fault; want the per-replica lock to let 2 or more racers win across two replicas", f.name, attempts)
			})
		}
	})
}

// TestOpenPostgresUnreachable shows that a database that is not there, or does not answer,
// gives a clear error within seconds instead of a hang. It needs no PostgreSQL.
func TestOpenPostgresUnreachable(t *testing.T) {
	t.Run("closed port", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		expectOpenFails(t, "postgres://postgres@"+addr+"/db?sslmode=disable", addr, 3*time.Second)
	})
	// A server that accepts connections and never answers: only a timeout ends the wait.
	silent := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { c.Close() })
			}
		}()
		return l.Addr().String()
	}
	t.Run("silent server, default timeout", func(t *testing.T) {
		t.Parallel()
		addr := silent(t)
		expectOpenFails(t, "postgres://postgres@"+addr+"/db?sslmode=disable", addr, 8*time.Second)
	})
	t.Run("silent server, connect_timeout=1", func(t *testing.T) {
		t.Parallel()
		addr := silent(t)
		expectOpenFails(t, "postgres://postgres@"+addr+"/db?sslmode=disable&connect_timeout=1", addr, 3*time.Second)
	})
}

func expectOpenFails(t *testing.T, url, addr string, within time.Duration) {
	t.Helper()
	start := time.Now()
	s, err := store.OpenPostgres(context.Background(), url, store.Options{})
	took := time.Since(start)
	if err == nil {
		s.Close()
		t.Fatalf("OpenPostgres(%s) succeeded", url)
	}
	t.Logf("OpenPostgres failed after %v: %v", took.Round(time.Millisecond), err)
	if took > within {
		t.Errorf("OpenPostgres took %v to fail; want under %v", took, within)
	}
	if msg := err.Error(); !strings.Contains(msg, "open postgres") || !strings.Contains(msg, addr) {
		t.Errorf("error %q does not say that opening postgres at %s failed", msg, addr)
	}
}

// TestPostgresConcurrentMigrations opens stores on a fresh database all at once, as replicas
// starting together do: every open succeeds and each migration is applied once.
func TestPostgresConcurrentMigrations(t *testing.T) {
	url := pgtest.Shared(t).CreateDB(t)
	ctx := context.Background()
	errs := collide(8, func(int) error {
		s, err := store.OpenPostgres(ctx, url, store.Options{})
		if err == nil {
			s.Close()
		}
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("OpenPostgres %d: %v", i, err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows, versions int
	if err := conn.QueryRow(ctx, "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	if rows != len(entries) || versions != len(entries) {
		t.Fatalf("schema_migrations has %d rows, %d versions; want each of the %d migrations once", rows, versions, len(entries))
	}
	s := openPostgres(t, url, store.Options{})
	if _, err := s.CreateItem(ctx, store.NewItem{SKU: "M-1", Name: "after migrations"}); err != nil {
		t.Fatalf("CreateItem after concurrent migrations: %v", err)
	}
}

// TestPostgresInvalidIDs shows that ids that are not canonical UUIDs name nothing, as in the
// memory store, instead of surfacing PostgreSQL's invalid uuid syntax error.
func TestPostgresInvalidIDs(t *testing.T) {
	ctx := context.Background()
	s := freshPostgres(t, store.Options{})
	it := mustItem(t, s, "ID-1", 1)
	for _, id := range []string{"nope", "", strings.ToUpper(it.ID), "{" + it.ID + "}"} {
		if _, err := s.GetItem(ctx, id); err != store.ErrNotFound {
			t.Errorf("GetItem(%q) err = %v; want ErrNotFound", id, err)
		}
		if _, err := s.UpdateItem(ctx, id, store.Precondition{Any: true}, store.Change{}); err != store.ErrNotFound {
			t.Errorf("UpdateItem(%q) err = %v; want ErrNotFound", id, err)
		}
		if err := s.DeleteItem(ctx, id, store.Unconditional); err != store.ErrNotFound {
			t.Errorf("DeleteItem(%q) err = %v; want ErrNotFound", id, err)
		}
		if _, err := s.CreateOrder(ctx, store.NewOrder{ItemID: id, Quantity: 1}); !isA[*store.UnknownItemError](err) {
			t.Errorf("CreateOrder(%q) err = %v; want UnknownItemError", id, err)
		}
		if _, err := s.GetOrder(ctx, id); err != store.ErrNotFound {
			t.Errorf("GetOrder(%q) err = %v; want ErrNotFound", id, err)
		}
		if _, err := s.Transition(ctx, id, store.OrderShipped); err != store.ErrNotFound {
			t.Errorf("Transition(%q) err = %v; want ErrNotFound", id, err)
		}
	}
	if list, err := s.ListItems(ctx, store.ItemFilter{SKU: "none"}); err != nil || list == nil || len(list) != 0 {
		t.Errorf("ListItems(no match) = %#v, %v; want an empty, non-nil list", list, err)
	}
}

// TestPostgresCanceledContext shows that a canceled context gives a wrapped error, not a
// hang or a panic.
func TestPostgresCanceledContext(t *testing.T) {
	s := freshPostgres(t, store.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.CreateItem(ctx, store.NewItem{SKU: "C-1", Name: "c"})
	if err == nil || !strings.Contains(err.Error(), "create item") {
		t.Fatalf("CreateItem with a canceled context err = %v; want a wrapped error", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateItem with a canceled context err = %v; want it to wrap context.Canceled", err)
	}
}

// TestPostgresExpiredLease shows that an in-flight key whose lease expired (a crashed
// request) is taken over by exactly one of the requests racing for it.
func TestPostgresExpiredLease(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).CreateDB(t)
	r := &pgReplicas{all: []store.Store{openPostgres(t, url, store.Options{}), openPostgres(t, url, store.Options{})}}
	if _, err := r.ClaimKey(ctx, "lease", "fp"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "UPDATE idempotency_keys SET lease_until = now() - interval '1 second' WHERE key = 'lease'"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ClaimKey(ctx, "lease", "other"); err != store.ErrKeyReused {
		t.Fatalf("ClaimKey(expired, other payload) err = %v; want ErrKeyReused", err)
	}
	errs := collide(racers, func(int) error {
		_, err := r.ClaimKey(ctx, "lease", "fp")
		return err
	})
	won := winners(t, errs, func(err error) bool { return err == store.ErrKeyInFlight })
	oneWinner(t, true, won, "expired lease take-over")
}

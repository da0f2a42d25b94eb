package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is a Store on PostgreSQL. A correct Postgres (zero Options) makes every conditional
// write atomic in the database itself, with conditional statements, row locks and unique
// indexes, never with a lock in this process: any number of server processes (replicas) may
// share one database and every guarantee holds across them.
//
// Under the racy Options each conditional write becomes what memory.go's guarded does when
// racy: a plain SELECT (the check), a gap of Window, and an unconditional write computed from
// what the SELECT saw (the act). With ReplicaLock the whole check-then-act also holds a mutex
// of this value, which stands for a lock local to one replica: correct alone, broken as soon
// as two replicas share the database.
type Postgres struct {
	pool *pgxpool.Pool
	opts Options
	// replica is the per-replica lock of the ReplicaLock fault: it serialises this value's
	// check-then-acts and nobody else's.
	replica sync.Mutex
}

var _ Store = (*Postgres)(nil)

const (
	// connectTimeout bounds each connection attempt unless the URL sets connect_timeout, so
	// that an unreachable database gives an error instead of hanging.
	connectTimeout = 5 * time.Second
	// maxConns is the pool size unless the URL sets pool_max_conns. Far fewer connections
	// than concurrent requests is fine: requests queue for a connection.
	maxConns = 32
	// migrationLock is the pg_advisory_xact_lock key that serialises migrations of one
	// database, so that servers starting together apply each migration once.
	migrationLock = int64(0x636f6e666c696374) // "conflict"
	// maxAttempts bounds the retries of an operation whose atomic write failed and whose
	// follow-up read found the write would now succeed (another writer moved in between).
	maxAttempts = 100
)

//go:embed migrations/*.sql
var migrations embed.FS

// OpenPostgres connects to the database at url (a postgres:// URL or a key=value DSN, as
// pgx accepts), checks that it answers and applies the pending migrations. Each connection
// attempt gives up after 5 s unless the URL's connect_timeout says otherwise, and the pool
// holds up to 32 connections unless pool_max_conns says otherwise.
func OpenPostgres(ctx context.Context, url string, opts Options) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = maxConns
	}
	target := fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", target, err)
	}
	// The connect timeout bounds connecting; this bounds a server that accepts and then
	// never answers the query.
	pingCtx, cancel := context.WithTimeout(ctx, 2*cfg.ConnConfig.ConnectTimeout)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s: %w", target, err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s: %w", target, err)
	}
	return &Postgres{pool: pool, opts: opts}, nil
}

// migrate applies the embedded migrations in name order, each once and in its own
// transaction. The transaction-scoped advisory lock serialises concurrent migrators of the
// database (schema_migrations creation included); a migrator that waited finds the migration
// recorded and skips it.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		version := strings.TrimSuffix(path.Base(name), ".sql")
		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version    text PRIMARY KEY,
				applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
				return err
			}
			var applied bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", version).Scan(&applied); err != nil {
				return err
			}
			if applied {
				return nil
			}
			// Without arguments Exec uses the simple protocol: the file may hold many statements.
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", version)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", version, err)
		}
	}
	return nil
}

// Close implements Store: it closes the connection pool.
func (p *Postgres) Close() { p.pool.Close() }

// checkThenAct is memory.go's guarded when racy: the check, a gap of Window, and the act,
// relying on what the check saw. With ReplicaLock both run under this replica's lock.
func (p *Postgres) checkThenAct(check, act func() error) error {
	if p.opts.ReplicaLock {
		p.replica.Lock()
		defer p.replica.Unlock()
	}
	if err := check(); err != nil {
		return err
	}
	Spin(p.opts.Window)
	return act()
}

// errRetry makes an operation run its transaction again.
var errRetry = errors.New("retry")

// inTx runs fn in a transaction and commits it. fn's errors come back as they are, so that
// store errors stay unwrapped; fn wraps its database errors itself.
func (p *Postgres) inTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", op, err)
	}
	// After Commit this is a no-op; after an error the error that matters is fn's.
	defer func() { _ = tx.Rollback(ctx) }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s: commit: %w", op, err)
	}
	return nil
}

// querier is what the pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// validID reports whether id can name a row: a UUID in the canonical form the store hands
// out. Anything else names nothing, as in the memory store (and never reaches PostgreSQL,
// which would reject it as invalid uuid syntax).
func validID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.String() == id
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

const itemColumns = "id::text, sku, name, price, stock, version"

func scanItem(row pgx.Row) (Item, error) {
	var it Item
	err := row.Scan(&it.ID, &it.SKU, &it.Name, &it.Price, &it.Stock, &it.Version)
	return it, err
}

// getItem reads an item: ErrNotFound, or a database error wrapped with op.
func getItem(ctx context.Context, q querier, op, id string) (Item, error) {
	if !validID(id) {
		return Item{}, ErrNotFound
	}
	it, err := scanItem(q.QueryRow(ctx, "SELECT "+itemColumns+" FROM items WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Item{}, ErrNotFound
	}
	if err != nil {
		return Item{}, fmt.Errorf("%s: read item %s: %w", op, id, err)
	}
	return it, nil
}

// skuOwner returns the oldest item holding sku, if any.
func skuOwner(ctx context.Context, q querier, op, sku string) (id string, found bool, err error) {
	err = q.QueryRow(ctx, "SELECT id::text FROM items WHERE sku = $1 ORDER BY seq LIMIT 1", sku).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%s: look up sku %q: %w", op, sku, err)
	}
	return id, true, nil
}

func insertItem(ctx context.Context, q querier, it Item, unchecked bool) error {
	_, err := q.Exec(ctx, `INSERT INTO items (id, sku, name, price, stock, version, unchecked)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, it.ID, it.SKU, it.Name, it.Price, it.Stock, it.Version, unchecked)
	return err
}

// CreateItem implements Store. The unique index on sku decides atomically which of
// concurrent creators wins; the losers get a *SKUTakenError naming the winner.
func (p *Postgres) CreateItem(ctx context.Context, in NewItem) (Item, error) {
	const op = "create item"
	it := Item{ID: uuid.NewString(), SKU: in.SKU, Name: in.Name, Price: in.Price, Stock: in.Stock, Version: 1}
	if p.opts.racy() {
		err := p.checkThenAct(func() error {
			id, found, err := skuOwner(ctx, p.pool, op, in.SKU)
			if err == nil && found {
				err = &SKUTakenError{SKU: in.SKU, ExistingID: id}
			}
			return err
		}, func() error {
			// unchecked: the unique index must not catch the duplicate this fault injects.
			if err := insertItem(ctx, p.pool, it, true); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			return nil
		})
		if err != nil {
			return Item{}, err
		}
		return it, nil
	}
	for range maxAttempts {
		err := insertItem(ctx, p.pool, it, false)
		if err == nil {
			return it, nil
		}
		if !isUniqueViolation(err) {
			return Item{}, fmt.Errorf("%s: %w", op, err)
		}
		id, found, err := skuOwner(ctx, p.pool, op, in.SKU)
		if err != nil {
			return Item{}, err
		}
		if found {
			return Item{}, &SKUTakenError{SKU: in.SKU, ExistingID: id}
		}
		// The owner was deleted between the insert and the look-up: insert again.
	}
	return Item{}, fmt.Errorf("%s: sku %q: gave up after %d attempts under contention", op, in.SKU, maxAttempts)
}

// GetItem implements Store.
func (p *Postgres) GetItem(ctx context.Context, id string) (Item, error) {
	return getItem(ctx, p.pool, "get item", id)
}

// ListItems implements Store.
func (p *Postgres) ListItems(ctx context.Context, f ItemFilter) ([]Item, error) {
	const op = "list items"
	var limit *int64 // NULL: no limit
	if f.Limit > 0 {
		l := int64(f.Limit)
		limit = &l
	}
	rows, err := p.pool.Query(ctx, "SELECT "+itemColumns+" FROM items WHERE ($1 = '' OR sku = $1) ORDER BY seq LIMIT $2", f.SKU, limit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer rows.Close()
	out := []Item{} // like the memory store: an empty list, not nil
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

// UpdateItem implements Store. One UPDATE checks the precondition and writes, so concurrent
// updates with the same precondition have one winner.
func (p *Postgres) UpdateItem(ctx context.Context, id string, pre Precondition, ch Change) (Item, error) {
	const op = "update item"
	if !validID(id) {
		return Item{}, ErrNotFound
	}
	if p.opts.racy() {
		var next Item
		err := p.checkThenAct(func() error {
			cur, err := getItem(ctx, p.pool, op, id)
			if err != nil {
				return err
			}
			if !pre.Matches(cur.Version) {
				return &VersionMismatchError{Current: cur}
			}
			next = apply(cur, ch)
			return nil
		}, func() error {
			// Racy: overwrites whatever happened since the check.
			_, err := p.pool.Exec(ctx, "UPDATE items SET name = $2, price = $3, stock = $4, version = $5 WHERE id = $1",
				id, next.Name, next.Price, next.Stock, next.Version)
			if err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			return nil
		})
		if err != nil {
			return Item{}, err
		}
		return next, nil
	}
	for range maxAttempts {
		it, err := scanItem(p.pool.QueryRow(ctx, `UPDATE items SET
				name = COALESCE($2::text, name),
				price = COALESCE($3::bigint, price),
				stock = COALESCE($4::bigint, stock),
				version = version + 1
			WHERE id = $1 AND ($5::boolean OR version = ANY($6::bigint[]))
			RETURNING `+itemColumns,
			id, ch.Name, ch.Price, ch.Stock, pre.Any, pre.Versions))
		if err == nil {
			return it, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return Item{}, fmt.Errorf("%s: %w", op, err)
		}
		cur, err := getItem(ctx, p.pool, op, id)
		if err != nil {
			return Item{}, err
		}
		if !pre.Matches(cur.Version) {
			return Item{}, &VersionMismatchError{Current: cur}
		}
		// The item reached a matching version after the UPDATE looked: try again.
	}
	return Item{}, fmt.Errorf("%s %s: gave up after %d attempts under contention", op, id, maxAttempts)
}

// placedOrders returns the sorted ids of the item's placed orders.
func placedOrders(ctx context.Context, q querier, op, itemID string) ([]string, error) {
	rows, err := q.Query(ctx, "SELECT id::text FROM orders WHERE item_id = $1 AND status = 'placed'", itemID)
	if err != nil {
		return nil, fmt.Errorf("%s: placed orders: %w", op, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("%s: placed orders: %w", op, err)
	}
	sort.Strings(ids)
	return ids, nil
}

// DeleteItem implements Store. The item's row lock serialises the delete against orders
// being placed on it (CreateOrder updates the row first), so the placed orders it sees are
// all there are.
func (p *Postgres) DeleteItem(ctx context.Context, id string, pre Precondition) error {
	const op = "delete item"
	if !validID(id) {
		return ErrNotFound
	}
	check := func(q querier, lock string) error {
		cur, err := scanItem(q.QueryRow(ctx, "SELECT "+itemColumns+" FROM items WHERE id = $1"+lock, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if !pre.Matches(cur.Version) {
			return &VersionMismatchError{Current: cur}
		}
		if p.opts.SkipDependents {
			return nil
		}
		ids, err := placedOrders(ctx, q, op, id)
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			return &InUseError{ItemID: id, Orders: ids}
		}
		return nil
	}
	del := func(q querier) error {
		if _, err := q.Exec(ctx, "DELETE FROM items WHERE id = $1", id); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		return nil
	}
	if p.opts.racy() {
		// Racy: deletes without checking again.
		return p.checkThenAct(func() error { return check(p.pool, "") }, func() error { return del(p.pool) })
	}
	return p.inTx(ctx, op, func(tx pgx.Tx) error {
		if err := check(tx, " FOR UPDATE"); err != nil {
			return err
		}
		return del(tx)
	})
}

func insertOrder(ctx context.Context, q querier, op string, o Order) error {
	_, err := q.Exec(ctx, "INSERT INTO orders (id, item_id, quantity, status) VALUES ($1, $2, $3, $4)",
		o.ID, o.ItemID, o.Quantity, string(o.Status))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// CreateOrder implements Store. One UPDATE checks the stock and takes the quantity, so
// concurrent orders never take more than the stock.
func (p *Postgres) CreateOrder(ctx context.Context, in NewOrder) (Order, error) {
	const op = "create order"
	o := Order{ID: uuid.NewString(), ItemID: in.ItemID, Quantity: in.Quantity, Status: OrderPlaced}
	if !validID(in.ItemID) {
		return Order{}, &UnknownItemError{ItemID: in.ItemID}
	}
	if p.opts.racy() {
		var seen Item
		err := p.checkThenAct(func() error {
			it, err := getItem(ctx, p.pool, op, in.ItemID)
			if errors.Is(err, ErrNotFound) {
				return &UnknownItemError{ItemID: in.ItemID}
			}
			if err != nil {
				return err
			}
			if it.Stock < in.Quantity {
				return &InsufficientStockError{ItemID: in.ItemID, Available: it.Stock, Requested: in.Quantity}
			}
			seen = it
			return nil
		}, func() error {
			return p.inTx(ctx, op, func(tx pgx.Tx) error {
				// Racy: written back from what the check saw; the order goes in even if the
				// item vanished since.
				if _, err := tx.Exec(ctx, "UPDATE items SET stock = $2, version = $3 WHERE id = $1",
					in.ItemID, seen.Stock-in.Quantity, seen.Version+1); err != nil {
					return fmt.Errorf("%s: %w", op, err)
				}
				return insertOrder(ctx, tx, op, o)
			})
		})
		if err != nil {
			return Order{}, err
		}
		return o, nil
	}
	for range maxAttempts {
		err := p.inTx(ctx, op, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, "UPDATE items SET stock = stock - $2, version = version + 1 WHERE id = $1 AND stock >= $2",
				in.ItemID, in.Quantity)
			if err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			if tag.RowsAffected() == 0 {
				var stock int64
				err := tx.QueryRow(ctx, "SELECT stock FROM items WHERE id = $1", in.ItemID).Scan(&stock)
				switch {
				case errors.Is(err, pgx.ErrNoRows):
					return &UnknownItemError{ItemID: in.ItemID}
				case err != nil:
					return fmt.Errorf("%s: %w", op, err)
				case stock < in.Quantity:
					return &InsufficientStockError{ItemID: in.ItemID, Available: stock, Requested: in.Quantity}
				default:
					return errRetry // stock came back (a cancel) after the UPDATE looked
				}
			}
			return insertOrder(ctx, tx, op, o)
		})
		if errors.Is(err, errRetry) {
			continue
		}
		if err != nil {
			return Order{}, err
		}
		return o, nil
	}
	return Order{}, fmt.Errorf("%s: item %s: gave up after %d attempts under contention", op, in.ItemID, maxAttempts)
}

const orderColumns = "id::text, item_id::text, quantity, status"

func scanOrder(row pgx.Row) (Order, error) {
	var o Order
	var status string
	err := row.Scan(&o.ID, &o.ItemID, &o.Quantity, &status)
	o.Status = OrderStatus(status)
	return o, err
}

func getOrder(ctx context.Context, q querier, op, id string) (Order, error) {
	if !validID(id) {
		return Order{}, ErrNotFound
	}
	o, err := scanOrder(q.QueryRow(ctx, "SELECT "+orderColumns+" FROM orders WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Order{}, ErrNotFound
	}
	if err != nil {
		return Order{}, fmt.Errorf("%s: read order %s: %w", op, id, err)
	}
	return o, nil
}

// GetOrder implements Store.
func (p *Postgres) GetOrder(ctx context.Context, id string) (Order, error) {
	return getOrder(ctx, p.pool, "get order", id)
}

// returnStock gives a cancelled order's quantity back to its item, if the item still exists.
func returnStock(ctx context.Context, q querier, op string, o Order) error {
	if _, err := q.Exec(ctx, "UPDATE items SET stock = stock + $2, version = version + 1 WHERE id = $1",
		o.ItemID, o.Quantity); err != nil {
		return fmt.Errorf("%s: return stock: %w", op, err)
	}
	return nil
}

// Transition implements Store. One UPDATE checks that the order is placed and moves it, so
// concurrent transitions of an order have one winner.
func (p *Postgres) Transition(ctx context.Context, id string, to OrderStatus) (Order, error) {
	const op = "transition order"
	if !validID(id) {
		return Order{}, ErrNotFound
	}
	if p.opts.racy() {
		var next Order
		err := p.checkThenAct(func() error {
			o, err := getOrder(ctx, p.pool, op, id)
			if err != nil {
				return err
			}
			if o.Status != OrderPlaced {
				return &TransitionError{OrderID: id, Current: o.Status, To: to}
			}
			next = o
			next.Status = to
			return nil
		}, func() error {
			return p.inTx(ctx, op, func(tx pgx.Tx) error {
				// Racy: sets the status whatever it became since the check.
				if _, err := tx.Exec(ctx, "UPDATE orders SET status = $2 WHERE id = $1", id, string(to)); err != nil {
					return fmt.Errorf("%s: %w", op, err)
				}
				if to == OrderCancelled {
					return returnStock(ctx, tx, op, next)
				}
				return nil
			})
		})
		if err != nil {
			return Order{}, err
		}
		return next, nil
	}
	var next Order
	err := p.inTx(ctx, op, func(tx pgx.Tx) error {
		var err error
		next, err = scanOrder(tx.QueryRow(ctx, "UPDATE orders SET status = $2 WHERE id = $1 AND status = 'placed' RETURNING "+orderColumns,
			id, string(to)))
		if errors.Is(err, pgx.ErrNoRows) {
			cur, err := getOrder(ctx, tx, op, id)
			if err != nil {
				return err
			}
			return &TransitionError{OrderID: id, Current: cur.Status, To: to}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if to == OrderCancelled {
			return returnStock(ctx, tx, op, next)
		}
		return nil
	})
	if err != nil {
		return Order{}, err
	}
	return next, nil
}

// keyRow is an idempotency key as ClaimKey sees it.
type keyRow struct {
	fingerprint string
	inFlight    bool
	live        bool // the lease has not expired (by the database's clock)
	resp        StoredResponse
}

func readKey(ctx context.Context, q querier, op, key string) (k keyRow, found bool, err error) {
	err = q.QueryRow(ctx, `SELECT fingerprint, in_flight, lease_until > now(), status, location, body
		FROM idempotency_keys WHERE key = $1`, key).
		Scan(&k.fingerprint, &k.inFlight, &k.live, &k.resp.Status, &k.resp.Location, &k.resp.Body)
	if errors.Is(err, pgx.ErrNoRows) {
		return keyRow{}, false, nil
	}
	if err != nil {
		return keyRow{}, false, fmt.Errorf("%s: %w", op, err)
	}
	return k, true, nil
}

// judge decides a claim on an existing key: an error, a replay, or take (its lease expired).
func (k keyRow) judge(fingerprint string) (claim KeyClaim, take bool, err error) {
	switch {
	case k.fingerprint != fingerprint:
		return KeyClaim{}, false, ErrKeyReused
	case k.inFlight && k.live:
		return KeyClaim{}, false, ErrKeyInFlight
	case !k.inFlight:
		resp := k.resp
		return KeyClaim{Replay: &resp}, false, nil
	}
	return KeyClaim{}, true, nil
}

// leaseMicros is DefaultKeyLease for SQL: now() + $n * interval '1 microsecond'.
const leaseMicros = int64(DefaultKeyLease / time.Microsecond)

// ClaimKey implements Store. The claim is an INSERT … ON CONFLICT DO NOTHING committed at
// once, so exactly one of concurrent claimers inserts and the others see it in flight; an
// expired lease is taken over by a conditional UPDATE that only one taker wins.
func (p *Postgres) ClaimKey(ctx context.Context, key, fingerprint string) (KeyClaim, error) {
	const op = "claim idempotency key"
	if p.opts.IdempotencyRace {
		var claim KeyClaim
		err := p.checkThenAct(func() error {
			k, found, err := readKey(ctx, p.pool, op, key)
			if err != nil || !found {
				return err
			}
			claim, _, err = k.judge(fingerprint)
			return err
		}, func() error {
			if claim.Replay != nil {
				return nil
			}
			// Racy: records the claim whatever happened since the check.
			_, err := p.pool.Exec(ctx, `INSERT INTO idempotency_keys (key, fingerprint, in_flight, lease_until)
				VALUES ($1, $2, true, now() + $3::bigint * interval '1 microsecond')
				ON CONFLICT (key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, in_flight = true,
					lease_until = EXCLUDED.lease_until, status = 0, location = '', body = NULL`,
				key, fingerprint, leaseMicros)
			if err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			return nil
		})
		if err != nil {
			return KeyClaim{}, err
		}
		return claim, nil
	}
	for range maxAttempts {
		tag, err := p.pool.Exec(ctx, `INSERT INTO idempotency_keys (key, fingerprint, in_flight, lease_until)
			VALUES ($1, $2, true, now() + $3::bigint * interval '1 microsecond')
			ON CONFLICT (key) DO NOTHING`, key, fingerprint, leaseMicros)
		if err != nil {
			return KeyClaim{}, fmt.Errorf("%s: %w", op, err)
		}
		if tag.RowsAffected() == 1 {
			return KeyClaim{}, nil
		}
		k, found, err := readKey(ctx, p.pool, op, key)
		if err != nil {
			return KeyClaim{}, err
		}
		if !found {
			continue // released since the insert: claim again
		}
		claim, take, err := k.judge(fingerprint)
		if err != nil || !take {
			return claim, err
		}
		tag, err = p.pool.Exec(ctx, `UPDATE idempotency_keys
			SET lease_until = now() + $3::bigint * interval '1 microsecond'
			WHERE key = $1 AND fingerprint = $2 AND in_flight AND lease_until <= now()`,
			key, fingerprint, leaseMicros)
		if err != nil {
			return KeyClaim{}, fmt.Errorf("%s: %w", op, err)
		}
		if tag.RowsAffected() == 1 {
			return KeyClaim{}, nil
		}
		// Another request took the key over, completed or released it: look again.
	}
	return KeyClaim{}, fmt.Errorf("%s %q: gave up after %d attempts under contention", op, key, maxAttempts)
}

// CompleteKey implements Store.
func (p *Postgres) CompleteKey(ctx context.Context, key string, resp StoredResponse) error {
	tag, err := p.pool.Exec(ctx, `UPDATE idempotency_keys SET in_flight = false, status = $2, location = $3, body = $4
		WHERE key = $1`, key, resp.Status, resp.Location, resp.Body)
	if err != nil {
		return fmt.Errorf("complete idempotency key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// ReleaseKey implements Store.
func (p *Postgres) ReleaseKey(ctx context.Context, key string) error {
	if _, err := p.pool.Exec(ctx, "DELETE FROM idempotency_keys WHERE key = $1", key); err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// Package store holds the reference server's data: items, orders and idempotency keys, behind one
// Store interface implemented in memory and on PostgreSQL.
//
// Every conditional write is atomic in a correct store. Options can replace that atomicity with
// the check-then-act defects that conflictcheck must catch; they exist for fault injection only.
package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"
)

// OrderStatus is the state of an order in its life cycle: placed, then cancelled or shipped.
type OrderStatus string

// The states of an order. Only a placed order can be cancelled or shipped.
const (
	OrderPlaced    OrderStatus = "placed"
	OrderCancelled OrderStatus = "cancelled"
	OrderShipped   OrderStatus = "shipped"
)

// Item is a product in the inventory. Version grows by one on every successful write to the
// item, stock changes by orders included, so it is both the PATCH version and the ETag.
type Item struct {
	ID      string `json:"id"`
	SKU     string `json:"sku"`
	Name    string `json:"name"`
	Price   int64  `json:"price"`
	Stock   int64  `json:"stock"`
	Version int64  `json:"version"`
}

// NewItem is what a client sends to create an item.
type NewItem struct {
	SKU   string
	Name  string
	Price int64
	Stock int64
}

// Change lists the fields an update sets; nil fields are left as they are.
type Change struct {
	Name  *string
	Price *int64
	Stock *int64
}

// Precondition says which current versions allow an update: Any (If-Match: *), or one of
// Versions. The zero value matches nothing.
type Precondition struct {
	Any      bool
	Versions []int64
}

// Matches reports whether an item at version v satisfies the precondition.
func (p Precondition) Matches(v int64) bool {
	if p.Any {
		return true
	}
	for _, w := range p.Versions {
		if w == v {
			return true
		}
	}
	return false
}

// Unconditional is the precondition every existing item satisfies (If-Match: *, or none).
var Unconditional = Precondition{Any: true}

// IfVersion is the precondition that the item is at version v.
func IfVersion(v int64) Precondition { return Precondition{Versions: []int64{v}} }

// Order reserves Quantity units of an item's stock.
type Order struct {
	ID       string      `json:"id"`
	ItemID   string      `json:"itemId"`
	Quantity int64       `json:"quantity"`
	Status   OrderStatus `json:"status"`
}

// NewOrder is what a client sends to place an order.
type NewOrder struct {
	ItemID   string
	Quantity int64
}

// ItemFilter narrows ListItems. An empty SKU lists every item, oldest first, up to Limit.
type ItemFilter struct {
	SKU   string
	Limit int
}

// StoredResponse is the response recorded for a completed idempotent request, replayed as is.
type StoredResponse struct {
	Status   int    `json:"status"`
	Location string `json:"location,omitempty"`
	Body     []byte `json:"body"`
}

// KeyClaim is the outcome of claiming an idempotency key: either the caller now owns the key
// (Replay is nil) and must Complete or Release it, or the key already completed and Replay
// holds the original response.
type KeyClaim struct {
	Replay *StoredResponse
}

// DefaultKeyLease is how long a claimed idempotency key stays in flight before another request
// may take it over, so a crashed request cannot block its key forever.
const DefaultKeyLease = time.Minute

// Store is the reference server's persistence. Implementations are safe for concurrent use and,
// unless Options say otherwise, make every conditional write atomic.
type Store interface {
	// CreateItem inserts an item; a SKU already in use gives a *SKUTakenError.
	CreateItem(ctx context.Context, in NewItem) (Item, error)
	// GetItem returns the item or ErrNotFound.
	GetItem(ctx context.Context, id string) (Item, error)
	// ListItems returns the items matching the filter, oldest first.
	ListItems(ctx context.Context, f ItemFilter) ([]Item, error)
	// UpdateItem applies ch when the item's version satisfies pre, and bumps the version;
	// otherwise it gives a *VersionMismatchError holding the current item, or ErrNotFound.
	UpdateItem(ctx context.Context, id string, pre Precondition, ch Change) (Item, error)
	// DeleteItem removes the item when its version satisfies pre (else *VersionMismatchError)
	// and no placed order references it (else *InUseError).
	DeleteItem(ctx context.Context, id string, pre Precondition) error

	// CreateOrder takes the quantity from the item's stock and records a placed order. It gives
	// ErrNotFound-wrapping *UnknownItemError for a missing item and *InsufficientStockError
	// when the stock is short.
	CreateOrder(ctx context.Context, in NewOrder) (Order, error)
	// GetOrder returns the order or ErrNotFound.
	GetOrder(ctx context.Context, id string) (Order, error)
	// Transition moves a placed order to the given state, returning the stock on cancel; from
	// any other state it gives a *TransitionError.
	Transition(ctx context.Context, id string, to OrderStatus) (Order, error)

	// ClaimKey claims an idempotency key for a request with the given fingerprint. A key in
	// flight gives ErrKeyInFlight; a key used with another fingerprint gives ErrKeyReused.
	ClaimKey(ctx context.Context, key, fingerprint string) (KeyClaim, error)
	// CompleteKey records the response of a claimed key for replay.
	CompleteKey(ctx context.Context, key string, resp StoredResponse) error
	// ReleaseKey forgets a claimed key whose request was not executed (invalid input).
	ReleaseKey(ctx context.Context, key string) error

	// Close releases the store's resources.
	Close()
}

// ErrNotFound is returned when the item or order does not exist.
var ErrNotFound = errors.New("not found")

// ErrKeyInFlight is returned when an idempotency key's first request has not completed.
var ErrKeyInFlight = errors.New("idempotency key in flight")

// ErrKeyReused is returned when an idempotency key comes back with another payload.
var ErrKeyReused = errors.New("idempotency key reused with another payload")

// SKUTakenError says that the SKU already names another item.
type SKUTakenError struct {
	SKU        string
	ExistingID string
}

func (e *SKUTakenError) Error() string {
	return fmt.Sprintf("sku %q is taken by item %s", e.SKU, e.ExistingID)
}

// VersionMismatchError says that an update's precondition failed; Current is the item as it is.
type VersionMismatchError struct {
	Current Item
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("item %s is at version %d", e.Current.ID, e.Current.Version)
}

// InUseError says that placed orders still reference the item.
type InUseError struct {
	ItemID string
	Orders []string
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("item %s is referenced by %d placed orders", e.ItemID, len(e.Orders))
}

// UnknownItemError says that an order names an item that does not exist.
type UnknownItemError struct {
	ItemID string
}

func (e *UnknownItemError) Error() string { return fmt.Sprintf("item %s does not exist", e.ItemID) }

// Unwrap makes an unknown item an ErrNotFound.
func (e *UnknownItemError) Unwrap() error { return ErrNotFound }

// InsufficientStockError says that the item has fewer units than the order asked for.
type InsufficientStockError struct {
	ItemID    string
	Available int64
	Requested int64
}

func (e *InsufficientStockError) Error() string {
	return fmt.Sprintf("item %s has %d in stock, %d requested", e.ItemID, e.Available, e.Requested)
}

// TransitionError says that the order is not in a state the transition starts from.
type TransitionError struct {
	OrderID string
	Current OrderStatus
	To      OrderStatus
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("order %s is %s and cannot become %s", e.OrderID, e.Current, e.To)
}

// Options turn a correct store into a defective one, for fault injection. The zero value is
// the correct store.
type Options struct {
	// CheckThenAct replaces every atomic conditional write with a read, a gap of Window, and an
	// unconditional write: the classic race.
	CheckThenAct bool
	// ReplicaLock guards each check-then-act with a lock local to this process. One replica is
	// then correct; replicas sharing a database are not. Implies CheckThenAct.
	ReplicaLock bool
	// IdempotencyRace checks and records idempotency keys in two steps, Window apart.
	IdempotencyRace bool
	// SkipDependents deletes items without looking for placed orders that reference them.
	SkipDependents bool
	// Window is the gap between check and act; see Spin.
	Window time.Duration
}

// racy reports whether conditional writes run as check-then-act.
func (o Options) racy() bool { return o.CheckThenAct || o.ReplicaLock }

// Spin waits at least d, and exactly d when nothing else is runnable. time.Sleep oversleeps by tens of microseconds, far more than the
// windows conflictcheck must hit, so short waits loop on the monotonic clock. The loop yields
// the processor on every turn, as the I/O of a real check-then-act gap would: a bare busy
// loop holds its core, so on a small machine the other racers' handlers could not even reach
// their check until the gap had closed, and the fault would hide from a perfect collision.
func Spin(d time.Duration) {
	if d <= 0 {
		return
	}
	start := time.Now()
	const sleepable = 2 * time.Millisecond
	if d > sleepable {
		time.Sleep(d - sleepable)
	}
	for time.Since(start) < d {
		runtime.Gosched()
	}
}

package store

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Memory is a Store held in process memory under one lock. It is the default store: fast, and
// obviously correct, which makes it the baseline the faults are measured against.
type Memory struct {
	opts Options
	// replica stands for a lock that only this process sees (the per-replica-lock fault).
	replica sync.Mutex

	mu     sync.Mutex
	seq    int64
	items  map[string]*memItem
	skus   map[string][]string            // sku → item ids (more than one only under a fault)
	orders map[string]*Order              // order id → order
	placed map[string]map[string]struct{} // item id → ids of its placed orders
	keys   map[string]*memKey
}

type memItem struct {
	Item
	seq int64 // creation order, for listing
}

type memKey struct {
	fingerprint string
	inFlight    bool
	leaseUntil  time.Time
	resp        StoredResponse
}

// NewMemory returns an empty memory store with the given options.
func NewMemory(opts Options) *Memory {
	return &Memory{
		opts:   opts,
		items:  map[string]*memItem{},
		skus:   map[string][]string{},
		orders: map[string]*Order{},
		placed: map[string]map[string]struct{}{},
		keys:   map[string]*memKey{},
	}
}

// guarded runs check then act under the store lock: in one critical section when the store is
// correct, or, when racy, in two critical sections Window apart, so that act relies on what
// check saw and concurrent writers slip in between.
func (m *Memory) guarded(racy bool, check func() error, act func()) error {
	if !racy {
		m.mu.Lock()
		defer m.mu.Unlock()
		if err := check(); err != nil {
			return err
		}
		act()
		return nil
	}
	if m.opts.ReplicaLock {
		m.replica.Lock()
		defer m.replica.Unlock()
	}
	m.mu.Lock()
	err := check()
	m.mu.Unlock()
	if err != nil {
		return err
	}
	Spin(m.opts.Window)
	m.mu.Lock()
	defer m.mu.Unlock()
	act()
	return nil
}

// CreateItem implements Store.
func (m *Memory) CreateItem(_ context.Context, in NewItem) (Item, error) {
	it := Item{ID: uuid.NewString(), SKU: in.SKU, Name: in.Name, Price: in.Price, Stock: in.Stock, Version: 1}
	err := m.guarded(m.opts.racy(), func() error {
		if ids := m.skus[in.SKU]; len(ids) > 0 {
			return &SKUTakenError{SKU: in.SKU, ExistingID: ids[0]}
		}
		return nil
	}, func() {
		m.seq++
		m.items[it.ID] = &memItem{Item: it, seq: m.seq}
		m.skus[in.SKU] = append(m.skus[in.SKU], it.ID)
	})
	if err != nil {
		return Item{}, err
	}
	return it, nil
}

// GetItem implements Store.
func (m *Memory) GetItem(_ context.Context, id string) (Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[id]
	if !ok {
		return Item{}, ErrNotFound
	}
	return it.Item, nil
}

// ListItems implements Store.
func (m *Memory) ListItems(_ context.Context, f ItemFilter) ([]Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var found []*memItem
	if f.SKU != "" {
		for _, id := range m.skus[f.SKU] {
			found = append(found, m.items[id])
		}
	} else {
		for _, it := range m.items {
			found = append(found, it)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].seq < found[j].seq })
	if f.Limit > 0 && len(found) > f.Limit {
		found = found[:f.Limit]
	}
	out := make([]Item, len(found))
	for i, it := range found {
		out[i] = it.Item
	}
	return out, nil
}

// UpdateItem implements Store.
func (m *Memory) UpdateItem(_ context.Context, id string, pre Precondition, ch Change) (Item, error) {
	var next Item
	err := m.guarded(m.opts.racy(), func() error {
		cur, ok := m.items[id]
		if !ok {
			return ErrNotFound
		}
		if !pre.Matches(cur.Version) {
			return &VersionMismatchError{Current: cur.Item}
		}
		next = apply(cur.Item, ch)
		return nil
	}, func() {
		if cur, ok := m.items[id]; ok {
			cur.Item = next // a racy write overwrites whatever happened since the check
		}
	})
	return next, err
}

// apply returns the item with the change applied and its version bumped.
func apply(it Item, ch Change) Item {
	if ch.Name != nil {
		it.Name = *ch.Name
	}
	if ch.Price != nil {
		it.Price = *ch.Price
	}
	if ch.Stock != nil {
		it.Stock = *ch.Stock
	}
	it.Version++
	return it
}

// DeleteItem implements Store.
func (m *Memory) DeleteItem(_ context.Context, id string, pre Precondition) error {
	return m.guarded(m.opts.racy(), func() error {
		cur, ok := m.items[id]
		if !ok {
			return ErrNotFound
		}
		if !pre.Matches(cur.Version) {
			return &VersionMismatchError{Current: cur.Item}
		}
		if deps := m.placed[id]; len(deps) > 0 && !m.opts.SkipDependents {
			ids := make([]string, 0, len(deps))
			for o := range deps {
				ids = append(ids, o)
			}
			sort.Strings(ids)
			return &InUseError{ItemID: id, Orders: ids}
		}
		return nil
	}, func() {
		it, ok := m.items[id]
		if !ok {
			return
		}
		delete(m.items, id)
		ids := m.skus[it.SKU]
		for i, x := range ids {
			if x == id {
				ids = append(ids[:i:i], ids[i+1:]...)
				break
			}
		}
		if len(ids) == 0 {
			delete(m.skus, it.SKU)
		} else {
			m.skus[it.SKU] = ids
		}
	})
}

// CreateOrder implements Store.
func (m *Memory) CreateOrder(_ context.Context, in NewOrder) (Order, error) {
	o := Order{ID: uuid.NewString(), ItemID: in.ItemID, Quantity: in.Quantity, Status: OrderPlaced}
	var seen Item
	err := m.guarded(m.opts.racy(), func() error {
		it, ok := m.items[in.ItemID]
		if !ok {
			return &UnknownItemError{ItemID: in.ItemID}
		}
		if it.Stock < in.Quantity {
			return &InsufficientStockError{ItemID: in.ItemID, Available: it.Stock, Requested: in.Quantity}
		}
		seen = it.Item
		return nil
	}, func() {
		if it, ok := m.items[in.ItemID]; ok {
			it.Stock = seen.Stock - in.Quantity // racy: written back from what check saw
			it.Version = seen.Version + 1
		}
		m.orders[o.ID] = &o
		if m.placed[o.ItemID] == nil {
			m.placed[o.ItemID] = map[string]struct{}{}
		}
		m.placed[o.ItemID][o.ID] = struct{}{}
	})
	if err != nil {
		return Order{}, err
	}
	return o, nil
}

// GetOrder implements Store.
func (m *Memory) GetOrder(_ context.Context, id string) (Order, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.orders[id]
	if !ok {
		return Order{}, ErrNotFound
	}
	return *o, nil
}

// Transition implements Store.
func (m *Memory) Transition(_ context.Context, id string, to OrderStatus) (Order, error) {
	var next Order
	err := m.guarded(m.opts.racy(), func() error {
		o, ok := m.orders[id]
		if !ok {
			return ErrNotFound
		}
		if o.Status != OrderPlaced {
			return &TransitionError{OrderID: id, Current: o.Status, To: to}
		}
		next = *o
		next.Status = to
		return nil
	}, func() {
		o := m.orders[id]
		*o = next
		delete(m.placed[o.ItemID], o.ID)
		if to == OrderCancelled {
			if it, ok := m.items[o.ItemID]; ok {
				it.Stock += o.Quantity
				it.Version++
			}
		}
	})
	return next, err
}

// ClaimKey implements Store.
func (m *Memory) ClaimKey(_ context.Context, key, fingerprint string) (KeyClaim, error) {
	var claim KeyClaim
	err := m.guarded(m.opts.IdempotencyRace, func() error {
		k, ok := m.keys[key]
		switch {
		case !ok:
			return nil
		case k.fingerprint != fingerprint:
			return ErrKeyReused
		case k.inFlight && time.Now().Before(k.leaseUntil):
			return ErrKeyInFlight
		case !k.inFlight:
			resp := k.resp
			claim.Replay = &resp
		}
		return nil
	}, func() {
		if claim.Replay == nil {
			m.keys[key] = &memKey{fingerprint: fingerprint, inFlight: true, leaseUntil: time.Now().Add(DefaultKeyLease)}
		}
	})
	return claim, err
}

// CompleteKey implements Store.
func (m *Memory) CompleteKey(_ context.Context, key string, resp StoredResponse) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[key]
	if !ok {
		return ErrNotFound
	}
	k.inFlight = false
	k.resp = resp
	return nil
}

// ReleaseKey implements Store.
func (m *Memory) ReleaseKey(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.keys, key)
	return nil
}

// Close implements Store.
func (m *Memory) Close() {}

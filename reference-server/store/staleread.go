package store

import (
	"context"
	"errors"
	"sync"
	"time"
)

// WithStaleReads wraps s so that its reads lag its writes by lag, as reads from an asynchronous
// replica do: for lag after a write, reads still see the resource as it was before that write
// (absent, for one just created). Writes and their answers are unaffected. It injects the
// stale-read fault.
func WithStaleReads(s Store, lag time.Duration) Store {
	return &staleReads{Store: s, lag: lag, items: map[string]snapshot[Item]{}, orders: map[string]snapshot[Order]{}}
}

type staleReads struct {
	Store
	lag    time.Duration
	mu     sync.Mutex
	items  map[string]snapshot[Item]
	orders map[string]snapshot[Order]
}

// snapshot is what a lagging read shows until the replica catches up.
type snapshot[T any] struct {
	value  T
	exists bool
	until  time.Time
}

// remember records the state before a write, unless an older one is still being served.
func remember[T any](mu *sync.Mutex, m map[string]snapshot[T], id string, v T, exists bool, lag time.Duration) {
	mu.Lock()
	defer mu.Unlock()
	now := time.Now()
	if old, ok := m[id]; ok && now.Before(old.until) {
		return
	}
	m[id] = snapshot[T]{value: v, exists: exists, until: now.Add(lag)}
}

// lagging returns the stale view of id, if one is still served.
func lagging[T any](mu *sync.Mutex, m map[string]snapshot[T], id string) (snapshot[T], bool) {
	mu.Lock()
	defer mu.Unlock()
	s, ok := m[id]
	if !ok {
		return s, false
	}
	if !time.Now().Before(s.until) {
		delete(m, id)
		return s, false
	}
	return s, true
}

func (s *staleReads) rememberItem(ctx context.Context, id string) {
	it, err := s.Store.GetItem(ctx, id)
	remember(&s.mu, s.items, id, it, err == nil, s.lag)
}

func (s *staleReads) rememberOrder(ctx context.Context, id string) {
	o, err := s.Store.GetOrder(ctx, id)
	remember(&s.mu, s.orders, id, o, err == nil, s.lag)
}

func (s *staleReads) CreateItem(ctx context.Context, in NewItem) (Item, error) {
	it, err := s.Store.CreateItem(ctx, in)
	if err == nil {
		remember(&s.mu, s.items, it.ID, Item{}, false, s.lag)
	}
	return it, err
}

func (s *staleReads) GetItem(ctx context.Context, id string) (Item, error) {
	if snap, ok := lagging(&s.mu, s.items, id); ok {
		if !snap.exists {
			return Item{}, ErrNotFound
		}
		return snap.value, nil
	}
	return s.Store.GetItem(ctx, id)
}

func (s *staleReads) ListItems(ctx context.Context, f ItemFilter) ([]Item, error) {
	items, err := s.Store.ListItems(ctx, f)
	if err != nil {
		return nil, err
	}
	out := items[:0]
	for _, it := range items {
		snap, ok := lagging(&s.mu, s.items, it.ID)
		switch {
		case !ok:
			out = append(out, it)
		case snap.exists:
			out = append(out, snap.value)
		}
	}
	return out, nil
}

func (s *staleReads) UpdateItem(ctx context.Context, id string, pre Precondition, ch Change) (Item, error) {
	s.rememberItem(ctx, id)
	return s.Store.UpdateItem(ctx, id, pre, ch)
}

func (s *staleReads) DeleteItem(ctx context.Context, id string, pre Precondition) error {
	s.rememberItem(ctx, id)
	return s.Store.DeleteItem(ctx, id, pre)
}

func (s *staleReads) CreateOrder(ctx context.Context, in NewOrder) (Order, error) {
	s.rememberItem(ctx, in.ItemID)
	o, err := s.Store.CreateOrder(ctx, in)
	if err == nil {
		remember(&s.mu, s.orders, o.ID, Order{}, false, s.lag)
	}
	return o, err
}

func (s *staleReads) GetOrder(ctx context.Context, id string) (Order, error) {
	if snap, ok := lagging(&s.mu, s.orders, id); ok {
		if !snap.exists {
			return Order{}, ErrNotFound
		}
		return snap.value, nil
	}
	return s.Store.GetOrder(ctx, id)
}

func (s *staleReads) Transition(ctx context.Context, id string, to OrderStatus) (Order, error) {
	s.rememberOrder(ctx, id)
	if o, err := s.Store.GetOrder(ctx, id); err == nil {
		s.rememberItem(ctx, o.ItemID)
	} else if !errors.Is(err, ErrNotFound) {
		return Order{}, err
	}
	return s.Store.Transition(ctx, id, to)
}

package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/reference-server/store"
)

// opener returns a fresh, empty store with the given options for one test.
type opener func(t *testing.T, opts store.Options) store.Store

// racers is how many goroutines collide in each race of the contract.
const racers = 100

// runContract is the one contract every Store implementation must keep.
func runContract(t *testing.T, open opener) {
	t.Run("items", func(t *testing.T) { testItems(t, open(t, store.Options{})) })
	t.Run("orders", func(t *testing.T) { testOrders(t, open(t, store.Options{})) })
	t.Run("idempotency keys", func(t *testing.T) { testKeys(t, open(t, store.Options{})) })
	t.Run("race duplicate create", func(t *testing.T) { raceDuplicateCreate(t, open(t, store.Options{}), true) })
	t.Run("race stale update", func(t *testing.T) { raceStaleUpdate(t, open(t, store.Options{}), true) })
	t.Run("race capacity", func(t *testing.T) { raceCapacity(t, open(t, store.Options{}), true) })
	t.Run("race transition", func(t *testing.T) { raceTransition(t, open(t, store.Options{}), true) })
	t.Run("race delete in use", func(t *testing.T) { raceDeleteInUse(t, open(t, store.Options{}), true) })
	t.Run("race idempotency key", func(t *testing.T) { raceKey(t, open(t, store.Options{}), true) })
}

// runFaults shows that each defect the options inject really happens on this store.
func runFaults(t *testing.T, open opener) {
	racy := store.Options{CheckThenAct: true, Window: 5 * time.Millisecond}
	tests := []struct {
		name string
		opts store.Options
		race func(*testing.T, store.Store, bool) bool
	}{
		{"check-then-act duplicates a sku", racy, raceDuplicateCreate},
		{"check-then-act loses an update", racy, raceStaleUpdate},
		{"check-then-act oversells", racy, raceCapacity},
		{"check-then-act allows two transitions", racy, raceTransition},
		{"idempotency race executes twice", store.Options{IdempotencyRace: true, Window: 5 * time.Millisecond}, raceKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.race(t, open(t, tt.opts), false) {
				t.Fatalf("%s: the defect did not show", tt.name)
			}
		})
	}
	t.Run("skip dependents orphans an order", func(t *testing.T) {
		ctx := context.Background()
		s := open(t, store.Options{SkipDependents: true})
		it := mustItem(t, s, "ORPHAN", 5)
		if _, err := s.CreateOrder(ctx, store.NewOrder{ItemID: it.ID, Quantity: 1}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteItem(ctx, it.ID, store.Unconditional); err != nil {
			t.Fatalf("DeleteItem with a placed order = %v; want the fault to delete it", err)
		}
	})
}

func mustItem(t *testing.T, s store.Store, sku string, stock int64) store.Item {
	t.Helper()
	it, err := s.CreateItem(context.Background(), store.NewItem{SKU: sku, Name: "n-" + sku, Price: 100, Stock: stock})
	if err != nil {
		t.Fatalf("CreateItem(%s): %v", sku, err)
	}
	return it
}

func ptr[T any](v T) *T { return &v }

func testItems(t *testing.T, s store.Store) {
	ctx := context.Background()
	it := mustItem(t, s, "A-1", 3)
	if it.Version != 1 || it.ID == "" || it.Stock != 3 || it.Name != "n-A-1" {
		t.Fatalf("CreateItem = %+v; want version 1, an id, stock 3", it)
	}
	var taken *store.SKUTakenError
	if _, err := s.CreateItem(ctx, store.NewItem{SKU: "A-1", Name: "x"}); !errors.As(err, &taken) || taken.ExistingID != it.ID {
		t.Fatalf("duplicate CreateItem err = %v; want SKUTakenError naming %s", err, it.ID)
	}
	got, err := s.GetItem(ctx, it.ID)
	if err != nil || got != it {
		t.Fatalf("GetItem = %+v, %v; want %+v", got, err, it)
	}
	if _, err := s.GetItem(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetItem(missing) err = %v; want ErrNotFound", err)
	}
	b := mustItem(t, s, "B-1", 0)
	if list, _ := s.ListItems(ctx, store.ItemFilter{SKU: "A-1"}); len(list) != 1 || list[0].ID != it.ID {
		t.Fatalf("ListItems(sku A-1) = %+v; want just %s", list, it.ID)
	}
	if list, _ := s.ListItems(ctx, store.ItemFilter{}); len(list) != 2 || list[0].ID != it.ID || list[1].ID != b.ID {
		t.Fatalf("ListItems() = %+v; want A-1 then B-1", list)
	}
	if list, _ := s.ListItems(ctx, store.ItemFilter{Limit: 1}); len(list) != 1 {
		t.Fatalf("ListItems(limit 1) has %d items", len(list))
	}

	up, err := s.UpdateItem(ctx, it.ID, store.IfVersion(1), store.Change{Name: ptr("renamed")})
	if err != nil || up.Version != 2 || up.Name != "renamed" || up.Price != 100 || up.Stock != 3 {
		t.Fatalf("UpdateItem = %+v, %v; want version 2, only the name changed", up, err)
	}
	var mismatch *store.VersionMismatchError
	if _, err := s.UpdateItem(ctx, it.ID, store.IfVersion(1), store.Change{Name: ptr("stale")}); !errors.As(err, &mismatch) || mismatch.Current != up {
		t.Fatalf("stale UpdateItem err = %v; want VersionMismatchError holding %+v", err, up)
	}
	if _, err := s.UpdateItem(ctx, it.ID, store.Precondition{}, store.Change{}); !errors.As(err, &mismatch) {
		t.Fatalf("UpdateItem with an empty precondition err = %v; want a mismatch", err)
	}
	anyUp, err := s.UpdateItem(ctx, it.ID, store.Precondition{Any: true}, store.Change{Price: ptr(int64(7)), Stock: ptr(int64(9))})
	if err != nil || anyUp.Version != 3 || anyUp.Price != 7 || anyUp.Stock != 9 || anyUp.Name != "renamed" {
		t.Fatalf("UpdateItem(any) = %+v, %v", anyUp, err)
	}
	if _, err := s.UpdateItem(ctx, "00000000-0000-0000-0000-000000000000", store.Precondition{Any: true}, store.Change{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateItem(missing) err = %v; want ErrNotFound", err)
	}
	if err := s.DeleteItem(ctx, b.ID, store.IfVersion(2)); !errors.As(err, &mismatch) || mismatch.Current.ID != b.ID {
		t.Fatalf("DeleteItem at a stale version err = %v; want VersionMismatchError", err)
	}
	if err := s.DeleteItem(ctx, b.ID, store.IfVersion(1)); err != nil {
		t.Fatalf("DeleteItem: %v", err)
	}
	if err := s.DeleteItem(ctx, b.ID, store.Unconditional); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second DeleteItem err = %v; want ErrNotFound", err)
	}
	if _, err := s.CreateItem(ctx, store.NewItem{SKU: "B-1", Name: "again"}); err != nil {
		t.Fatalf("CreateItem after deleting the sku's item: %v", err)
	}
}

func testOrders(t *testing.T, s store.Store) {
	ctx := context.Background()
	it := mustItem(t, s, "O-1", 2)
	o, err := s.CreateOrder(ctx, store.NewOrder{ItemID: it.ID, Quantity: 2})
	if err != nil || o.Status != store.OrderPlaced || o.Quantity != 2 || o.ItemID != it.ID || o.ID == "" {
		t.Fatalf("CreateOrder = %+v, %v", o, err)
	}
	if got, _ := s.GetItem(ctx, it.ID); got.Stock != 0 || got.Version != 2 {
		t.Fatalf("item after order = %+v; want stock 0, version 2", got)
	}
	var short *store.InsufficientStockError
	if _, err := s.CreateOrder(ctx, store.NewOrder{ItemID: it.ID, Quantity: 1}); !errors.As(err, &short) || short.Available != 0 || short.Requested != 1 {
		t.Fatalf("CreateOrder beyond stock err = %v; want InsufficientStockError 0/1", err)
	}
	var unknown *store.UnknownItemError
	if _, err := s.CreateOrder(ctx, store.NewOrder{ItemID: "00000000-0000-0000-0000-000000000000", Quantity: 1}); !errors.As(err, &unknown) || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CreateOrder(unknown item) err = %v; want UnknownItemError", err)
	}
	var inUse *store.InUseError
	if err := s.DeleteItem(ctx, it.ID, store.Unconditional); !errors.As(err, &inUse) || len(inUse.Orders) != 1 || inUse.Orders[0] != o.ID {
		t.Fatalf("DeleteItem in use err = %v; want InUseError naming %s", err, o.ID)
	}
	if got, err := s.GetOrder(ctx, o.ID); err != nil || got != o {
		t.Fatalf("GetOrder = %+v, %v; want %+v", got, err, o)
	}
	c, err := s.Transition(ctx, o.ID, store.OrderCancelled)
	if err != nil || c.Status != store.OrderCancelled {
		t.Fatalf("cancel = %+v, %v", c, err)
	}
	if got, _ := s.GetItem(ctx, it.ID); got.Stock != 2 || got.Version != 3 {
		t.Fatalf("item after cancel = %+v; want stock 2 returned, version 3", got)
	}
	var bad *store.TransitionError
	if _, err := s.Transition(ctx, o.ID, store.OrderShipped); !errors.As(err, &bad) || bad.Current != store.OrderCancelled {
		t.Fatalf("ship a cancelled order err = %v; want TransitionError from cancelled", err)
	}
	if _, err := s.Transition(ctx, "00000000-0000-0000-0000-000000000000", store.OrderShipped); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Transition(missing) err = %v; want ErrNotFound", err)
	}
	o2, _ := s.CreateOrder(ctx, store.NewOrder{ItemID: it.ID, Quantity: 1})
	if sh, err := s.Transition(ctx, o2.ID, store.OrderShipped); err != nil || sh.Status != store.OrderShipped {
		t.Fatalf("ship = %+v, %v", sh, err)
	}
	if got, _ := s.GetItem(ctx, it.ID); got.Stock != 1 {
		t.Fatalf("stock after ship = %d; want 1 (shipping returns nothing)", got.Stock)
	}
	if err := s.DeleteItem(ctx, it.ID, store.Unconditional); err != nil {
		t.Fatalf("DeleteItem with only cancelled and shipped orders: %v", err)
	}
	if _, err := s.GetOrder(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetOrder(missing) err = %v; want ErrNotFound", err)
	}
}

func testKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	if c, err := s.ClaimKey(ctx, "k1", "fp1"); err != nil || c.Replay != nil {
		t.Fatalf("first ClaimKey = %+v, %v; want a claim", c, err)
	}
	if _, err := s.ClaimKey(ctx, "k1", "fp1"); !errors.Is(err, store.ErrKeyInFlight) {
		t.Fatalf("ClaimKey in flight err = %v; want ErrKeyInFlight", err)
	}
	if _, err := s.ClaimKey(ctx, "k1", "fp2"); !errors.Is(err, store.ErrKeyReused) {
		t.Fatalf("ClaimKey other payload err = %v; want ErrKeyReused", err)
	}
	want := store.StoredResponse{Status: 201, Location: "/orders/x", Body: []byte(`{"id":"x"}`)}
	if err := s.CompleteKey(ctx, "k1", want); err != nil {
		t.Fatal(err)
	}
	c, err := s.ClaimKey(ctx, "k1", "fp1")
	if err != nil || c.Replay == nil || c.Replay.Status != 201 || c.Replay.Location != want.Location || string(c.Replay.Body) != string(want.Body) {
		t.Fatalf("ClaimKey after completion = %+v, %v; want the stored response", c, err)
	}
	if _, err := s.ClaimKey(ctx, "k1", "fp2"); !errors.Is(err, store.ErrKeyReused) {
		t.Fatalf("completed key, other payload err = %v; want ErrKeyReused", err)
	}
	if _, err := s.ClaimKey(ctx, "k2", "fp"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseKey(ctx, "k2"); err != nil {
		t.Fatal(err)
	}
	if c, err := s.ClaimKey(ctx, "k2", "other"); err != nil || c.Replay != nil {
		t.Fatalf("ClaimKey after release = %+v, %v; want a fresh claim", c, err)
	}
}

// collide runs f(i) for i in [0, n) in n goroutines released together, and returns the errors.
func collide(n int, f func(i int) error) []error {
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			errs[i] = f(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	return errs
}

// winners counts nil errors and fails on any error that is not an expected rejection.
func winners(t *testing.T, errs []error, rejection func(error) bool) int {
	t.Helper()
	n := 0
	for i, err := range errs {
		switch {
		case err == nil:
			n++
		case !rejection(err):
			t.Fatalf("racer %d: unexpected error %v", i, err)
		}
	}
	return n
}

func isA[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

// oneWinner fails a correct store with other than one winner, and reports whether the race
// showed the defect: two or more winners.
func oneWinner(t *testing.T, correct bool, won int, what string) bool {
	t.Helper()
	if correct && won != 1 {
		t.Fatalf("%s: %d winners; want exactly 1", what, won)
	}
	return won >= 2
}

func raceDuplicateCreate(t *testing.T, s store.Store, correct bool) bool {
	ctx := context.Background()
	errs := collide(racers, func(i int) error {
		_, err := s.CreateItem(ctx, store.NewItem{SKU: "RACE", Name: fmt.Sprint("racer-", i)})
		return err
	})
	won := winners(t, errs, isA[*store.SKUTakenError])
	defect := oneWinner(t, correct, won, "duplicate create")
	list, err := s.ListItems(ctx, store.ItemFilter{SKU: "RACE"})
	if err != nil || len(list) != won {
		t.Fatalf("ListItems = %d items, %v; want one per winner (%d)", len(list), err, won)
	}
	return defect
}

func raceStaleUpdate(t *testing.T, s store.Store, correct bool) bool {
	ctx := context.Background()
	it := mustItem(t, s, "STALE", 1)
	errs := collide(racers, func(i int) error {
		_, err := s.UpdateItem(ctx, it.ID, store.IfVersion(it.Version), store.Change{Name: ptr(fmt.Sprint("racer-", i))})
		return err
	})
	won := winners(t, errs, isA[*store.VersionMismatchError])
	defect := oneWinner(t, correct, won, "stale update")
	got, _ := s.GetItem(ctx, it.ID)
	if correct {
		winner := -1
		for i, err := range errs {
			if err == nil {
				winner = i
			}
		}
		if got.Name != fmt.Sprint("racer-", winner) || got.Version != 2 {
			t.Fatalf("item after race = %+v; want racer-%d's name at version 2", got, winner)
		}
	} else if got.Version != 2 {
		t.Fatalf("version after lost updates = %d; want 2 (every winner wrote back version 2)", got.Version)
	}
	return defect
}

func raceCapacity(t *testing.T, s store.Store, correct bool) bool {
	ctx := context.Background()
	const stock = 10
	it := mustItem(t, s, "CAP", stock)
	errs := collide(racers, func(int) error {
		_, err := s.CreateOrder(ctx, store.NewOrder{ItemID: it.ID, Quantity: 1})
		return err
	})
	won := winners(t, errs, isA[*store.InsufficientStockError])
	got, _ := s.GetItem(ctx, it.ID)
	if got.Stock < 0 {
		t.Fatalf("stock = %d; never negative", got.Stock)
	}
	if correct && (won != stock || got.Stock != 0) {
		t.Fatalf("capacity race: %d orders, stock %d; want %d orders and stock 0", won, got.Stock, stock)
	}
	return int64(won) > stock-got.Stock // an oversell: more orders than units taken
}

func raceTransition(t *testing.T, s store.Store, correct bool) bool {
	ctx := context.Background()
	it := mustItem(t, s, "TR", 1)
	o, err := s.CreateOrder(ctx, store.NewOrder{ItemID: it.ID, Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	errs := collide(racers, func(i int) error {
		to := store.OrderCancelled
		if i%2 == 1 {
			to = store.OrderShipped
		}
		_, err := s.Transition(ctx, o.ID, to)
		return err
	})
	won := winners(t, errs, isA[*store.TransitionError])
	defect := oneWinner(t, correct, won, "transition")
	if !correct {
		return defect
	}
	got, _ := s.GetOrder(ctx, o.ID)
	item, _ := s.GetItem(ctx, it.ID)
	for i, err := range errs {
		if err != nil {
			continue
		}
		want, stock := store.OrderCancelled, int64(1)
		if i%2 == 1 {
			want, stock = store.OrderShipped, 0
		}
		if got.Status != want || item.Stock != stock {
			t.Fatalf("after racer %d won: order %s, stock %d; want %s, %d", i, got.Status, item.Stock, want, stock)
		}
	}
	return defect
}

func raceDeleteInUse(t *testing.T, s store.Store, correct bool) bool {
	ctx := context.Background()
	it := mustItem(t, s, "DEL", racers)
	errs := collide(racers, func(i int) error {
		if i%2 == 0 {
			return s.DeleteItem(ctx, it.ID, store.Unconditional)
		}
		_, err := s.CreateOrder(ctx, store.NewOrder{ItemID: it.ID, Quantity: 1})
		return err
	})
	deleted, ordered := 0, 0
	for i, err := range errs {
		switch {
		case err == nil && i%2 == 0:
			deleted++
		case err == nil:
			ordered++
		case !isA[*store.InUseError](err) && !errors.Is(err, store.ErrNotFound):
			t.Fatalf("racer %d: unexpected error %v", i, err)
		}
	}
	if deleted > 1 {
		t.Fatalf("%d deletes succeeded; at most 1", deleted)
	}
	if correct && deleted == 1 && ordered > 0 {
		t.Fatalf("the item was deleted while %d placed orders reference it", ordered)
	}
	if deleted+ordered == 0 {
		t.Fatal("nobody won")
	}
	return deleted == 1 && ordered > 0
}

func raceKey(t *testing.T, s store.Store, correct bool) bool {
	ctx := context.Background()
	errs := collide(racers, func(int) error {
		_, err := s.ClaimKey(ctx, "race-key", "fp")
		return err
	})
	won := winners(t, errs, func(err error) bool { return errors.Is(err, store.ErrKeyInFlight) })
	return oneWinner(t, correct, won, "idempotency key claim")
}

func TestMemoryContract(t *testing.T) {
	runContract(t, func(t *testing.T, opts store.Options) store.Store { return store.NewMemory(opts) })
}

func TestMemoryFaults(t *testing.T) {
	runFaults(t, func(t *testing.T, opts store.Options) store.Store { return store.NewMemory(opts) })
}

func TestSpinWaitsAtLeast(t *testing.T) {
	for _, d := range []time.Duration{0, time.Microsecond, 50 * time.Microsecond, 3 * time.Millisecond} {
		start := time.Now()
		store.Spin(d)
		if got := time.Since(start); got < d {
			t.Errorf("Spin(%v) returned after %v", d, got)
		}
	}
}

func TestStaleReadsLag(t *testing.T) {
	ctx := context.Background()
	s := store.WithStaleReads(store.NewMemory(store.Options{}), time.Hour)
	it, err := s.CreateItem(ctx, store.NewItem{SKU: "LAG", Name: "before", Stock: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetItem(ctx, it.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetItem right after create err = %v; want the lagging read to miss it", err)
	}
	if list, _ := s.ListItems(ctx, store.ItemFilter{SKU: "LAG"}); len(list) != 0 {
		t.Fatalf("ListItems right after create = %+v; want none", list)
	}
	fresh := store.WithStaleReads(store.NewMemory(store.Options{}), 0)
	it, _ = fresh.CreateItem(ctx, store.NewItem{SKU: "LAG", Name: "before", Stock: 1})
	if got, err := fresh.GetItem(ctx, it.ID); err != nil || got.Name != "before" {
		t.Fatalf("GetItem with no lag = %+v, %v", got, err)
	}

	s = store.WithStaleReads(store.NewMemory(store.Options{}), 50*time.Millisecond)
	it, _ = s.CreateItem(ctx, store.NewItem{SKU: "LAG", Name: "before", Stock: 1})
	time.Sleep(60 * time.Millisecond)
	if _, err := s.UpdateItem(ctx, it.ID, store.IfVersion(1), store.Change{Name: ptr("after")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetItem(ctx, it.ID); got.Name != "before" || got.Version != 1 {
		t.Fatalf("GetItem within the lag = %+v; want the state before the update", got)
	}
	time.Sleep(60 * time.Millisecond)
	if got, _ := s.GetItem(ctx, it.ID); got.Name != "after" || got.Version != 2 {
		t.Fatalf("GetItem after the lag = %+v; want the update", got)
	}
}

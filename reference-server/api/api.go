// Package api serves the reference inventory API (openapi/reference.yaml) over a store.Store.
//
// It answers every error with application/problem+json whose members tell the client how to
// resolve a conflict, never changes state on a rejected request, and injects the HTTP-level
// faults of package fault (the store-level ones live in the store's Options).
package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/conflictcheck/conflictcheck/reference-server/fault"
	"github.com/conflictcheck/conflictcheck/reference-server/store"
)

// DefaultMaxBodyBytes caps request bodies; every valid body of this API is far smaller.
const DefaultMaxBodyBytes = 64 << 10

// Options configure a Handler. The zero value is the correct server.
type Options struct {
	// Fault is the defect to inject at the HTTP level (status-*, bad-body, partial-write,
	// stale-etag, lost-update); store-level faults are set on the store itself.
	Fault fault.Name
	// Logger receives one record per request; nil discards them.
	Logger *slog.Logger
	// MaxBodyBytes caps request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// OnArrival, when set, is called once per request, before routing, with the monotonic time
	// at which its body (up to MaxBodyBytes+1 bytes; none for a bodyless request) was fully
	// read: the arrival recorder of `conflictcheck bench`. It must be quick and safe for
	// concurrent use; nil costs nothing.
	OnArrival func(r *http.Request, at time.Time)
}

// Handler is the reference API as an http.Handler.
type Handler struct {
	store   store.Store
	fault   fault.Name
	log     *slog.Logger
	maxBody int64
	arrival func(*http.Request, time.Time)
	mux     *http.ServeMux
	// poisoned holds the items whose updates the stale-etag fault keeps rejecting.
	poisoned sync.Map
}

// New returns the API over s.
func New(s store.Store, opts Options) *Handler {
	h := &Handler{store: s, fault: opts.Fault, log: opts.Logger, maxBody: opts.MaxBodyBytes, arrival: opts.OnArrival, mux: http.NewServeMux()}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	h.mux.HandleFunc("POST /items", h.createItem)
	h.mux.HandleFunc("GET /items", h.listItems)
	h.mux.HandleFunc("GET /items/{id}", h.getItem)
	h.mux.HandleFunc("PUT /items/{id}", h.replaceItem)
	h.mux.HandleFunc("PATCH /items/{id}", h.patchItem)
	h.mux.HandleFunc("DELETE /items/{id}", h.deleteItem)
	h.mux.HandleFunc("POST /orders", h.createOrder)
	h.mux.HandleFunc("GET /orders/{id}", h.getOrder)
	h.mux.HandleFunc("POST /orders/{id}/cancel", h.transition(store.OrderCancelled))
	h.mux.HandleFunc("POST /orders/{id}/ship", h.transition(store.OrderShipped))
	return h
}

// ServeHTTP routes the request, answering unknown paths and methods with problems too, and
// logs it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.arrival != nil {
		h.arrive(r)
	}
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			// A handler bug must not kill the connection silently or leak a stack to the client.
			h.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
			if sw.status == 0 {
				writeProblem(sw, problem{Name: "internal", Status: http.StatusInternalServerError, Detail: "the server failed to handle the request"})
			}
		}
		level := slog.LevelDebug
		if sw.status >= 500 {
			level = slog.LevelError
		}
		h.log.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start))
	}()
	if _, pattern := h.mux.Handler(r); pattern == "" {
		h.unrouted(sw, r)
		return
	}
	h.mux.ServeHTTP(sw, r)
}

// unrouted turns the mux's plain-text 404 and 405 into problems.
func (h *Handler) unrouted(w http.ResponseWriter, r *http.Request) {
	probe := &headerProbe{header: http.Header{}}
	hd, _ := h.mux.Handler(r)
	hd.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", probe.header.Get("Allow"))
		writeProblem(w, problem{Name: "method-not-allowed", Status: http.StatusMethodNotAllowed,
			Detail: r.Method + " is not allowed here; allowed: " + probe.header.Get("Allow")})
		return
	}
	writeProblem(w, notFound("the resource "+r.URL.Path))
}

// headerProbe records what the mux's fallback handler would answer, without sending it.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(code int)        { p.status = code }

// statusWriter remembers the status sent, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var skuPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Field limits shared by the handlers and reference.yaml.
const (
	maxPrice    = 1_000_000_000_000
	maxStock    = 1_000_000_000
	maxQuantity = 1000
	maxNameLen  = 200
	maxSKULen   = 64
	maxKeyLen   = 255
)

func (h *Handler) createItem(w http.ResponseWriter, r *http.Request) {
	o, p := readObject(r, h.maxBody)
	if p != nil {
		writeProblem(w, *p)
		return
	}
	sku := o.str("sku", true, 1, maxSKULen, skuPattern)
	name := o.str("name", true, 1, maxNameLen, nil)
	price := o.integer("price", true, 0, maxPrice)
	stock := o.integer("stock", true, 0, maxStock)
	if p := o.done(); p != nil {
		writeProblem(w, *p)
		return
	}
	it, err := h.store.CreateItem(r.Context(), store.NewItem{SKU: *sku, Name: *name, Price: *price, Stock: *stock})
	var taken *store.SKUTakenError
	switch {
	case errors.As(err, &taken):
		if h.fault == fault.PartialWrite {
			// The loser's name lands on the existing item although the create is refused.
			_, _ = h.store.UpdateItem(context.WithoutCancel(r.Context()), taken.ExistingID, store.Unconditional, store.Change{Name: name})
		}
		h.conflict(w, problem{Name: "sku-taken", Status: http.StatusConflict,
			Detail: fmt.Sprintf("sku %q already names item %s; choose another sku, or update that item", taken.SKU, taken.ExistingID),
			Ext:    map[string]any{"sku": taken.SKU, "existingId": taken.ExistingID}})
	case err != nil:
		h.storeFailure(w, r, err)
	default:
		w.Header().Set("Location", "/items/"+it.ID)
		h.writeItem(w, http.StatusCreated, it)
	}
}

func (h *Handler) listItems(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeProblem(w, badRequest("limit must be an integer between 1 and 1000"))
			return
		}
		limit = n
	}
	items, err := h.store.ListItems(r.Context(), store.ItemFilter{SKU: q.Get("sku"), Limit: limit})
	if err != nil {
		h.storeFailure(w, r, err)
		return
	}
	if items == nil {
		items = []store.Item{}
	}
	writeJSON(w, http.StatusOK, "application/json", map[string]any{"items": items})
}

func (h *Handler) getItem(w http.ResponseWriter, r *http.Request) {
	it, err := h.store.GetItem(r.Context(), r.PathValue("id"))
	if err != nil {
		h.lookupFailure(w, r, err, "item "+r.PathValue("id"))
		return
	}
	h.writeItem(w, http.StatusOK, it)
}

// ifMatch reads If-Match: the precondition it states, or Unconditional when absent. A value
// that is neither `*` nor a list of entity tags gives the 400 to send.
func ifMatch(r *http.Request) (pre store.Precondition, present bool, p *problem) {
	values := r.Header.Values("If-Match")
	if len(values) == 0 {
		return store.Unconditional, false, nil
	}
	pre, err := parseIfMatch(values)
	if err != nil {
		bad := badRequest(err.Error())
		return pre, true, &bad
	}
	return pre, true, nil
}

// preconditionFailed is the 412 for an If-Match that the item at cur does not satisfy.
func preconditionFailed(cur store.Item) problem {
	return problem{Name: "precondition-failed", Status: http.StatusPreconditionFailed,
		Detail: fmt.Sprintf("item %s is at %s; read it again, re-apply your change, and resend with If-Match: %s", cur.ID, etag(cur.Version), etag(cur.Version)),
		Ext:    map[string]any{"currentETag": etag(cur.Version), "currentVersion": cur.Version}}
}

func (h *Handler) replaceItem(w http.ResponseWriter, r *http.Request) {
	pre, present, p := ifMatch(r)
	switch {
	case !present:
		writeProblem(w, problem{Name: "precondition-required", Status: http.StatusPreconditionRequired,
			Detail: "replacing an item requires If-Match: read the item and send its ETag, e.g. If-Match: \"v3\""})
		return
	case p != nil:
		writeProblem(w, *p)
		return
	}
	o, p := readObject(r, h.maxBody)
	if p != nil {
		writeProblem(w, *p)
		return
	}
	ch := store.Change{
		Name:  o.str("name", true, 1, maxNameLen, nil),
		Price: o.integer("price", true, 0, maxPrice),
		Stock: o.integer("stock", true, 0, maxStock),
	}
	if p := o.done(); p != nil {
		writeProblem(w, *p)
		return
	}
	h.update(w, r, pre, ch, preconditionFailed)
}

// patchItem updates from the body's version; an If-Match sent too must hold as well (RFC 9110
// §13.1.1), and when it is the one that fails the answer is 412 rather than 409.
func (h *Handler) patchItem(w http.ResponseWriter, r *http.Request) {
	header, _, p := ifMatch(r)
	if p != nil {
		writeProblem(w, *p)
		return
	}
	o, p := readObject(r, h.maxBody)
	if p != nil {
		writeProblem(w, *p)
		return
	}
	version := o.integer("version", true, 1, 1<<62)
	ch := store.Change{
		Name:  o.str("name", false, 1, maxNameLen, nil),
		Price: o.integer("price", false, 0, maxPrice),
		Stock: o.integer("stock", false, 0, maxStock),
	}
	if p := o.done(); p != nil {
		writeProblem(w, *p)
		return
	}
	pre := store.IfVersion(*version)
	if !header.Matches(*version) {
		pre = store.Precondition{} // the two conditions cannot both hold
	}
	h.update(w, r, pre, ch, func(cur store.Item) problem {
		if !header.Matches(cur.Version) {
			return preconditionFailed(cur)
		}
		return problem{Name: "version-mismatch", Status: http.StatusConflict,
			Detail: fmt.Sprintf("item %s is at version %d, not %d; read it again, re-apply your change, and resend with version %d", cur.ID, cur.Version, *version, cur.Version),
			Ext:    map[string]any{"currentVersion": cur.Version, "currentETag": etag(cur.Version)}}
	})
}

// update applies a conditional change and answers the result; mismatch builds the conflict
// problem from the item as it currently is.
func (h *Handler) update(w http.ResponseWriter, r *http.Request, pre store.Precondition, ch store.Change, mismatch func(store.Item) problem) {
	id := r.PathValue("id")
	if h.fault == fault.LostUpdate {
		pre = store.Unconditional
	}
	if _, poisoned := h.poisoned.Load(id); poisoned {
		// stale-etag: the server keeps judging this item by a version it no longer has.
		pre = store.Precondition{}
	}
	it, err := h.store.UpdateItem(r.Context(), id, pre, ch)
	var vm *store.VersionMismatchError
	switch {
	case errors.As(err, &vm):
		cur := vm.Current
		if h.fault == fault.StaleETag {
			h.poisoned.Store(id, struct{}{})
		}
		if h.fault == fault.PartialWrite && ch.Name != nil {
			if got, err := h.store.UpdateItem(context.WithoutCancel(r.Context()), id, store.Unconditional, store.Change{Name: ch.Name}); err == nil {
				cur = got
			}
		}
		h.conflict(w, mismatch(cur))
	case err != nil:
		h.lookupFailure(w, r, err, "item "+id)
	default:
		h.writeItem(w, http.StatusOK, it)
	}
}

func (h *Handler) deleteItem(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	pre, _, p := ifMatch(r)
	if p != nil {
		writeProblem(w, *p)
		return
	}
	if h.fault == fault.LostUpdate {
		pre = store.Unconditional
	}
	err := h.store.DeleteItem(r.Context(), id, pre)
	var inUse *store.InUseError
	var vm *store.VersionMismatchError
	switch {
	case errors.As(err, &vm):
		h.conflict(w, preconditionFailed(vm.Current))
	case errors.As(err, &inUse):
		h.conflict(w, problem{Name: "item-in-use", Status: http.StatusConflict,
			Detail: fmt.Sprintf("item %s is referenced by %d placed orders; cancel or ship them, then delete the item", id, len(inUse.Orders)),
			Ext:    map[string]any{"blockingOrders": inUse.Orders}})
	case err != nil:
		h.lookupFailure(w, r, err, "item "+id)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (h *Handler) createOrder(w http.ResponseWriter, r *http.Request) {
	keys := r.Header.Values("Idempotency-Key")
	hasKey := len(keys) > 0
	var key string
	switch {
	case len(keys) > 1:
		writeProblem(w, badRequest("send Idempotency-Key once"))
		return
	case hasKey:
		key = keys[0]
		if !validKey(key) {
			writeProblem(w, badRequest(fmt.Sprintf("Idempotency-Key must be 1 to %d visible ASCII characters", maxKeyLen)))
			return
		}
	}
	o, p := readObject(r, h.maxBody)
	if p != nil {
		writeProblem(w, *p)
		return
	}
	itemID := o.str("itemId", true, 1, 64, nil)
	qty := o.integer("quantity", true, 1, maxQuantity)
	if p := o.done(); p != nil {
		writeProblem(w, *p)
		return
	}
	in := store.NewOrder{ItemID: *itemID, Quantity: *qty}
	if !hasKey {
		h.placeOrder(w, r, in, "")
		return
	}
	claim, err := h.store.ClaimKey(r.Context(), key, fingerprint(in))
	switch {
	case errors.Is(err, store.ErrKeyReused):
		writeProblem(w, problem{Name: "idempotency-key-reused", Status: http.StatusUnprocessableEntity,
			Detail: "this Idempotency-Key was used with another payload; use a new key for a new request",
			Ext:    map[string]any{"idempotencyKey": key}})
	case errors.Is(err, store.ErrKeyInFlight):
		h.conflict(w, problem{Name: "idempotency-key-in-flight", Status: http.StatusConflict,
			Detail: "a request with this Idempotency-Key is still being processed; retry the same request later",
			Ext:    map[string]any{"idempotencyKey": key}})
	case err != nil:
		h.storeFailure(w, r, err)
	case claim.Replay != nil:
		if claim.Replay.Location != "" {
			w.Header().Set("Location", claim.Replay.Location)
		}
		w.Header().Set("Idempotent-Replayed", "true")
		ct := "application/json"
		if claim.Replay.Status >= 400 {
			ct = "application/problem+json"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Length", itoa(int64(len(claim.Replay.Body))))
		w.WriteHeader(claim.Replay.Status)
		_, _ = w.Write(claim.Replay.Body)
	default:
		h.placeOrder(w, r, in, key)
	}
}

// placeOrder executes an order and, for a claimed key, records the response for replay. The
// key is settled even if the client went away, so it never stays in flight.
func (h *Handler) placeOrder(w http.ResponseWriter, r *http.Request, in store.NewOrder, key string) {
	ctx := context.WithoutCancel(r.Context())
	o, err := h.store.CreateOrder(r.Context(), in)
	var short *store.InsufficientStockError
	var unknown *store.UnknownItemError
	switch {
	case errors.As(err, &short):
		p := problem{Name: "insufficient-stock", Status: http.StatusConflict,
			Detail: fmt.Sprintf("item %s has %d in stock, %d requested; order less, or wait for stock", short.ItemID, short.Available, short.Requested),
			Ext:    map[string]any{"available": short.Available, "requested": short.Requested}}
		if key != "" {
			h.completeKey(ctx, key, store.StoredResponse{Status: p.Status, Body: encodeJSON(p.body())})
		}
		h.conflict(w, p)
	case errors.As(err, &unknown):
		h.releaseKey(ctx, key)
		writeProblem(w, problem{Name: "unknown-item", Status: http.StatusUnprocessableEntity,
			Detail: fmt.Sprintf("item %s does not exist; order an existing item", unknown.ItemID),
			Ext:    map[string]any{"itemId": unknown.ItemID}})
	case err != nil:
		h.releaseKey(ctx, key)
		h.storeFailure(w, r, err)
	default:
		loc := "/orders/" + o.ID
		if key != "" {
			h.completeKey(ctx, key, store.StoredResponse{Status: http.StatusCreated, Location: loc, Body: encodeJSON(o)})
		}
		w.Header().Set("Location", loc)
		writeJSON(w, http.StatusCreated, "application/json", o)
	}
}

func (h *Handler) completeKey(ctx context.Context, key string, resp store.StoredResponse) {
	if err := h.store.CompleteKey(ctx, key, resp); err != nil {
		h.log.Error("record idempotent response", "key", key, "err", err)
	}
}

func (h *Handler) releaseKey(ctx context.Context, key string) {
	if key == "" {
		return
	}
	if err := h.store.ReleaseKey(ctx, key); err != nil {
		h.log.Error("release idempotency key", "key", key, "err", err)
	}
}

// validKey accepts 1 to 255 visible ASCII characters: raw tokens (as most vendors use) and
// quoted structured-field strings (as the IETF draft writes them) alike.
func validKey(k string) bool {
	if len(k) == 0 || len(k) > maxKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// fingerprint identifies an order's payload, to tell a replay from a reused key.
func fingerprint(in store.NewOrder) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%q\x00%d", in.ItemID, in.Quantity))
	return hex.EncodeToString(sum[:])
}

func (h *Handler) getOrder(w http.ResponseWriter, r *http.Request) {
	o, err := h.store.GetOrder(r.Context(), r.PathValue("id"))
	if err != nil {
		h.lookupFailure(w, r, err, "order "+r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, "application/json", o)
}

func (h *Handler) transition(to store.OrderStatus) http.HandlerFunc {
	verb := map[store.OrderStatus]string{store.OrderCancelled: "cancelled", store.OrderShipped: "shipped"}[to]
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		o, err := h.store.Transition(r.Context(), id, to)
		var bad *store.TransitionError
		switch {
		case errors.As(err, &bad):
			h.conflict(w, problem{Name: "invalid-transition", Status: http.StatusConflict,
				Detail: fmt.Sprintf("order %s is %s; only a placed order can be %s", id, bad.Current, verb),
				Ext:    map[string]any{"currentStatus": bad.Current}})
		case err != nil:
			h.lookupFailure(w, r, err, "order "+id)
		default:
			writeJSON(w, http.StatusOK, "application/json", o)
		}
	}
}

func (h *Handler) writeItem(w http.ResponseWriter, status int, it store.Item) {
	w.Header().Set("ETag", etag(it.Version))
	writeJSON(w, status, "application/json", it)
}

// conflict answers a 409 or 412, unless a fault answers it wrongly.
func (h *Handler) conflict(w http.ResponseWriter, p problem) {
	switch h.fault {
	case fault.Status500:
		p.Name, p.Status, p.Detail, p.Ext = "internal", http.StatusInternalServerError, "the server failed to handle the request", nil
	case fault.Status400:
		p.Status = http.StatusBadRequest
	case fault.Status200:
		writeJSON(w, http.StatusOK, "application/json", map[string]any{"ok": true})
		return
	case fault.BadBody:
		writeJSON(w, p.Status, "application/json", map[string]any{"error": "conflict", "status": strconv.Itoa(p.Status)})
		return
	}
	writeProblem(w, p)
}

// lookupFailure answers a store error of a request naming a resource: 404 or a failure.
func (h *Handler) lookupFailure(w http.ResponseWriter, r *http.Request, err error, what string) {
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, notFound(what))
		return
	}
	h.storeFailure(w, r, err)
}

// storeFailure answers an unexpected store error: 503 when the store is out of reach, else 500.
// The details go to the log, never to the client.
func (h *Handler) storeFailure(w http.ResponseWriter, r *http.Request, err error) {
	if store.IsUnavailable(err) {
		h.log.Warn("store unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		writeProblem(w, problem{Name: "unavailable", Status: http.StatusServiceUnavailable, Detail: "the data store is unavailable; retry later"})
		return
	}
	h.log.Error("store failure", "method", r.Method, "path", r.URL.Path, "err", err)
	writeProblem(w, problem{Name: "internal", Status: http.StatusInternalServerError, Detail: "the server failed to handle the request"})
}

// encodeJSON encodes a value for replay; the values are plain structs and maps that always encode.
func encodeJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte("{}")
	}
	return b
}

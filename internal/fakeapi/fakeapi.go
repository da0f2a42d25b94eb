// Package fakeapi serves a small, correct, configurable in-memory widgets API on 127.0.0.1 for
// tests, together with the OpenAPI 3.0 document that describes it. Each option is one
// convention of real APIs (ids only in Location, 200 on create, PUT-to-create, body version
// fields, weak ETags, plain or empty error bodies, Connection: close, 303 for a duplicate,
// "already applied" updates), so that conflictcheck's planning, runner and checks can be proved
// right on APIs other than the reference server; faults prove the checks still fail there, and
// hooks (rate limits, bearer tokens, latency, a request log, a live count) serve the tests of
// budgets, auth, cleanup and dry runs.
//
// The store is linearizable: one mutex guards it, and every request's check and write happen
// in one critical section, except under the DuplicateRace fault, which is the point.
package fakeapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version field pointers the Options.VersionField convention knows.
const (
	// VersionETag keeps the version in the ETag header, checked through If-Match on PUT.
	VersionETag = ""
	// VersionRev is CouchDB's `_rev`: a string "<n>-<hash of the content>".
	VersionRev = "/_rev"
	// VersionRevision is an integer `revision` starting at 1.
	VersionRevision = "/revision"
	// VersionResourceVersion is Kubernetes' opaque string `metadata.resourceVersion`, taken
	// from one counter shared by every widget; the widget is then shaped like a Kubernetes
	// object ({id, metadata: {name, resourceVersion}, spec: {color}}).
	VersionResourceVersion = "/metadata/resourceVersion"
	// VersionLockVersion is Rails' optimistic-locking integer `lock_version` starting at 0.
	VersionLockVersion = "/lock_version"
)

// RejectBody is how the API words its rejections (every 4xx).
type RejectBody string

// The rejection bodies.
const (
	// RejectProblem answers application/problem+json (RFC 9457) whose status is the HTTP one.
	RejectProblem RejectBody = "problem"
	// RejectText answers text/plain.
	RejectText RejectBody = "text"
	// RejectEmpty answers no body at all.
	RejectEmpty RejectBody = "empty"
)

// Fault is a defect the API injects, to prove that a check fails on it.
type Fault string

// The faults.
const (
	// NoFault is the correct API.
	NoFault Fault = ""
	// LostUpdate ignores the version of an update (If-Match or the body field): every update
	// is applied.
	LostUpdate Fault = "lost-update"
	// DuplicateRace checks that a name (or, for PUT-to-create, an id) is free and stores the
	// widget in two critical sections with RaceWindow between them, so that simultaneous
	// creates all succeed and duplicates are stored.
	DuplicateRace Fault = "duplicate-race"
)

// DefaultRaceWindow is the gap of the DuplicateRace fault when Options.RaceWindow is zero.
const DefaultRaceWindow = 5 * time.Millisecond

// DefaultRetryAfter is the Retry-After value of a rate-limited answer when RateLimit.RetryAfter
// is empty.
const DefaultRetryAfter = "1"

// Options configure the API; the zero value is a POST-to-create API answering 201 with the id in
// the body, ETag/If-Match versions and problem+json rejections.
type Options struct {
	// IDInLocationOnly makes a create answer with no body, the new id only in its
	// `Location: /widgets/{id}` header.
	IDInLocationOnly bool
	// CreateStatus is the status of a successful create: 201 (when zero) or 200.
	CreateStatus int
	// PUTCreate replaces POST /widgets by PUT /widgets/{id} with a client-chosen id: with
	// `If-None-Match: *` it creates the widget (201) or answers 412 when the id exists; with
	// If-Match it updates; with neither it creates a missing widget and refuses to overwrite an
	// existing one (428, or 409 for a body version). Names are then not unique: the id is.
	PUTCreate bool
	// VersionField is where the version lives: VersionETag (the ETag header, checked through
	// If-Match on PUT, 412 when stale and 428 when missing) or one of the body field pointers
	// VersionRev, VersionRevision, VersionResourceVersion, VersionLockVersion (a PUT whose body
	// version is stale or missing gets 409).
	VersionField string
	// WeakETag makes every ETag weak (W/"n"): a correct server then rejects every If-Match but
	// `*` with 412, since weak tags never match under If-Match's strong comparison (RFC 9110
	// §13.1.1).
	WeakETag bool
	// RejectBody is the rejections' body: RejectProblem (when empty), RejectText, RejectEmpty.
	RejectBody RejectBody
	// ConnectionClose sends `Connection: close` with every response, so that the server closes
	// every connection after one exchange.
	ConnectionClose bool
	// DuplicateSeeOther answers a create of a name that exists with 303 See Other and the
	// existing widget's Location (RFC 9110 §9.3.3) instead of 409.
	DuplicateSeeOther bool
	// AlreadyApplied answers 200 and the current state, writing nothing, to an update whose
	// version is stale but whose body equals the stored state: the change "appears to have
	// already been applied" (RFC 9110 §13.1.1).
	AlreadyApplied bool

	// RateLimit, when set, answers some requests 429 with a Retry-After header.
	RateLimit *RateLimit
	// Token, when set, requires `Authorization: Bearer <token>` on every request (401
	// otherwise); API.RotateToken replaces it, after which the old one gets 401 too.
	Token string
	// Delay is added to every request before it is handled.
	Delay time.Duration

	// Fault is the defect to inject; RaceWindow is DuplicateRace's gap (DefaultRaceWindow
	// when zero).
	Fault      Fault
	RaceWindow time.Duration

	// XConflict makes Spec describe with x-conflict what plain OpenAPI leaves to inference
	// (the duplicate-create key, a nested version field, 303 as the expected rejection,
	// PUT-to-create); without it the document is plain OpenAPI.
	XConflict bool
}

// RateLimit says which requests get 429. Requests are counted from 1 in arrival order, every
// request included.
type RateLimit struct {
	// Every, when positive, answers 429 to every Every-th request.
	Every int
	// First, when positive, answers 429 to the first First requests (a window at the start).
	First int
	// RetryAfter is the Retry-After header's value; DefaultRetryAfter when empty.
	RetryAfter string
}

// Request is one request the API served, as it arrived, and the status it was answered.
type Request struct {
	Method string
	Path   string
	// Query is the raw query, without its '?'.
	Query  string
	Header http.Header
	Body   []byte
	Status int
}

// API is the widgets API as an http.Handler, with the hooks tests read and turn.
type API struct {
	opts Options

	// mu guards the store: every read and every check-and-write holds it throughout.
	mu      sync.Mutex
	widgets map[string]*widget
	seq     int // ids handed out
	rv      int // the resource-version counter shared by every widget

	// hooks guards what the hooks record and change.
	hooks    sync.Mutex
	requests []Request
	token    string
	throttle int       // the next throttle requests get 429
	until    time.Time // requests before it get 429
}

// New returns the API configured by opts, or an error naming an option it cannot honour.
func New(opts Options) (*API, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return &API{opts: opts, widgets: map[string]*widget{}, token: opts.Token}, nil
}

func (o Options) validate() error {
	switch o.CreateStatus {
	case 0, http.StatusCreated, http.StatusOK:
	default:
		return fmt.Errorf("fakeapi: create status %d: want 200 or 201", o.CreateStatus)
	}
	switch o.VersionField {
	case VersionETag, VersionRev, VersionRevision, VersionResourceVersion, VersionLockVersion:
	default:
		return fmt.Errorf("fakeapi: version field %q: want one of \"\", %s, %s, %s, %s", o.VersionField, VersionRev, VersionRevision, VersionResourceVersion, VersionLockVersion)
	}
	switch o.RejectBody {
	case "", RejectProblem, RejectText, RejectEmpty:
	default:
		return fmt.Errorf("fakeapi: reject body %q: want problem, text or empty", o.RejectBody)
	}
	switch o.Fault {
	case NoFault, LostUpdate, DuplicateRace:
	default:
		return fmt.Errorf("fakeapi: unknown fault %q", o.Fault)
	}
	if o.WeakETag && o.VersionField != VersionETag {
		return errors.New("fakeapi: WeakETag needs the ETag version (VersionField \"\")")
	}
	if o.PUTCreate && o.DuplicateSeeOther {
		return errors.New("fakeapi: DuplicateSeeOther answers a duplicate POST, which PUTCreate does not serve")
	}
	if o.PUTCreate && o.IDInLocationOnly {
		return errors.New("fakeapi: IDInLocationOnly answers a POST create, which PUTCreate does not serve")
	}
	return nil
}

// Server is the API served on a loopback httptest server.
type Server struct {
	*API
	// URL is the base URL, http://127.0.0.1:port.
	URL string
}

// Start serves the API configured by opts on 127.0.0.1 until t ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	api, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &Server{API: api, URL: srv.URL}
}

// Spec is the OpenAPI 3.0 document, YAML, describing this API.
func (a *API) Spec() string { return Spec(a.opts) }

// Requests is every request served so far, in arrival order.
func (a *API) Requests() []Request {
	a.hooks.Lock()
	defer a.hooks.Unlock()
	return slices.Clone(a.requests)
}

// Live is the number of widgets stored now.
func (a *API) Live() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.widgets)
}

// RotateToken makes tok the only bearer token accepted from now on.
func (a *API) RotateToken(tok string) {
	a.hooks.Lock()
	defer a.hooks.Unlock()
	a.token = tok
}

// Throttle answers the next n requests 429, on top of Options.RateLimit.
func (a *API) Throttle(n int) {
	a.hooks.Lock()
	defer a.hooks.Unlock()
	a.throttle = n
}

// ThrottleFor answers every request 429 for d from now, on top of Options.RateLimit.
func (a *API) ThrottleFor(d time.Duration) {
	a.hooks.Lock()
	defer a.hooks.Unlock()
	a.until = time.Now().Add(d)
}

// maxBody caps a request body; every valid body of this API is far smaller.
const maxBody = 64 << 10

// ServeHTTP records the request, waits Delay, applies the rate limit and the token (in that
// order), then routes it.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	rw := &recorder{ResponseWriter: w}
	if a.opts.ConnectionClose {
		w.Header().Set("Connection", "close")
	}
	a.hooks.Lock()
	i := len(a.requests)
	a.requests = append(a.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	limited := a.limited(i + 1)
	token := a.token
	a.hooks.Unlock()
	defer func() {
		a.hooks.Lock()
		a.requests[i].Status = rw.status
		a.hooks.Unlock()
	}()

	if a.opts.Delay > 0 {
		select {
		case <-time.After(a.opts.Delay):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case limited:
		retry := DefaultRetryAfter
		if a.opts.RateLimit != nil && a.opts.RateLimit.RetryAfter != "" {
			retry = a.opts.RateLimit.RetryAfter
		}
		rw.Header().Set("Retry-After", retry)
		a.reject(rw, http.StatusTooManyRequests, "too-many-requests", "slow down and retry after "+retry+" s")
		return
	case token != "" && r.Header.Get("Authorization") != "Bearer "+token:
		rw.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		a.reject(rw, http.StatusUnauthorized, "unauthorized", "a current bearer token is required")
		return
	case err != nil:
		a.reject(rw, http.StatusBadRequest, "malformed-request", "the body could not be read: "+err.Error())
		return
	case len(body) > maxBody:
		a.reject(rw, http.StatusRequestEntityTooLarge, "content-too-large", fmt.Sprintf("bodies are limited to %d bytes", maxBody))
		return
	}
	a.route(rw, r, body)
}

// limited reports whether the n-th request gets 429; a.hooks is held.
func (a *API) limited(n int) bool {
	if a.throttle > 0 {
		a.throttle--
		return true
	}
	if time.Now().Before(a.until) {
		return true
	}
	rl := a.opts.RateLimit
	return rl != nil && (rl.First > 0 && n <= rl.First || rl.Every > 0 && n%rl.Every == 0)
}

// route dispatches to the widget handlers.
func (a *API) route(w http.ResponseWriter, r *http.Request, body []byte) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == "/widgets":
		switch {
		case r.Method == http.MethodGet:
			a.list(w, r)
		case r.Method == http.MethodPost && !a.opts.PUTCreate:
			a.create(w, body)
		default:
			a.notAllowed(w, r, "GET, POST")
		}
	case strings.HasPrefix(path, "/widgets/") && !strings.Contains(path[len("/widgets/"):], "/"):
		id := path[len("/widgets/"):]
		switch r.Method {
		case http.MethodGet:
			a.get(w, id)
		case http.MethodPut:
			a.put(w, r, id, body)
		case http.MethodDelete:
			a.delete(w, id)
		default:
			a.notAllowed(w, r, "GET, PUT, DELETE")
		}
	default:
		a.reject(w, http.StatusNotFound, "not-found", "no resource at "+r.URL.Path)
	}
}

func (a *API) notAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	if a.opts.PUTCreate {
		allow = strings.Replace(allow, ", POST", "", 1)
	}
	w.Header().Set("Allow", allow)
	a.reject(w, http.StatusMethodNotAllowed, "method-not-allowed", r.Method+" is not allowed here; allowed: "+allow)
}

// reject answers a 4xx in the RejectBody convention: name is the problem type's last part.
func (a *API) reject(w http.ResponseWriter, status int, name, detail string) {
	switch a.opts.RejectBody {
	case RejectText:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, "%d %s: %s\n", status, http.StatusText(status), detail)
	case RejectEmpty:
		w.WriteHeader(status)
	default:
		writeJSON(w, status, "application/problem+json", map[string]any{
			"type": "urn:fakeapi:problem:" + name, "title": http.StatusText(status), "status": status, "detail": detail,
		})
	}
}

// recorder remembers the status sent, for the request log.
type recorder struct {
	http.ResponseWriter
	status int
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

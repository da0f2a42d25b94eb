// Package linearize checks a recorded history of HTTP requests for linearizability against a
// small sequential model of the resource under test, using porcupine.
//
// It takes plain data (one Op per request, with times relative to one origin) so that it
// depends on neither the firing engine nor the planner.
package linearize

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

// DefaultTimeout bounds a check when Check is given no timeout: the search is NP-hard, so an
// unbounded one could hang a run.
const DefaultTimeout = 10 * time.Second

// Verb is what a request tried to do, in the model's terms.
type Verb string

// The verbs; each model accepts the subset listed on its constructor.
const (
	Read            Verb = "read"             // observe the state; every model
	Write           Verb = "write"            // Register: (conditional) write of Action.Value
	Create          Verb = "create"           // KeySet: create the resource with Action.Key
	Request         Verb = "request"          // Idempotency: POST with idempotency key Action.Key
	Transition      Verb = "transition"       // StateMachine: fire transition Action.Name
	Take            Verb = "take"             // Counter: consume Action.N units
	Release         Verb = "release"          // Counter: give back Action.N units; DeleteInUse: close a dependent
	Delete          Verb = "delete"           // DeleteInUse: delete the subject
	CreateDependent Verb = "create-dependent" // DeleteInUse: create a resource referencing the subject
)

// Action is what one request tried; only the fields its Verb uses matter.
type Action struct {
	Verb Verb `json:"verb"`
	// Key is the unique key (KeySet) or the idempotency key (Idempotency).
	Key string `json:"key,omitempty"`
	// Version is the version a Register write is conditional on (If-Match, a body version);
	// empty means an unconditional write.
	Version string `json:"version,omitempty"`
	// Value is what a Register write stores, or the payload hash of an Idempotency request.
	Value string `json:"value,omitempty"`
	// Name is the StateMachine transition fired.
	Name string `json:"name,omitempty"`
	// N is the quantity a Counter take or release moves.
	N int `json:"n,omitempty"`
}

// Status says whether the server applied a request, as far as the response tells.
type Status int

// The statuses. A Read the server answered is Succeeded whatever it found (a 404 read of a
// deleted subject is a Succeeded read with Exists false).
const (
	Succeeded Status = iota + 1 // 2xx: the request took effect (or, for a read, observed the state)
	Rejected                    // the server refused it (409, 412, 404, 422, …): it had no effect
	Unknown                     // timeout, transport error or 5xx: it may or may not have taken effect
)

// String names the status for descriptions.
func (s Status) String() string {
	switch s {
	case Succeeded:
		return "ok"
	case Rejected:
		return "rejected"
	case Unknown:
		return "?"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// Outcome is what the response said; the observed fields are those its model reads.
type Outcome struct {
	Status Status `json:"status"`
	// Version is the version a Register read saw, or the new version a write reported
	// (ETag, body version); empty means not reported.
	Version string `json:"version,omitempty"`
	// Value is the value a Register read saw.
	Value string `json:"value,omitempty"`
	// ID is the resource id an Idempotency request returned; empty means not reported.
	ID string `json:"id,omitempty"`
	// State is the state a StateMachine read saw.
	State string `json:"state,omitempty"`
	// Count is what a read counted: resources with the key (KeySet, Idempotency) or the
	// remaining quantity (Counter).
	Count int `json:"count,omitempty"`
	// Exists is whether a DeleteInUse read found the subject.
	Exists bool `json:"exists,omitempty"`
}

// Op is one recorded request as the checker sees it.
type Op struct {
	// Client identifies who sent it (a racer index, or a distinct id for setup and reads);
	// requests from one client should not overlap. Any ints will do: they are renumbered.
	Client int `json:"client"`
	// Call and Return bound the request on one monotonic clock: Call no later than the
	// first byte was sent, Return no earlier than the response arrived. For an Unknown op
	// Return is when the client gave up (zero if never); the request may still take effect
	// at any later point, or never.
	Call   time.Duration `json:"call"`
	Return time.Duration `json:"return"`
	// Action is what the request tried, Outcome what the response said.
	Action  Action  `json:"action"`
	Outcome Outcome `json:"outcome"`
	// Label names the request in the visualization, e.g. "racer 3 PATCH /items/x → 409".
	Label string `json:"label,omitempty"`
}

// Verdict is the outcome of a check.
type Verdict string

// The verdicts.
const (
	VerdictOK        Verdict = "ok"        // some linearization explains every response
	VerdictViolation Verdict = "violation" // no order of the requests explains the responses
	VerdictUnknown   Verdict = "unknown"   // the search ran out of time
)

// Result is a verdict together with what is needed to draw it.
type Result struct {
	Verdict Verdict
	model   porcupine.Model
	info    porcupine.LinearizationInfo
}

// ErrNoResult is returned by WriteVisualization on a Result that Check did not produce.
var ErrNoResult = errors.New("linearize: no check result to visualize")

// Check reports whether history is linearizable against m, giving up with VerdictUnknown
// after timeout (DefaultTimeout when zero or negative). The error reports a history the
// model cannot interpret (a verb it does not know, an op that returns before its call).
func Check(m Model, history []Op, timeout time.Duration) (Result, error) {
	if m.verbs == nil {
		return Result{}, errors.New("linearize: zero Model; use a constructor such as Register")
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	clients := make([]int, 0, len(history))
	for i, op := range history {
		if err := m.validate(op); err != nil {
			return Result{}, fmt.Errorf("op %d %q: %w", i, op.Label, err)
		}
		clients = append(clients, op.Client)
	}
	slices.Sort(clients)
	clients = slices.Compact(clients)
	ops := make([]porcupine.Operation, len(history))
	for i, op := range history {
		ret := max(op.Return, op.Call) // an Unknown op may have no Return
		client, _ := slices.BinarySearch(clients, op.Client)
		ops[i] = porcupine.Operation{
			ClientId: client,
			Input:    op.Action,
			Call:     int64(op.Call),
			Output:   op.Outcome,
			Return:   int64(ret),
			Metadata: op.Label,
		}
	}
	res, info := porcupine.CheckOperationsVerbose(m.pm, ops, timeout)
	r := Result{Verdict: VerdictUnknown, model: m.pm, info: info}
	switch res {
	case porcupine.Ok:
		r.Verdict = VerdictOK
	case porcupine.Illegal:
		r.Verdict = VerdictViolation
	}
	return r, nil
}

// WriteVisualization writes porcupine's HTML view of the history and its longest partial
// linearizations to path, creating parent directories; it is most telling on a violation.
func (r Result) WriteVisualization(path string) error {
	if r.model.Init == nil {
		return ErrNoResult
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create visualization dir for %s: %w", path, err)
	}
	if err := porcupine.VisualizePath(r.model, r.info, path); err != nil {
		return fmt.Errorf("write visualization %s: %w", path, err)
	}
	return nil
}

func (m Model) validate(op Op) error {
	if !slices.Contains(m.verbs, op.Action.Verb) {
		return fmt.Errorf("model %s does not know verb %q (it knows %v)", m.name, op.Action.Verb, m.verbs)
	}
	switch op.Outcome.Status {
	case Succeeded, Rejected:
		if op.Return < op.Call {
			return fmt.Errorf("returns at %v, before its call at %v", op.Return, op.Call)
		}
	case Unknown:
	default:
		return fmt.Errorf("invalid outcome status %d", int(op.Outcome.Status))
	}
	if op.Action.N < 0 {
		return fmt.Errorf("negative quantity %d", op.Action.N)
	}
	if m.validateAction != nil {
		return m.validateAction(op.Action)
	}
	return nil
}

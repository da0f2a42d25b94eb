// Package xconflict is the typed form of the `x-conflict` OpenAPI extension (DESIGN.md): the
// conflict scenarios an operation declares, validated against openapi/x-conflict.schema.json.
package xconflict

// Kind is the kind of collision a scenario provokes.
type Kind string

// The kinds of DESIGN.md, spelled as in x-conflict.kind.
const (
	DuplicateCreate Kind = "duplicate-create"
	StaleUpdate     Kind = "stale-update"
	Transition      Kind = "transition"
	DeleteInUse     Kind = "delete-in-use"
	IdempotencyKey  Kind = "idempotency-key"
	Capacity        Kind = "capacity"
)

// Kinds lists every kind in DESIGN.md's order.
var Kinds = []Kind{DuplicateCreate, StaleUpdate, Transition, DeleteInUse, IdempotencyKey, Capacity}

// Conflict is one x-conflict object. A zero field was absent and is left to inference.
type Conflict struct {
	Kind        Kind              `json:"kind"`
	Expect      []int             `json:"expect,omitempty"`
	Subject     string            `json:"subject,omitempty"`
	Read        string            `json:"read,omitempty"`
	Bind        map[string]string `json:"bind,omitempty"`
	Key         []string          `json:"key,omitempty"`
	Version     *Version          `json:"version,omitempty"`
	Racers      []string          `json:"racers,omitempty"`
	Dependent   string            `json:"dependent,omitempty"`
	Resolve     string            `json:"resolve,omitempty"`
	Header      string            `json:"header,omitempty"`
	Invariant   *Invariant        `json:"invariant,omitempty"`
	Body        any               `json:"body,omitempty"`
	Concurrency int               `json:"concurrency,omitempty"`
}

// Version says where a stale-update's resource version lives: exactly one field is set.
type Version struct {
	// Header is a response header (e.g. ETag) whose value goes back in If-Match.
	Header string `json:"header,omitempty"`
	// Field is a JSON pointer to a version member of the body (e.g. /version).
	Field string `json:"field,omitempty"`
}

// Invariant is a capacity scenario's bounded quantity: Field of Read's response stays within
// [Min, Max] (a nil bound is open).
type Invariant struct {
	Read  string   `json:"read"`
	Field string   `json:"field"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
}

// OperationRefs returns the operationIds c names, with the field that names each, so a loader
// can report a reference to an operation the document lacks.
func (c Conflict) OperationRefs() []Ref {
	var refs []Ref
	add := func(field, id string) {
		if id != "" {
			refs = append(refs, Ref{Field: field, OperationID: id})
		}
	}
	add("subject", c.Subject)
	add("read", c.Read)
	add("dependent", c.Dependent)
	add("resolve", c.Resolve)
	for _, r := range c.Racers {
		add("racers", r)
	}
	if c.Invariant != nil {
		add("invariant.read", c.Invariant.Read)
	}
	return refs
}

// Ref is an operationId named by a field of an x-conflict object.
type Ref struct {
	Field       string
	OperationID string
}

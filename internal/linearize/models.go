package linearize

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/anishathalye/porcupine"
)

// Model is the sequential specification a history is checked against; build one with
// Register, KeySet, Idempotency, StateMachine, Counter or DeleteInUse.
type Model struct {
	name           string
	verbs          []Verb
	validateAction func(Action) error
	pm             porcupine.Model
}

// Name says which model this is, e.g. "register".
func (m Model) Name() string { return m.name }

// state is a model state: comparable (the checker compares states with ==) and keyed for
// hashing.
type state interface{ key() string }

// spec is what each model defines; newModel turns it into a porcupine model.
type spec struct {
	name      string
	verbs     []Verb
	init      state
	byKey     bool // partition the history by Action.Key: keys are independent
	validate  func(Action) error
	apply     func(s state, in Action, out Outcome) []state // for Status Succeeded or Rejected
	dead      func(s state, a Action) bool                  // optional: a can never take effect from s on
	describeS func(s state) string
	describeR func(out Outcome) string // what a succeeded read saw
}

func newModel(sp spec) Model {
	nm := porcupine.NondeterministicModel{
		Init: func() []any { return []any{world{core: sp.init}} },
		Step: func(s, in, out any) []any {
			next := s.(world).step(&sp, in.(Action), out.(Outcome))
			res := make([]any, len(next))
			for i, n := range next {
				res[i] = n
			}
			return res
		},
		Equal: func(a, b any) bool { return a == b },
		Hash: func(s any) uint64 {
			w := s.(world)
			h := fnv.New64a()
			h.Write([]byte(w.core.key()))
			h.Write([]byte{0})
			h.Write([]byte(w.pending))
			return h.Sum64()
		},
		DescribeOperation: func(in, out any) string {
			return describe(in.(Action), out.(Outcome), sp.describeR)
		},
		DescribeState: func(s any) string {
			w := s.(world)
			d := sp.describeS(w.core)
			if w.pending != "" {
				var calls []string
				for _, a := range decodePending(w.pending) {
					calls = append(calls, describeCall(a))
				}
				d += " (may still apply: " + strings.Join(calls, "; ") + ")"
			}
			return d
		},
		DescribeOperationMetadata: func(md any) string {
			label, _ := md.(string)
			return label
		},
	}
	if sp.byKey {
		nm.Partition = partitionByKey
	}
	return Model{name: sp.name, verbs: sp.verbs, validateAction: sp.validate, pm: nm.ToModel()}
}

func partitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	index := map[string]int{}
	var parts [][]porcupine.Operation
	for _, op := range history {
		k := op.Input.(Action).Key
		i, ok := index[k]
		if !ok {
			i = len(parts)
			index[k] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], op)
	}
	return parts
}

func describe(in Action, out Outcome, read func(Outcome) string) string {
	call := describeCall(in)
	ret := out.Status.String()
	switch {
	case out.Status != Succeeded:
	case in.Verb == Read:
		ret = read(out)
	case out.Version != "":
		ret += " " + out.Version
	case out.ID != "":
		ret += " id " + out.ID
	}
	return call + " → " + ret
}

func describeCall(in Action) string {
	var call string
	switch in.Verb {
	case Read:
		call = "read"
	case Write:
		call = "write " + strconv.Quote(in.Value)
		if in.Version != "" {
			call += " if " + in.Version
		}
	case Create:
		call = "create " + strconv.Quote(in.Key)
	case Request:
		call = fmt.Sprintf("request key %q payload %q", in.Key, in.Value)
	case Transition:
		call = in.Name
	case Take, Release:
		call = fmt.Sprintf("%s %d", in.Verb, in.N)
	default:
		call = string(in.Verb)
	}
	return call
}

func one(s state) []state { return []state{s} }

// KeySet models resources that are unique by a key (duplicate-create); keys are checked
// independently.
//
// Verbs: Create(Action.Key) succeeds iff the key is absent, and its rejection is legal iff it
// is present. Read(Action.Key) sees Outcome.Count resources with that key.
func KeySet() Model {
	return newModel(spec{
		name:  "key-set",
		verbs: []Verb{Read, Create},
		init:  present(false),
		byKey: true,
		dead:  func(s state, _ Action) bool { return bool(s.(present)) }, // keys are never deleted
		apply: func(st state, in Action, out Outcome) []state {
			p := bool(st.(present))
			switch {
			case in.Verb == Read && out.Count == count(p):
				return one(st)
			case in.Verb == Create && out.Status == Succeeded && !p:
				return one(present(true))
			case in.Verb == Create && out.Status == Rejected && p:
				return one(st)
			}
			return nil
		},
		describeS: func(s state) string { return fmt.Sprintf("%d with key", count(bool(s.(present)))) },
		describeR: func(out Outcome) string { return fmt.Sprintf("%d with key", out.Count) },
	})
}

type present bool

func (p present) key() string { return strconv.FormatBool(bool(p)) }

func count(p bool) int {
	if p {
		return 1
	}
	return 0
}

// Idempotency models requests carrying an idempotency key; keys are checked independently.
//
// Verbs: Request(Action.Key, payload hash Action.Value) succeeds with a new resource when the
// key is unseen; a later success for the key must be a replay: same payload and same
// Outcome.ID (an empty ID matches any). A rejection is always legal and has no effect (a key
// in flight may be refused while its first request is still undecided). Read(Action.Key) sees
// Outcome.Count resources created under the key.
func Idempotency() Model {
	return newModel(spec{
		name:  "idempotency",
		verbs: []Verb{Read, Request},
		init:  idemState{},
		byKey: true,
		dead:  func(s state, _ Action) bool { return s.(idemState).seen }, // a replay changes nothing
		apply: func(st state, in Action, out Outcome) []state {
			s := st.(idemState)
			switch {
			case in.Verb == Read && out.Count == count(s.seen):
				return one(s)
			case in.Verb == Request && out.Status == Rejected:
				return one(s)
			case in.Verb == Request && !s.seen:
				return one(idemState{seen: true, payload: in.Value, id: out.ID})
			case in.Verb == Request && in.Value == s.payload && (out.ID == "" || s.id == "" || out.ID == s.id):
				if s.id == "" {
					s.id = out.ID
				}
				return one(s)
			}
			return nil
		},
		describeS: func(s state) string {
			i := s.(idemState)
			if !i.seen {
				return "unseen"
			}
			id := i.id
			if id == "" {
				id = "?"
			}
			return fmt.Sprintf("id %s for payload %q", id, i.payload)
		},
		describeR: func(out Outcome) string { return fmt.Sprintf("%d with key", out.Count) },
	})
}

type idemState struct {
	seen        bool
	payload, id string
}

func (s idemState) key() string { return fmt.Sprintf("%t\x00%s\x00%s", s.seen, s.payload, s.id) }

// Edge is a StateMachine transition: it moves from any state in From to To.
type Edge struct {
	From []string
	To   string
}

// StateMachine models a resource with named transitions (transition), e.g.
// {"cancel": {From: ["placed"], To: "cancelled"}, "ship": {From: ["placed"], To: "shipped"}}.
//
// Verbs: Transition(Action.Name) succeeds iff the current state is in the edge's From, and its
// rejection is legal iff it is not. Read sees Outcome.State.
func StateMachine(initial string, edges map[string]Edge) Model {
	edges = maps.Clone(edges)
	reach := reachable(initial, edges)
	return newModel(spec{
		name:  "state-machine",
		verbs: []Verb{Read, Transition},
		init:  machineState(initial),
		dead: func(s state, a Action) bool {
			return !slices.ContainsFunc(reach[string(s.(machineState))], func(st string) bool { return slices.Contains(edges[a.Name].From, st) })
		},
		validate: func(in Action) error {
			if _, ok := edges[in.Name]; in.Verb == Transition && !ok {
				return fmt.Errorf("unknown transition %q", in.Name)
			}
			return nil
		},
		apply: func(st state, in Action, out Outcome) []state {
			cur := string(st.(machineState))
			if in.Verb == Read {
				if out.State == cur {
					return one(st)
				}
				return nil
			}
			e := edges[in.Name]
			allowed := slices.Contains(e.From, cur)
			switch {
			case out.Status == Succeeded && allowed:
				return one(machineState(e.To))
			case out.Status == Rejected && !allowed:
				return one(st)
			}
			return nil
		},
		describeS: func(s state) string { return string(s.(machineState)) },
		describeR: func(out Outcome) string { return out.State },
	})
}

type machineState string

// reachable maps every state the edges mention to the states reachable from it, itself
// included.
func reachable(initial string, edges map[string]Edge) map[string][]string {
	next := map[string][]string{initial: nil}
	for _, e := range edges {
		for _, f := range e.From {
			next[f] = append(next[f], e.To)
		}
		if _, ok := next[e.To]; !ok {
			next[e.To] = nil
		}
	}
	reach := map[string][]string{}
	for from := range next {
		seen := []string{from}
		for i := 0; i < len(seen); i++ {
			for _, to := range next[seen[i]] {
				if !slices.Contains(seen, to) {
					seen = append(seen, to)
				}
			}
		}
		reach[from] = seen
	}
	return reach
}

func (s machineState) key() string { return string(s) }

// Counter models a quantity that must not go below zero (capacity).
//
// Verbs: Take(Action.N) succeeds iff at least N remain, and its rejection is legal iff fewer
// do. Release(Action.N) gives N back when it succeeds; its rejection is always legal (the
// model does not track which reservation it releases). Read sees Outcome.Count remaining.
func Counter(initial int) Model {
	return newModel(spec{
		name:  "counter",
		verbs: []Verb{Read, Take, Release},
		init:  counterState(initial),
		apply: func(st state, in Action, out Outcome) []state {
			n := int(st.(counterState))
			switch {
			case in.Verb == Read && out.Count == n:
				return one(st)
			case in.Verb == Take && out.Status == Succeeded && n >= in.N:
				return one(counterState(n - in.N))
			case in.Verb == Take && out.Status == Rejected && n < in.N:
				return one(st)
			case in.Verb == Release && out.Status == Succeeded:
				return one(counterState(n + in.N))
			case in.Verb == Release && out.Status == Rejected:
				return one(st)
			}
			return nil
		},
		describeS: func(s state) string { return fmt.Sprintf("%d left", int(s.(counterState))) },
		describeR: func(out Outcome) string { return fmt.Sprintf("%d left", out.Count) },
	})
}

type counterState int

func (s counterState) key() string { return strconv.Itoa(int(s)) }

// DeleteInUse models a subject that must not be deleted while dependents reference it
// (delete-in-use); it starts existing with the given number of open dependents.
//
// Verbs: Delete succeeds iff the subject exists and has no dependents, and its rejection is
// legal otherwise. CreateDependent succeeds iff the subject exists, and its rejection is legal
// iff it does not. Release closes one dependent when it succeeds (legal only while there is
// one); its rejection is always legal. Read sees Outcome.Exists.
func DeleteInUse(dependents int) Model {
	return newModel(spec{
		name:  "delete-in-use",
		verbs: []Verb{Read, Delete, CreateDependent, Release},
		init:  subjectState{exists: true, dependents: dependents},
		dead:  func(s state, _ Action) bool { return !s.(subjectState).exists }, // a deleted subject stays deleted
		apply: func(st state, in Action, out Outcome) []state {
			s := st.(subjectState)
			ok := out.Status == Succeeded
			switch in.Verb {
			case Read:
				if out.Exists == s.exists {
					return one(s)
				}
			case Delete:
				if can := s.exists && s.dependents == 0; ok && can {
					return one(subjectState{})
				} else if !ok && !can {
					return one(s)
				}
			case CreateDependent:
				if ok && s.exists {
					s.dependents++
					return one(s)
				} else if !ok && !s.exists {
					return one(s)
				}
			case Release:
				if !ok {
					return one(s)
				}
				if s.dependents > 0 {
					s.dependents--
					return one(s)
				}
			}
			return nil
		},
		describeS: func(s state) string {
			d := s.(subjectState)
			if !d.exists {
				return "deleted"
			}
			return fmt.Sprintf("exists, %d dependents", d.dependents)
		},
		describeR: func(out Outcome) string {
			if out.Exists {
				return "exists"
			}
			return "gone"
		},
	})
}

type subjectState struct {
	exists     bool
	dependents int
}

func (s subjectState) key() string { return fmt.Sprintf("%t/%d", s.exists, s.dependents) }

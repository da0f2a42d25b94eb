package linearize

import (
	"slices"
	"strconv"
	"strings"
)

// Register models a versioned register (stale-update): state is (version, value).
//
// Verbs: Read sees Outcome.Version (when reported) and Outcome.Value. Write stores
// Action.Value; when Action.Version is set it succeeds iff that is the current version, and
// its rejection is legal iff it is not. A successful write moves to the version it reports,
// or to an unknown one when it reports none. Versions are opaque but, like a revision
// counter, never come back: a write that changes the value must move to a version that was
// never current before (an empty initialVersion means unknown).
func Register(initialVersion, initialValue string) Model {
	return newModel(spec{
		name:  "register",
		verbs: []Verb{Read, Write},
		init:  regState{version: initialVersion, value: initialValue},
		apply: registerApply,
		dead: func(s state, a Action) bool {
			return a.Version != "" && setHas(s.(regState).retired, a.Version)
		},
		describeS: func(s state) string {
			r := s.(regState)
			v := r.version
			if v == "" {
				v = "v?"
				if r.not != "" {
					v += " ∉ {" + strings.ReplaceAll(r.not, "\x00", ", ") + "}"
				}
			}
			return v + ": " + strconv.Quote(r.value)
		},
		describeR: func(out Outcome) string {
			v := out.Version
			if v == "" {
				v = "v?"
			}
			return v + ": " + strconv.Quote(out.Value)
		},
	})
}

// regState is the register. version is "" when unknown; then it is none of not. retired
// holds the versions that were current before and cannot come back. Sets are sorted and
// NUL-separated so that states stay comparable.
type regState struct {
	version, not, retired, value string
}

func (s regState) key() string {
	return strings.Join([]string{s.version, s.not, s.retired, s.value}, "\x00\x01")
}

// is reports whether the current version can be v, and the state with that bound.
func (s regState) is(v string) (bool, regState) {
	if s.version != "" {
		return s.version == v, s
	}
	if setHas(s.not, v) || setHas(s.retired, v) {
		return false, s
	}
	s.version, s.not = v, ""
	return true, s
}

// isNot reports whether the current version can differ from v, and the state knowing so.
func (s regState) isNot(v string) (bool, regState) {
	if s.version != "" {
		return s.version != v, s
	}
	if !setHas(s.retired, v) {
		s.not = setAdd(s.not, v)
	}
	return true, s
}

func registerApply(st state, in Action, out Outcome) []state {
	s := st.(regState)
	switch in.Verb {
	case Read:
		if out.Value != s.value {
			return nil
		}
		if out.Version == "" {
			return one(s)
		}
		if ok, b := s.is(out.Version); ok {
			return one(b)
		}
		return nil
	case Write:
		if out.Status == Rejected {
			if in.Version == "" {
				return nil // an unconditional write has nothing to conflict on
			}
			if ok, b := s.isNot(in.Version); ok {
				return one(b)
			}
			return nil
		}
		cur := s
		if in.Version != "" {
			ok, b := s.is(in.Version)
			if !ok {
				return nil
			}
			cur = b
		}
		if in.Value == cur.value && (out.Version == "" || out.Version == cur.version) {
			// Rewriting the same value may keep the version; leave it as it was, or
			// unknown-but-not-retired when not reported.
			if out.Version == "" {
				cur.version, cur.not = "", ""
			}
			return one(cur)
		}
		next := regState{retired: cur.retired, value: in.Value}
		if cur.version != "" {
			next.retired = setAdd(cur.retired, cur.version)
		}
		if out.Version != "" {
			if setHas(next.retired, out.Version) {
				return nil // the version did not advance
			}
			next.version = out.Version
		}
		return one(next)
	}
	return nil
}

func setHas(set, v string) bool {
	if set == "" {
		return false
	}
	_, found := slices.BinarySearch(strings.Split(set, "\x00"), v)
	return found
}

func setAdd(set, v string) string {
	if set == "" {
		return v
	}
	elems := strings.Split(set, "\x00")
	i, found := slices.BinarySearch(elems, v)
	if found {
		return set
	}
	return strings.Join(slices.Insert(elems, i, v), "\x00")
}

package linearize

import (
	"slices"
	"strconv"
	"strings"
)

// world is a model state plus the requests that timed out and may still take effect.
//
// An Unknown op is linearized as "enqueue" somewhere in its interval, and any later step may
// first apply any of the enqueued requests, in any order, or leave them pending for ever.
// That is exactly "it may have happened at any point after its call", but unlike keeping
// the op open to the end of the history it does not make the checker try every position of
// every timed-out request: worlds that differ only in when a no-op was placed are equal and
// merge in porcupine's cache.
type world struct {
	core    state
	pending string // sorted, length-prefixed encodings of the pending Actions (a multiset)
}

func (w world) step(sp *spec, in Action, out Outcome) []world {
	switch {
	case in.Verb == Read && out.Status != Succeeded:
		return []world{w} // a failed read observes nothing and changes nothing
	case out.Status == Unknown:
		if sp.dead != nil && sp.dead(w.core, in) {
			return []world{w}
		}
		return []world{{core: w.core, pending: addPending(w.pending, in)}}
	}
	var next []world
	for _, c := range w.expand(sp.apply) {
		for _, n := range sp.apply(c.core, in, out) {
			next = append(next, world{core: n, pending: prune(sp, n, c.pending)})
		}
	}
	return next
}

// prune drops the pending requests that can no longer take effect, so that worlds that
// differ only in them merge.
func prune(sp *spec, s state, pending string) string {
	if pending == "" || sp.dead == nil {
		return pending
	}
	enc := splitPending(pending)
	enc = slices.DeleteFunc(enc, func(e string) bool { return sp.dead(s, decodeAction(e)) })
	return strings.Join(enc, "")
}

// expand returns w and every world reached from it by applying some of its pending requests,
// as successes whose responses were never seen.
func (w world) expand(apply func(s state, in Action, out Outcome) []state) []world {
	all := []world{w}
	for i := 0; i < len(all); i++ {
		cur := all[i]
		if cur.pending == "" {
			continue
		}
		enc := splitPending(cur.pending)
		for j, e := range enc {
			if j > 0 && enc[j-1] == e {
				continue // the same request twice: applying either gives the same worlds
			}
			rest := strings.Join(slices.Delete(slices.Clone(enc), j, j+1), "")
			for _, n := range apply(cur.core, decodeAction(e), Outcome{Status: Succeeded}) {
				if nw := (world{core: n, pending: rest}); !slices.Contains(all, nw) {
					all = append(all, nw)
				}
			}
		}
	}
	return all
}

func addPending(pending string, a Action) string {
	enc := append(splitPending(pending), encodeAction(a))
	slices.Sort(enc)
	return strings.Join(enc, "")
}

func decodePending(pending string) []Action {
	var acts []Action
	for _, e := range splitPending(pending) {
		acts = append(acts, decodeAction(e))
	}
	return acts
}

// encodeAction writes a as one length-prefixed record of its actionFields length-prefixed
// fields.
func encodeAction(a Action) string {
	var b strings.Builder
	for _, f := range [actionFields]string{string(a.Verb), a.Key, a.Version, a.Value, a.Name, strconv.Itoa(a.N)} {
		b.WriteString(strconv.Itoa(len(f)))
		b.WriteByte(':')
		b.WriteString(f)
	}
	return strconv.Itoa(b.Len()) + ":" + b.String()
}

// actionFields is how many fields encodeAction writes.
const actionFields = 6

func decodeAction(rec string) Action {
	_, body, _ := nextRecord(rec)
	var f [actionFields]string
	for i := range f {
		_, f[i], body = nextRecord(body)
	}
	n, _ := strconv.Atoi(f[5])
	return Action{Verb: Verb(f[0]), Key: f[1], Version: f[2], Value: f[3], Name: f[4], N: n}
}

// splitPending splits a concatenation of length-prefixed records, keeping each prefix.
func splitPending(s string) []string {
	var recs []string
	for s != "" {
		var rec string
		rec, _, s = nextRecord(s)
		recs = append(recs, rec)
	}
	return recs
}

// nextRecord cuts the first "<len>:<body>" record off s: the whole record, its body, the rest.
func nextRecord(s string) (rec, body, rest string) {
	colon := strings.IndexByte(s, ':')
	n, _ := strconv.Atoi(s[:colon])
	end := colon + 1 + n
	return s[:end], s[colon+1 : end], s[end:]
}

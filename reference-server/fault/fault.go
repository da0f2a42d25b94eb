// Package fault names the defects the reference server can inject, one at a time, and the
// conflictcheck check that must catch each; `selftest` and the fault tests rely on this table.
package fault

import (
	"fmt"
	"strings"
	"time"
)

// Name identifies one injectable defect; the empty Name is the correct server.
type Name string

// The injectable faults. Their values are the spellings of `--fault`.
const (
	None            Name = ""
	Race            Name = "race"
	LostUpdate      Name = "lost-update"
	Status500       Name = "status-500"
	Status200       Name = "status-200"
	Status400       Name = "status-400"
	PartialWrite    Name = "partial-write"
	BadBody         Name = "bad-body"
	StaleETag       Name = "stale-etag"
	IdempotencyRace Name = "idempotency-race"
	DeleteOrphan    Name = "delete-orphan"
	PerReplicaLock  Name = "per-replica-lock"
	StaleRead       Name = "stale-read"
)

// DefaultRaceWindow is the check-then-act gap of the racy faults when `--race-window` is not
// given: wide enough that simultaneous racers land in it, narrow enough to stay realistic.
const DefaultRaceWindow = time.Millisecond

// StaleReadLag is how far behind the writes the stale-read fault's reads are served.
const StaleReadLag = time.Second

// Fault describes one defect: what it breaks and which checks (DESIGN.md check IDs) catch it,
// the first being the one selftest requires to fail.
type Fault struct {
	Name    Name
	Summary string
	Checks  []string
	// Postgres is set when the defect needs data shared by replicas to show.
	Postgres bool
}

// All lists every fault in a stable order.
var All = []Fault{
	{Race, "check-then-act without a lock: conditional writes read, wait --race-window, then write unconditionally", []string{"single-winner", "state-intact", "linearizable"}, false},
	{LostUpdate, "versions and ETags are ignored: every update wins and overwrites the others", []string{"sequential-conflict", "single-winner", "state-intact"}, false},
	{Status500, "conflicts are answered with 500 Internal Server Error", []string{"no-server-error", "conflict-status"}, false},
	{Status200, "conflicts are answered with 200 OK and nothing is written", []string{"conflict-status", "sequential-conflict"}, false},
	{Status400, "conflicts are answered with 400 Bad Request", []string{"conflict-status", "sequential-conflict"}, false},
	{PartialWrite, "a rejected write still applies the loser's name before answering 409/412", []string{"state-intact"}, false},
	{BadBody, "conflicts are answered 409/412 with a body that breaks the declared problem schema", []string{"conflict-body"}, false},
	{StaleETag, "after a conflict on an item, its fresh ETag and version keep failing", []string{"retry-succeeds"}, false},
	{IdempotencyRace, "idempotency keys are checked and recorded in two steps: concurrent requests with one key all execute", []string{"single-winner"}, false},
	{DeleteOrphan, "items are deleted without looking for placed orders that reference them", []string{"sequential-conflict", "single-winner"}, false},
	{PerReplicaLock, "check-then-act under a lock local to one process: correct alone, racy across replicas sharing PostgreSQL", []string{"single-winner"}, true},
	{StaleRead, "reads are served from a replica that lags one second behind the writes", []string{"state-intact", "linearizable"}, false},
}

// Parse returns the named fault, or an error listing the valid names.
func Parse(s string) (Fault, error) {
	if s == "" || s == "none" {
		return Fault{}, nil
	}
	for _, f := range All {
		if string(f.Name) == s {
			return f, nil
		}
	}
	names := make([]string, len(All))
	for i, f := range All {
		names[i] = string(f.Name)
	}
	return Fault{}, fmt.Errorf("unknown fault %q (one of: %s)", s, strings.Join(names, ", "))
}

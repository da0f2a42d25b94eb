package linearize

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// op is a recorded request from client over [call, ret] (in arbitrary units).
func op(client, call, ret int, a Action, o Outcome) Op {
	return Op{Client: client, Call: time.Duration(call), Return: time.Duration(ret), Action: a, Outcome: o,
		Label: fmt.Sprintf("client %d %s", client, a.Verb)}
}

var (
	ok       = Outcome{Status: Succeeded}
	rejected = Outcome{Status: Rejected}
	unknown  = Outcome{Status: Unknown}
	read     = Action{Verb: Read}
)

func write(ifVersion, value string) Action {
	return Action{Verb: Write, Version: ifVersion, Value: value}
}
func wrote(version string) Outcome { return Outcome{Status: Succeeded, Version: version} }
func saw(version, value string) Outcome {
	return Outcome{Status: Succeeded, Version: version, Value: value}
}
func create(key string) Action           { return Action{Verb: Create, Key: key} }
func readKey(key string) Action          { return Action{Verb: Read, Key: key} }
func counted(n int) Outcome              { return Outcome{Status: Succeeded, Count: n} }
func request(key, payload string) Action { return Action{Verb: Request, Key: key, Value: payload} }
func created(id string) Outcome          { return Outcome{Status: Succeeded, ID: id} }
func fire(name string) Action            { return Action{Verb: Transition, Name: name} }
func inState(s string) Outcome           { return Outcome{Status: Succeeded, State: s} }
func take(n int) Action                  { return Action{Verb: Take, N: n} }
func release(n int) Action               { return Action{Verb: Release, N: n} }
func exists(e bool) Outcome              { return Outcome{Status: Succeeded, Exists: e} }

var (
	deleteSubject = Action{Verb: Delete}
	addDependent  = Action{Verb: CreateDependent}
)

func orders() Model {
	return StateMachine("placed", map[string]Edge{
		"cancel": {From: []string{"placed"}, To: "cancelled"},
		"ship":   {From: []string{"placed"}, To: "shipped"},
	})
}

func reopenable() Model {
	return StateMachine("placed", map[string]Edge{
		"cancel": {From: []string{"placed"}, To: "cancelled"},
		"reopen": {From: []string{"cancelled"}, To: "placed"},
	})
}

func TestCheck(t *testing.T) {
	t.Parallel()
	reg := func() Model { return Register("v1", "orig") }
	tests := []struct {
		name    string
		model   Model
		history []Op
		want    Verdict
	}{
		// Register (stale-update).
		{"register: two racers from v1 both win", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), wrote("v2")),
			op(2, 0, 10, write("v1", "b"), wrote("v3")),
		}, VerdictViolation},
		{"register: two racers win, versions not reported", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), ok),
			op(2, 0, 10, write("v1", "b"), ok),
		}, VerdictViolation},
		{"register: one wins, one rejected", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), wrote("v2")),
			op(2, 0, 10, write("v1", "b"), rejected),
		}, VerdictOK},
		{"register: read after the race shows the loser's value", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), wrote("v2")),
			op(2, 0, 10, write("v1", "b"), rejected),
			op(9, 20, 30, read, saw("v2", "b")),
		}, VerdictViolation},
		{"register: read after the race shows the winner's value", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), wrote("v2")),
			op(2, 0, 10, write("v1", "b"), rejected),
			op(9, 20, 30, read, saw("v2", "a")),
		}, VerdictOK},
		{"register: read shows the winner's value under the old version", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), wrote("v2")),
			op(2, 0, 10, write("v1", "b"), rejected),
			op(9, 20, 30, read, saw("v1", "a")),
		}, VerdictViolation},
		{"register: stale version reported after a write lets a second racer win", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), wrote("v1")),
			op(2, 0, 10, write("v1", "b"), wrote("v2")),
		}, VerdictViolation},
		{"register: sequential write on the current version rejected", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), rejected),
		}, VerdictViolation},
		{"register: loser retries on the new version", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), wrote("v2")),
			op(2, 0, 10, write("v1", "b"), rejected),
			op(2, 20, 30, read, saw("v2", "a")),
			op(2, 40, 50, write("v2", "b"), wrote("v3")),
			op(9, 60, 70, read, saw("v3", "b")),
		}, VerdictOK},
		{"register: unknown initial version bound by the first read", Register("", "orig"), []Op{
			op(9, 0, 10, read, saw("e1", "orig")),
			op(1, 20, 30, write("e1", "a"), ok),
			op(2, 20, 30, write("e1", "b"), rejected),
			op(9, 40, 50, read, saw("e2", "a")),
		}, VerdictOK},
		{"register: unreported new version cannot be the old one", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), ok),
			op(9, 20, 30, read, saw("v1", "a")),
		}, VerdictViolation},
		{"register: version learned to differ through a rejection", Register("", "orig"), []Op{
			op(1, 0, 10, write("e0", "a"), rejected),
			op(9, 20, 30, read, saw("e0", "orig")),
		}, VerdictViolation},
		{"register: a retired version never comes back", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), wrote("v2")),
			op(1, 20, 30, write("v2", "b"), wrote("v1")),
		}, VerdictViolation},
		{"register: rewriting the same value may keep the version", reg(), []Op{
			op(1, 0, 10, write("v1", "orig"), wrote("v1")),
			op(9, 20, 30, read, saw("v1", "orig")),
		}, VerdictOK},
		{"register: unconditional write rejected", reg(), []Op{
			op(1, 0, 10, write("", "a"), rejected),
		}, VerdictViolation},
		// Unknown (timed-out) operations.
		{"unknown: timed-out write, later read sees its value", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), unknown),
			op(9, 20, 30, read, saw("v7", "a")),
		}, VerdictOK},
		{"unknown: timed-out write, later read sees the old value", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), unknown),
			op(9, 20, 30, read, saw("v1", "orig")),
		}, VerdictOK},
		{"unknown: timed-out write takes effect between two reads", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), unknown),
			op(9, 20, 30, read, saw("v1", "orig")),
			op(9, 40, 50, read, saw("v2", "a")),
		}, VerdictOK},
		{"unknown: timed-out write cannot be undone", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), unknown),
			op(9, 20, 30, read, saw("v2", "a")),
			op(9, 40, 50, read, saw("v1", "orig")),
		}, VerdictViolation},
		{"unknown: a read cannot see a value nobody wrote", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), unknown),
			op(9, 20, 30, read, saw("v2", "c")),
		}, VerdictViolation},
		{"unknown: every racer timed out, one of them took effect", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), unknown),
			op(2, 0, 10, write("v1", "b"), unknown),
			op(9, 20, 30, read, saw("v2", "b")),
			op(9, 40, 50, read, saw("v2", "b")),
		}, VerdictOK},
		{"unknown: two timed-out racers on one version cannot both take effect", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), unknown),
			op(2, 0, 10, write("v1", "b"), unknown),
			op(9, 20, 30, read, saw("", "b")),
			op(9, 40, 50, read, saw("", "a")),
		}, VerdictViolation},
		{"unknown: a timed-out read observes nothing", reg(), []Op{
			op(1, 0, 10, write("v1", "a"), wrote("v2")),
			op(9, 20, 30, read, unknown),
			op(9, 40, 50, read, saw("v2", "a")),
		}, VerdictOK},
		// KeySet (duplicate-create).
		{"key set: two creates of one key succeed", KeySet(), []Op{
			op(1, 0, 10, create("sku-1"), ok),
			op(2, 0, 10, create("sku-1"), ok),
		}, VerdictViolation},
		{"key set: one create wins, one rejected, one resource", KeySet(), []Op{
			op(1, 0, 10, create("sku-1"), ok),
			op(2, 0, 10, create("sku-1"), rejected),
			op(9, 20, 30, readKey("sku-1"), counted(1)),
		}, VerdictOK},
		{"key set: one create wins but two resources listed", KeySet(), []Op{
			op(1, 0, 10, create("sku-1"), ok),
			op(2, 0, 10, create("sku-1"), rejected),
			op(9, 20, 30, readKey("sku-1"), counted(2)),
		}, VerdictViolation},
		{"key set: create rejected though the key is free", KeySet(), []Op{
			op(1, 0, 10, create("sku-1"), rejected),
		}, VerdictViolation},
		{"key set: distinct keys are independent", KeySet(), []Op{
			op(1, 0, 10, create("sku-1"), ok),
			op(2, 0, 10, create("sku-2"), ok),
			op(9, 20, 30, readKey("sku-2"), counted(1)),
		}, VerdictOK},
		{"key set: timed-out duplicate of an existing key changes nothing", KeySet(), []Op{
			op(1, 0, 10, create("sku-1"), ok),
			op(2, 20, 30, create("sku-1"), unknown),
			op(9, 40, 50, readKey("sku-1"), counted(1)),
		}, VerdictOK},
		{"key set: timed-out create may or may not exist", KeySet(), []Op{
			op(1, 0, 10, create("sku-1"), unknown),
			op(9, 20, 30, readKey("sku-1"), counted(0)),
			op(9, 40, 50, readKey("sku-1"), counted(1)),
		}, VerdictOK},
		// Idempotency (idempotency-key).
		{"idempotency: two distinct ids for one key", Idempotency(), []Op{
			op(1, 0, 10, request("k1", "p"), created("o1")),
			op(2, 0, 10, request("k1", "p"), created("o2")),
		}, VerdictViolation},
		{"idempotency: the same id replayed", Idempotency(), []Op{
			op(1, 0, 10, request("k1", "p"), created("o1")),
			op(2, 0, 10, request("k1", "p"), created("o1")),
			op(2, 20, 30, request("k1", "p"), created("o1")),
			op(9, 40, 50, readKey("k1"), counted(1)),
		}, VerdictOK},
		{"idempotency: a concurrent duplicate refused as in flight", Idempotency(), []Op{
			op(1, 0, 10, request("k1", "p"), created("o1")),
			op(2, 0, 10, request("k1", "p"), rejected),
		}, VerdictOK},
		{"idempotency: a reused key with another payload accepted", Idempotency(), []Op{
			op(1, 0, 10, request("k1", "p"), created("o1")),
			op(2, 20, 30, request("k1", "q"), created("o1")),
		}, VerdictViolation},
		{"idempotency: two resources created under one key", Idempotency(), []Op{
			op(1, 0, 10, request("k1", "p"), created("o1")),
			op(2, 0, 10, request("k1", "p"), created("")),
			op(9, 20, 30, readKey("k1"), counted(2)),
		}, VerdictViolation},
		{"idempotency: timed-out first request, retry and replay agree", Idempotency(), []Op{
			op(1, 0, 10, request("k1", "p"), unknown),
			op(1, 20, 30, request("k1", "p"), created("o7")),
			op(2, 40, 50, request("k1", "p"), created("o7")),
		}, VerdictOK},
		// StateMachine (transition).
		{"state machine: cancel and ship both win from placed", orders(), []Op{
			op(1, 0, 10, fire("cancel"), ok),
			op(2, 0, 10, fire("ship"), ok),
		}, VerdictViolation},
		{"state machine: ship refused with 409", orders(), []Op{
			op(1, 0, 10, fire("cancel"), ok),
			op(2, 0, 10, fire("ship"), rejected),
			op(9, 20, 30, read, inState("cancelled")),
		}, VerdictOK},
		{"state machine: read shows shipped after cancel won", orders(), []Op{
			op(1, 0, 10, fire("cancel"), ok),
			op(2, 0, 10, fire("ship"), rejected),
			op(9, 20, 30, read, inState("shipped")),
		}, VerdictViolation},
		{"state machine: both refused from placed", orders(), []Op{
			op(1, 0, 10, fire("cancel"), rejected),
			op(2, 0, 10, fire("ship"), rejected),
		}, VerdictViolation},
		{"state machine: timed-out ship, then cancel refused", orders(), []Op{
			op(2, 0, 10, fire("ship"), unknown),
			op(1, 20, 30, fire("cancel"), rejected),
			op(9, 40, 50, read, inState("shipped")),
		}, VerdictOK},
		{"state machine: timed-out cancel takes effect after a reopen", reopenable(), []Op{
			op(1, 0, 10, fire("cancel"), ok),
			op(2, 0, 10, fire("cancel"), unknown),
			op(3, 20, 30, fire("reopen"), ok),
			op(9, 40, 50, read, inState("cancelled")),
		}, VerdictOK},
		{"state machine: without reopen, a pending cancel cannot undo ship", orders(), []Op{
			op(2, 0, 10, fire("cancel"), unknown),
			op(1, 20, 30, fire("ship"), ok),
			op(9, 40, 50, read, inState("cancelled")),
		}, VerdictViolation},
		// Counter (capacity).
		{"counter: one left, two takes win", Counter(1), []Op{
			op(1, 0, 10, take(1), ok),
			op(2, 0, 10, take(1), ok),
		}, VerdictViolation},
		{"counter: one left, one take wins, read shows 0", Counter(1), []Op{
			op(1, 0, 10, take(1), ok),
			op(2, 0, 10, take(1), rejected),
			op(9, 20, 30, read, counted(0)),
		}, VerdictOK},
		{"counter: read shows -1", Counter(1), []Op{
			op(1, 0, 10, take(1), ok),
			op(2, 0, 10, take(1), rejected),
			op(9, 20, 30, read, counted(-1)),
		}, VerdictViolation},
		{"counter: take refused while stock remains", Counter(2), []Op{
			op(1, 0, 10, take(1), ok),
			op(2, 20, 30, take(1), rejected),
		}, VerdictViolation},
		{"counter: release makes room for the retry", Counter(1), []Op{
			op(1, 0, 10, take(1), ok),
			op(2, 0, 10, take(1), rejected),
			op(1, 20, 30, release(1), ok),
			op(2, 40, 50, take(1), ok),
			op(9, 60, 70, read, counted(0)),
		}, VerdictOK},
		{"counter: timed-out take may or may not have consumed", Counter(2), []Op{
			op(1, 0, 10, take(1), unknown),
			op(2, 20, 30, take(1), ok),
			op(9, 40, 50, read, counted(0)),
		}, VerdictOK},
		// DeleteInUse (delete-in-use).
		{"delete-in-use: dependent created after the delete succeeded", DeleteInUse(0), []Op{
			op(1, 0, 10, deleteSubject, ok),
			op(2, 20, 30, addDependent, ok),
		}, VerdictViolation},
		{"delete-in-use: delete and dependent racing both win", DeleteInUse(0), []Op{
			op(1, 0, 10, deleteSubject, ok),
			op(2, 0, 10, addDependent, ok),
		}, VerdictViolation},
		{"delete-in-use: dependent released before the delete", DeleteInUse(0), []Op{
			op(2, 0, 10, addDependent, ok),
			op(2, 20, 30, release(1), ok),
			op(1, 40, 50, deleteSubject, ok),
			op(9, 60, 70, read, exists(false)),
		}, VerdictOK},
		{"delete-in-use: delete wins the race, dependent refused", DeleteInUse(0), []Op{
			op(1, 0, 10, deleteSubject, ok),
			op(2, 0, 10, addDependent, rejected),
			op(9, 20, 30, read, exists(false)),
		}, VerdictOK},
		{"delete-in-use: deleted subject still readable", DeleteInUse(0), []Op{
			op(1, 0, 10, deleteSubject, ok),
			op(9, 20, 30, read, exists(true)),
		}, VerdictViolation},
		{"delete-in-use: delete refused while in use", DeleteInUse(1), []Op{
			op(1, 0, 10, deleteSubject, rejected),
			op(9, 20, 30, read, exists(true)),
		}, VerdictOK},
		{"delete-in-use: delete accepted while in use", DeleteInUse(1), []Op{
			op(1, 0, 10, deleteSubject, ok),
		}, VerdictViolation},
		{"empty history", KeySet(), nil, VerdictOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := Check(tt.model, tt.history, 5*time.Second)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if res.Verdict != tt.want {
				t.Errorf("verdict %s, want %s", res.Verdict, tt.want)
			}
		})
	}
}

func TestCheckRejectsUninterpretableHistories(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		model Model
		op    Op
		want  string
	}{
		{"verb unknown to the model", KeySet(), op(1, 0, 10, take(1), ok), `does not know verb "take"`},
		{"unknown transition", orders(), op(1, 0, 10, fire("refund"), ok), `unknown transition "refund"`},
		{"returns before its call", Counter(1), op(1, 10, 5, take(1), ok), "before its call"},
		{"no status", Counter(1), op(1, 0, 10, take(1), Outcome{}), "invalid outcome status"},
		{"negative quantity", Counter(1), op(1, 0, 10, take(-1), ok), "negative quantity"},
		{"zero model", Model{}, op(1, 0, 10, take(1), ok), "zero Model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Check(tt.model, []Op{tt.op}, time.Second)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestUnknownTakesEffectAfterGivingUp shows that a timed-out request may take effect after
// the client gave up on it.
func TestUnknownTakesEffectAfterGivingUp(t *testing.T) {
	t.Parallel()
	res, err := Check(Register("v1", "orig"), []Op{
		op(1, 0, 1, write("v1", "a"), unknown),
		op(9, 20, 30, read, saw("v1", "orig")),
		op(9, 40, 50, read, saw("v2", "a")),
	}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != VerdictOK {
		t.Fatalf("verdict %s, want ok", res.Verdict)
	}
}

// raceRounds builds rounds × racers conditional writes: in each round every racer writes on
// the current version at once, one wins and the others are refused; when doubleWin is set,
// round rounds/2 has two winners.
func raceRounds(racers, rounds int, doubleWin bool) []Op {
	var ops []Op
	for r := range rounds {
		version := fmt.Sprintf("v%d", r)
		for c := range racers {
			call := r*1000 + c
			ret := r*1000 + 500 + 37*c%200
			out := rejected
			if c == r%racers || (doubleWin && r == rounds/2 && c == (r+1)%racers) {
				out = wrote(fmt.Sprintf("v%d", r+1))
			}
			ops = append(ops, op(c, call, ret, write(version, fmt.Sprintf("r%d c%d", r, c)), out))
		}
	}
	return ops
}

// timeOut turns every rejection into a timeout, as a server answering 500 instead of 409
// would.
func timeOut(h []Op) []Op {
	for i := range h {
		if h[i].Outcome.Status == Rejected {
			h[i].Outcome = unknown
		}
	}
	return h
}

func TestCheckLongHistory(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		doubleWin bool
		timeouts  bool
		want      Verdict
	}{
		{"correct", false, false, VerdictOK},
		{"two winners in one round", true, false, VerdictViolation},
		{"losers time out", false, true, VerdictOK},
		{"losers time out, two winners in one round", true, true, VerdictViolation},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := raceRounds(8, 25, tt.doubleWin)
			if tt.timeouts {
				h = timeOut(h)
			}
			if len(h) != 200 {
				t.Fatalf("history has %d ops, want 200", len(h))
			}
			start := time.Now()
			res, err := Check(Register("v0", "orig"), h, 20*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tt.want {
				t.Fatalf("verdict %s after %v, want %s", res.Verdict, time.Since(start), tt.want)
			}
		})
	}
}

// TestCheckTimeout uses a history whose search is exponential: 24 concurrent unconditional
// writes and a read of a value none of them wrote.
func TestCheckTimeout(t *testing.T) {
	t.Parallel()
	var h []Op
	for c := range 24 {
		h = append(h, op(c, 0, 10+c, write("", fmt.Sprintf("w%d", c)), ok))
	}
	h = append(h, op(99, 100, 110, read, saw("", "nobody")))
	start := time.Now()
	res, err := Check(Register("", "orig"), h, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != VerdictUnknown {
		t.Errorf("verdict %s, want unknown", res.Verdict)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("check took %v despite a 50ms timeout", d)
	}
}

func TestWriteVisualization(t *testing.T) {
	t.Parallel()
	h := []Op{
		op(1, 0, 10, fire("cancel"), ok),
		op(2, 0, 10, fire("ship"), ok),
	}
	h[1].Label = "racer 2 POST /orders/o1/ship → 200"
	res, err := Check(orders(), h, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != VerdictViolation {
		t.Fatalf("verdict %s, want violation", res.Verdict)
	}
	path := filepath.Join(t.TempDir(), "sub", "dir", "linearizable.html")
	if err := res.WriteVisualization(path); err != nil {
		t.Fatalf("WriteVisualization: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<html", "racer 2 POST /orders/o1/ship", "ship → ok", "placed"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("visualization lacks %q", want)
		}
	}
	if err := (Result{}).WriteVisualization(path); !errors.Is(err, ErrNoResult) {
		t.Errorf("zero Result: error %v, want ErrNoResult", err)
	}
}

func BenchmarkCheckRegister(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    []Op
		want Verdict
	}{
		{"ok", raceRounds(8, 25, false), VerdictOK},
		{"violation", raceRounds(8, 25, true), VerdictViolation},
		{"timeouts-ok", timeOut(raceRounds(8, 25, false)), VerdictOK},
		{"timeouts-violation", timeOut(raceRounds(8, 25, true)), VerdictViolation},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := Register("v0", "orig")
			for b.Loop() {
				res, err := Check(m, bc.h, time.Minute)
				if err != nil || res.Verdict != bc.want {
					b.Fatalf("verdict %s, err %v", res.Verdict, err)
				}
			}
		})
	}
}

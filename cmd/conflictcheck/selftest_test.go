package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/conflictcheck/conflictcheck/internal/pgtest"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
)

// selftestJSON is the --json output of selftest.
type selftestJSON struct {
	Clean  string `json:"clean"`
	Faults map[string]struct {
		Expected []string `json:"expected"`
		Failed   []string `json:"failed"`
		Caught   bool     `json:"caught"`
	} `json:"faults"`
	Skipped map[string]string `json:"skipped"`
}

// The memory selftest end to end: this test binary runs as `conflictcheck selftest`, which runs
// this test binary again as `conflictcheck run` for the clean server and every fault.
func TestSelftestMemory(t *testing.T) {
	r := runCLI(t, "", "selftest", "--json")
	if r.code != exitOK {
		t.Fatalf("selftest exited %d; want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &top); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, r.stdout)
	}
	keys := slices.Sorted(maps.Keys(top))
	if want := []string{"clean", "faults", "skipped"}; !slices.Equal(keys, want) {
		t.Errorf("top-level keys %v; want %v", keys, want)
	}
	if strings.Contains(r.stdout, "null") {
		t.Errorf("JSON has a null: %s", r.stdout)
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	var got selftestJSON
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode %s: %v", r.stdout, err)
	}
	if got.Clean != "pass" {
		t.Errorf("clean = %q; want pass", got.Clean)
	}
	for _, f := range fault.All {
		name := string(f.Name)
		if f.Postgres {
			if reason := got.Skipped[name]; reason != "needs --store postgres" {
				t.Errorf("skipped[%s] = %q; want %q", name, reason, "needs --store postgres")
			}
			if _, ran := got.Faults[name]; ran {
				t.Errorf("%s ran on the memory store", name)
			}
			continue
		}
		res, ok := got.Faults[name]
		if !ok {
			t.Errorf("fault %s missing from %s", name, r.stdout)
			continue
		}
		if !res.Caught {
			t.Errorf("fault %s not caught: expected %v, failed %v", name, res.Expected, res.Failed)
		}
		if !slices.Equal(res.Expected, f.Checks) {
			t.Errorf("%s expected = %v; want %v", name, res.Expected, f.Checks)
		}
		if !slices.IsSorted(res.Failed) {
			t.Errorf("%s failed = %v; want sorted", name, res.Failed)
		}
	}
	if len(got.Faults)+len(got.Skipped) != len(fault.All) {
		t.Errorf("%d faults and %d skipped; want %d in all", len(got.Faults), len(got.Skipped), len(fault.All))
	}
	// Progress: a line per run on stderr, the clean run first.
	if !strings.Contains(r.stderr, "selftest: clean            pass") || !strings.Contains(r.stderr, "selftest: per-replica-lock skipped: needs --store postgres") {
		t.Errorf("stderr lacks the progress lines:\n%s", r.stderr)
	}
}

// The postgres selftest: two replicas share one database, so per-replica-lock shows.
func TestSelftestPostgres(t *testing.T) {
	url := pgtest.Start(t).CreateDB(t)
	r := runCLI(t, "", "selftest", "--store", "postgres", "--database-url", url)
	if r.code != exitOK {
		t.Fatalf("selftest exited %d; want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "selftest: postgres store, 2 replicas;") {
		t.Errorf("stderr does not announce two replicas:\n%s", r.stderr)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	for _, f := range append([]fault.Fault{{Name: "clean"}}, fault.All...) {
		row := rows[string(f.Name)]
		want := "yes"
		if f.Name == "clean" {
			want = "pass"
		}
		if len(row) != 10 || row[9] != want {
			t.Errorf("matrix row %q; want 8 cells and %q\n%s", row, want, r.stdout)
		}
	}
	// per-replica-lock's expected check (single-winner, column 3) failed.
	if row := rows[string(fault.PerReplicaLock)]; len(row) == 10 && row[3] != "[X]" {
		t.Errorf("per-replica-lock row %q: single-winner cell %q; want [X]", row, row[3])
	}
	if !strings.Contains(r.stdout, "selftest ok (postgres store): clean run pass, 12 of 12 faults caught, 0 skipped") {
		t.Errorf("summary line missing:\n%s", r.stdout)
	}
}

func TestSelftestBadFlags(t *testing.T) {
	const secret = "s3cret"
	tests := []struct {
		name  string
		args  []string
		dbEnv string
		want  string
	}{
		{"unknown store", []string{"selftest", "--store", "nope"}, "", `unknown --store "nope" (one of: memory, postgres)`},
		{"postgres without a URL", []string{"selftest", "--store", "postgres"}, "", "--store postgres needs --database-url (or $DATABASE_URL)"},
		{
			"unreachable database from the flag",
			[]string{"selftest", "--store", "postgres", "--database-url", "postgres://u:" + secret + "@127.0.0.1:1/inventory?connect_timeout=2"}, "",
			"selftest: clean: start the reference server (postgres store): open postgres 127.0.0.1:1/inventory",
		},
		{
			"unreachable database from $DATABASE_URL",
			[]string{"selftest", "--store", "postgres"}, "postgres://u:" + secret + "@127.0.0.1:1/inventory?connect_timeout=2",
			"open postgres 127.0.0.1:1/inventory",
		},
		{"stray argument", []string{"selftest", "now"}, "", `unknown command "now"`},
		{"bad --json value", []string{"selftest", "--json=maybe"}, "", "invalid argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DATABASE_URL", tt.dbEnv)
			var stdout, stderr bytes.Buffer
			code := executeIO(t.Context(), tt.args, &stdout, &stderr)
			if code != exitBadInput {
				t.Errorf("exit %d; want 2", code)
			}
			msg := stderr.String()
			if strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "conflictcheck: ") {
				t.Errorf("stderr %q; want one line starting conflictcheck:", msg)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("stderr %q does not contain %q", msg, tt.want)
			}
			if strings.Contains(msg+stdout.String(), secret) {
				t.Errorf("output shows the database password: %q", msg)
			}
		})
	}
}

func TestSelftestHelpHidesDatabaseURL(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://u:hunter2@db.example/inventory")
	var stdout, stderr bytes.Buffer
	if code := executeIO(t.Context(), []string{"selftest", "--help"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d; want 0: %s", code, stderr.String())
	}
	out := stdout.String() + stderr.String()
	if strings.Contains(out, "hunter2") || strings.Contains(out, "db.example") {
		t.Errorf("--help shows $DATABASE_URL:\n%s", out)
	}
	if !strings.Contains(out, "(default $DATABASE_URL)") {
		t.Errorf("--help does not name $DATABASE_URL as the default:\n%s", out)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlanCommand(t *testing.T) {
	dir := t.TempDir()
	ref := referenceSpecFile(t, dir)
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("openapi: 4.0.0\ninfo: {title: x, version: '1'}\npaths: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     []string
		stderrLine string
	}{
		{"reference table", []string{"plan", "--spec", ref}, exitOK,
			[]string{"duplicate-create", "stale-update", "transition", "delete-in-use", "idempotency-key", "capacity", "POST /items"}, ""},
		{"missing spec flag", []string{"plan"}, exitBadInput, nil, "spec"},
		{"missing file", []string{"plan", "--spec", filepath.Join(dir, "nope.yaml")}, exitBadInput, nil, "nope.yaml"},
		{"unsupported version", []string{"plan", "--spec", bad}, exitBadInput, nil, "4.0.0"},
		{"missing overlay", []string{"plan", "--spec", ref, "--overlay", filepath.Join(dir, "none.yaml")}, exitBadInput, nil, "none.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if got := executeIO(t.Context(), tt.args, &out, &errb); got != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", got, tt.code, errb.String())
			}
			for _, want := range tt.stdout {
				if !strings.Contains(out.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, out.String())
				}
			}
			if tt.stderrLine != "" {
				msg := errb.String()
				if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, tt.stderrLine) {
					t.Errorf("stderr = %q, want one line naming %q", msg, tt.stderrLine)
				}
			}
		})
	}
}

func TestPlanCommandJSON(t *testing.T) {
	ref := referenceSpecFile(t, t.TempDir())
	var out, errb bytes.Buffer
	if code := executeIO(t.Context(), []string{"plan", "--spec", ref, "--json"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var p struct {
		Spec      struct{ Title, Version, OpenAPI string }
		Scenarios []struct {
			ID, Kind, Operation, Method, Path, Source, Read, Subject string
			Expect                                                   []int
		}
		Uncovered []any
		Warnings  []string
	}
	if err := json.Unmarshal(out.Bytes(), &p); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out.String())
	}
	kinds := map[string]bool{}
	for _, s := range p.Scenarios {
		kinds[s.Kind] = true
	}
	if len(kinds) != 6 || p.Spec.OpenAPI != "3.0.3" {
		t.Errorf("kinds %v, spec %+v; want all six kinds of OpenAPI 3.0.3", kinds, p.Spec)
	}
}

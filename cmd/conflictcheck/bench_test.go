package main

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"slices"
	"testing"
)

func TestBenchJSON(t *testing.T) {
	var stdout bytes.Buffer
	code := executeIO(t.Context(), []string{"bench", "--json", "--trials", "3"}, &stdout, io.Discard)
	out := stdout.Bytes()
	if code != exitOK {
		t.Fatalf("bench --json exited %d; want 0", code)
	}
	var res struct {
		CPUs   int `json:"cpus"`
		Trials int `json:"trials"`
		Modes  map[string]struct {
			Spread    map[string]map[string]float64 `json:"spread_us"`
			Detection map[string]map[string]float64 `json:"detection"`
		} `json:"modes"`
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("bench --json printed %q: %v", out, err)
	}
	if dec.More() {
		t.Errorf("bench --json printed more than one JSON value: %q", out)
	}
	if res.CPUs < 1 || res.Trials != 3 {
		t.Errorf("cpus, trials = %d, %d; want ≥ 1, 3", res.CPUs, res.Trials)
	}
	if got := slices.Sorted(maps.Keys(res.Modes)); !slices.Equal(got, []string{"barrier", "h2", "lastbyte"}) {
		t.Fatalf("modes = %v; want barrier, h2, lastbyte", got)
	}
	for name, m := range res.Modes {
		if got := slices.Sorted(maps.Keys(m.Spread)); !slices.Equal(got, []string{"2", "32", "8"}) {
			t.Errorf("%s spread_us sizes = %v; want 2, 8, 32", name, got)
		}
		for n, q := range m.Spread {
			if got := slices.Sorted(maps.Keys(q)); !slices.Equal(got, []string{"p50", "p95"}) || q["p50"] < 0 || q["p95"] < q["p50"] {
				t.Errorf("%s spread_us[%s] = %v; want 0 ≤ p50 ≤ p95", name, n, q)
			}
		}
		if got := slices.Sorted(maps.Keys(m.Detection)); !slices.Equal(got, []string{"2", "8"}) {
			t.Errorf("%s detection sizes = %v; want 2, 8", name, got)
		}
		for n, rates := range m.Detection {
			if got := slices.Sorted(maps.Keys(rates)); !slices.Equal(got, []string{"100us", "10us", "1us"}) {
				t.Errorf("%s detection[%s] gaps = %v; want 1us, 10us, 100us", name, n, got)
			}
			for gap, r := range rates {
				if r < 0 || r > 1 {
					t.Errorf("%s detection[%s][%s] = %v; want within [0, 1]", name, n, gap, r)
				}
			}
		}
	}
}

func TestBenchBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--trials", "0"},
		{"bench", "--trials", "x"},
		{"bench", "--trials", "-5"},
		{"bench", "--nope"},
		{"bench", "now"},
	} {
		if got := executeIO(t.Context(), args, io.Discard, io.Discard); got != exitBadInput {
			t.Errorf("conflictcheck %v exited %d; want %d", args, got, exitBadInput)
		}
	}
}

package bench

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/engine"
)

func TestRunMeasuresEveryFigure(t *testing.T) {
	var progress bytes.Buffer
	res, err := Run(t.Context(), Config{Trials: 3, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if res.Trials != 3 || res.CPUs < 1 {
		t.Errorf("trials, cpus = %d, %d; want 3, ≥ 1", res.Trials, res.CPUs)
	}
	var got []engine.Strategy
	for _, m := range res.Modes {
		got = append(got, m.Strategy)
		if sizes := spreadSizes(m); !slices.Equal(sizes, []int{2, 8, 32}) {
			t.Errorf("%s spread sizes = %v; want [2 8 32]", m.Strategy, sizes)
		}
		for _, s := range m.Spread {
			if s.P50 < 0 || s.P95 < s.P50 {
				t.Errorf("%s N=%d spread p50 %v p95 %v; want 0 ≤ p50 ≤ p95", m.Strategy, s.N, s.P50, s.P95)
			}
		}
		if len(m.Detection) != 2 || m.Detection[0].N != 2 || m.Detection[1].N != 8 {
			t.Fatalf("%s detection = %+v; want N=2 and N=8", m.Strategy, m.Detection)
		}
		for _, d := range m.Detection {
			var gaps []time.Duration
			for _, r := range d.Rates {
				gaps = append(gaps, r.Gap)
				if r.Rate < 0 || r.Rate > 1 {
					t.Errorf("%s N=%d gap %v rate %v; want within [0, 1]", m.Strategy, d.N, r.Gap, r.Rate)
				}
			}
			if want := []time.Duration{time.Microsecond, 10 * time.Microsecond, 100 * time.Microsecond}; !slices.Equal(gaps, want) {
				t.Errorf("%s N=%d gaps = %v; want %v", m.Strategy, d.N, gaps, want)
			}
		}
	}
	if !slices.Equal(got, engine.Strategies) {
		t.Errorf("modes = %v; want %v", got, engine.Strategies)
	}
	if lines := strings.Count(progress.String(), "\n"); lines != 3*3+3*2*3 {
		t.Errorf("progress has %d lines; want one per strategy and figure, 27:\n%s", lines, progress.String())
	}
}

func spreadSizes(m Mode) []int {
	var ns []int
	for _, s := range m.Spread {
		ns = append(ns, s.N)
	}
	return ns
}

func TestRaceFaultIsObservable(t *testing.T) {
	res, err := Run(t.Context(), Config{
		Trials: 5, Strategies: []engine.Strategy{engine.Barrier},
		SpreadSizes: []int{2}, DetectSizes: []int{2}, Gaps: []time.Duration{20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Modes[0].Detection[0].Rates[0]; r.Rate == 0 {
		t.Errorf("a 20ms race window was never detected in 5 barrier races (%d errored): the fault or the scenario is broken", r.Errored)
	}
}

func TestCorrectServerNeverHasTwoWinners(t *testing.T) {
	res, err := Run(t.Context(), Config{
		Trials: 5, Correct: true,
		SpreadSizes: []int{2}, DetectSizes: []int{2, 8}, Gaps: []time.Duration{20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range res.Modes {
		for _, d := range m.Detection {
			if r := d.Rates[0]; r.Rate != 0 {
				t.Errorf("%s N=%d: %v of trials had 2+ winners on the correct server; want 0", m.Strategy, d.N, r.Rate)
			}
		}
	}
}

func TestConfigRejectsWhatCannotBeMeasured(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"negative trials", Config{Trials: -1}},
		{"auto", Config{Strategies: []engine.Strategy{engine.Auto}}},
		{"unknown strategy", Config{Strategies: []engine.Strategy{"h3"}}},
		{"no strategy", Config{Strategies: []engine.Strategy{}}},
		{"one racer", Config{SpreadSizes: []int{1}}},
		{"negative gap", Config{Gaps: []time.Duration{-time.Microsecond}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Run(t.Context(), tt.cfg); err == nil {
				t.Errorf("Run(%+v) succeeded; want an error", tt.cfg)
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	us := func(ns ...int) []time.Duration {
		var ds []time.Duration
		for _, n := range ns {
			ds = append(ds, time.Duration(n)*time.Microsecond)
		}
		return ds
	}
	tests := []struct {
		samples []time.Duration
		q       float64
		want    time.Duration
	}{
		{us(7), 0.5, 7 * time.Microsecond},
		{us(7), 0.95, 7 * time.Microsecond},
		{us(4, 1, 3, 2), 0.5, 2 * time.Microsecond},
		{us(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 0.95, 10 * time.Microsecond},
		{us(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 0.5, 5 * time.Microsecond},
	}
	for _, tt := range tests {
		if got := quantile(slices.Clone(tt.samples), tt.q); got != tt.want {
			t.Errorf("quantile(%v, %v) = %v; want %v", tt.samples, tt.q, got, tt.want)
		}
	}
}

func TestRecorderKeepsTrialsApart(t *testing.T) {
	rec := newRecorder()
	id := rec.begin(2)
	other := rec.begin(2)
	at := time.Now()
	arrive := func(trial, racer string, at time.Time) {
		r, _ := http.NewRequest("POST", "http://127.0.0.1/items", nil)
		if trial != "" {
			r.Header.Set(trialHeader, trial)
		}
		r.Header.Set(racerHeader, racer)
		rec.arrive(r, at)
	}
	arrive(id, "1", at)
	arrive(id, "1", at.Add(time.Second)) // a duplicate keeps the first arrival
	arrive(id, "2", at)                  // no such racer
	arrive(id, "x", at)
	arrive("", "0", at)    // not a bench request
	arrive("999", "0", at) // no such trial
	arrive(other, "0", at) // another trial
	got := rec.end(id)
	if want := []time.Time{{}, at}; !reflect.DeepEqual(got, want) {
		t.Errorf("arrivals = %v; want %v", got, want)
	}
	if got := rec.end(id); got != nil {
		t.Errorf("an ended trial still has arrivals %v", got)
	}
}

func TestResultShape(t *testing.T) {
	res := Result{CPUs: 2, Trials: 10, Modes: []Mode{
		{Strategy: engine.H2, Spread: []Spread{{N: 8, P50: 5, P95: 9}}, Detection: []Detection{{N: 2, Rates: []Rate{{Gap: time.Microsecond, Rate: 0.5}, {Gap: 10 * time.Microsecond, Rate: 1}}}}},
		{Strategy: engine.Barrier, Spread: []Spread{{N: 8, P50: 20, P95: 90.5}}, Detection: []Detection{{N: 2, Rates: []Rate{{Gap: time.Microsecond, Rate: 0}, {Gap: 10 * time.Microsecond, Rate: 0.25}}}}},
	}}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"cpus":2,"trials":10,"modes":{"h2":{"spread_us":{"8":{"p50":5,"p95":9}},"detection":{"2":{"1us":0.5,"10us":1}}},` +
		`"barrier":{"spread_us":{"8":{"p50":20,"p95":90.5}},"detection":{"2":{"1us":0,"10us":0.25}}}}}`
	if string(b) != want {
		t.Errorf("JSON =\n%s\nwant\n%s", b, want)
	}
	var table strings.Builder
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"h2        5.0 / 9.0",
		"barrier   20.0 / 90.5",
		"strategy  N=2 1µs  N=2 10µs",
		"h2        50.0%    100.0%",
		"barrier/h2 p50 spread at N=8: 4.0×",
	} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if strings.Contains(table.String(), "barrier/lastbyte") {
		t.Errorf("table has a ratio for lastbyte, which was not measured:\n%s", table.String())
	}
}

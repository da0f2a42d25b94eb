package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/conflictcheck/conflictcheck/internal/engine"
)

// Result is one bench run. It marshals to
// {"cpus":N,"trials":T,"modes":{"h2":{"spread_us":{"2":{"p50":…,"p95":…},…},"detection":{"2":{"1us":…,…},…}},…}}
// with every object in measurement order.
type Result struct {
	CPUs   int
	Trials int
	Modes  []Mode // in Config.Strategies order
}

// Mode is the figures of one strategy.
type Mode struct {
	Strategy  engine.Strategy
	Spread    []Spread    // in Config.SpreadSizes order
	Detection []Detection // in Config.DetectSizes order
}

// Spread is the server-side arrival spread of N racers over the complete trials, in µs.
type Spread struct {
	N        int
	P50, P95 float64
	// Incomplete counts the trials left out because a racer never reached the server.
	Incomplete int
}

// Detection is the detection rates of N racers, one per race window.
type Detection struct {
	N     int
	Rates []Rate // in Config.Gaps order
}

// Rate is the share of trials, in [0, 1], in which a race window of Gap gave two or more winners.
type Rate struct {
	Gap  time.Duration
	Rate float64
	// Errored counts the trials in which a racer met a transport error (they still count).
	Errored int
}

// Mode returns the figures of strategy s, if measured.
func (r Result) Mode(s engine.Strategy) (Mode, bool) {
	for _, m := range r.Modes {
		if m.Strategy == s {
			return m, true
		}
	}
	return Mode{}, false
}

// SpreadAt returns the spread of n racers, if measured.
func (m Mode) SpreadAt(n int) (Spread, bool) {
	for _, s := range m.Spread {
		if s.N == n {
			return s, true
		}
	}
	return Spread{}, false
}

// gapKey spells a window as the JSON key does: "1us", "10us", "0.5us".
func gapKey(g time.Duration) string {
	return strconv.FormatFloat(float64(g)/float64(time.Microsecond), 'f', -1, 64) + "us"
}

// MarshalJSON writes the documented shape, keeping sizes, windows and strategies in order.
func (r Result) MarshalJSON() ([]byte, error) {
	modes := make(object, len(r.Modes))
	for i, m := range r.Modes {
		spread := make(object, len(m.Spread))
		for j, s := range m.Spread {
			spread[j] = member{strconv.Itoa(s.N), object{{"p50", s.P50}, {"p95", s.P95}}}
		}
		detection := make(object, len(m.Detection))
		for j, d := range m.Detection {
			rates := make(object, len(d.Rates))
			for k, rt := range d.Rates {
				rates[k] = member{gapKey(rt.Gap), rt.Rate}
			}
			detection[j] = member{strconv.Itoa(d.N), rates}
		}
		modes[i] = member{string(m.Strategy), object{{"spread_us", spread}, {"detection", detection}}}
	}
	return json.Marshal(object{{"cpus", r.CPUs}, {"trials", r.Trials}, {"modes", modes}})
}

// object is a JSON object whose members keep their order.
type object []member

type member struct {
	key   string
	value any
}

func (o object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := json.Marshal(m.key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(m.value)
		if err != nil {
			return nil, fmt.Errorf("member %s: %w", m.key, err)
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// WriteTable renders r as aligned text tables: the spreads, the detection rates, and how many
// times tighter than barrier the other strategies arrive at 8 racers.
func (r Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Firing engine bench: %d trials per figure, %d CPUs\n\n", r.Trials, r.CPUs)
	if len(r.Modes) > 0 {
		fmt.Fprintln(tw, "Arrival spread at the server, µs (p50 / p95)")
		row := []string{"strategy"}
		for _, s := range r.Modes[0].Spread {
			row = append(row, fmt.Sprintf("N=%d", s.N))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
		for _, m := range r.Modes {
			row = []string{string(m.Strategy)}
			for _, s := range m.Spread {
				row = append(row, fmt.Sprintf("%.1f / %.1f", s.P50, s.P95))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		fmt.Fprintln(tw, "\nDetection: trials with 2+ winners, by race window")
		row = []string{"strategy"}
		for _, d := range r.Modes[0].Detection {
			for _, rt := range d.Rates {
				row = append(row, fmt.Sprintf("N=%d %s", d.N, strings.TrimSuffix(gapKey(rt.Gap), "us")+"µs"))
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
		for _, m := range r.Modes {
			row = []string{string(m.Strategy)}
			for _, d := range m.Detection {
				for _, rt := range d.Rates {
					row = append(row, fmt.Sprintf("%.1f%%", 100*rt.Rate))
				}
			}
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write bench table: %w", err)
	}
	for _, s := range []engine.Strategy{engine.H2, engine.LastByte} {
		if ratio, ok := r.tighter(s, 8); ok {
			if _, err := fmt.Fprintf(w, "\nbarrier/%s p50 spread at N=8: %s", s, ratio); err != nil {
				return fmt.Errorf("write bench table: %w", err)
			}
		}
	}
	_, err := fmt.Fprintln(w)
	return err
}

// tighter is barrier's p50 spread of n racers over strategy s's, formatted, when both exist.
func (r Result) tighter(s engine.Strategy, n int) (string, bool) {
	bm, ok1 := r.Mode(engine.Barrier)
	sm, ok2 := r.Mode(s)
	if !ok1 || !ok2 {
		return "", false
	}
	bs, ok1 := bm.SpreadAt(n)
	ss, ok2 := sm.SpreadAt(n)
	if !ok1 || !ok2 {
		return "", false
	}
	if ss.P50 == 0 {
		return "n/a (zero spread)", true
	}
	return fmt.Sprintf("%.1f×", bs.P50/ss.P50), true
}

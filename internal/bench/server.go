package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/conflictcheck/conflictcheck/reference-server/fault"
	"github.com/conflictcheck/conflictcheck/reference-server/server"
)

// startServer serves the memory store with fault f and race window on a free port of
// 127.0.0.1 (HTTP/1.1 and h2c, as `conflictcheck serve-reference`), calling onArrival for every
// request.
func startServer(f fault.Name, window time.Duration, onArrival func(*http.Request, time.Time)) (*server.Server, error) {
	cfg := server.Config{Addr: "127.0.0.1:0", Store: "memory", Fault: string(f), RaceWindow: window, OnArrival: onArrival}
	s, err := server.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, fmt.Errorf("start reference server: %w", err)
	}
	return s, nil
}

// recorder collects the server-side arrival times of the racers of the trials in progress.
// Requests without a trial header, or naming a trial not in progress, are ignored.
type recorder struct {
	mu     sync.Mutex
	next   int
	trials map[string][]time.Time // trial id → arrival per racer; zero until it arrives
}

func newRecorder() *recorder { return &recorder{trials: map[string][]time.Time{}} }

// begin opens a trial of n racers and returns its id.
func (r *recorder) begin(n int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	id := strconv.Itoa(r.next)
	r.trials[id] = make([]time.Time, n)
	return id
}

// arrive is the api.Options.OnArrival hook. The time is taken by the server before the call,
// so waiting for the lock here does not skew it.
func (r *recorder) arrive(req *http.Request, at time.Time) {
	id := req.Header.Get(trialHeader)
	if id == "" {
		return
	}
	i, err := strconv.Atoi(req.Header.Get(racerHeader))
	if err != nil {
		return
	}
	r.mu.Lock()
	if ts, ok := r.trials[id]; ok && i >= 0 && i < len(ts) && ts[i].IsZero() {
		ts[i] = at
	}
	r.mu.Unlock()
	// Yield, so that the other racers' handlers, woken by the same packet, stamp their arrival
	// before this one goes on to decode and store: otherwise, on few cores, each stamp waits
	// for the previous request's whole handling and the spread measures the server's
	// serialisation instead of the client's simultaneity.
	runtime.Gosched()
}

// end closes the trial and returns its arrivals, one per racer, zero for a racer that never
// arrived.
func (r *recorder) end(id string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts := r.trials[id]
	delete(r.trials, id)
	return ts
}

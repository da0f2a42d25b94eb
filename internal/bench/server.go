package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/conflictcheck/conflictcheck/reference-server/api"
	"github.com/conflictcheck/conflictcheck/reference-server/fault"
	"github.com/conflictcheck/conflictcheck/reference-server/server"
	"github.com/conflictcheck/conflictcheck/reference-server/store"
)

// refServer is an in-process reference server on a free loopback port, speaking HTTP/1.1 and
// h2c like `conflictcheck serve-reference`.
type refServer struct {
	url   string
	http  *http.Server
	store store.Store
}

// startServer serves the memory store with fault f and race window on 127.0.0.1, calling
// onArrival for every request.
func startServer(f fault.Name, window time.Duration, onArrival func(*http.Request, time.Time)) (*refServer, error) {
	st := store.NewMemory(server.StoreOptions(f, window))
	log := slog.New(slog.DiscardHandler)
	hs := server.NewHTTPServer(api.New(st, api.Options{Fault: f, Logger: log, OnArrival: onArrival}), log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("start reference server: listen on 127.0.0.1: %w", err)
	}
	go func() { _ = hs.Serve(ln) }() // Serve only returns once close shuts it down
	return &refServer{url: "http://" + ln.Addr().String(), http: hs, store: st}, nil
}

// close shuts the server down, waiting a little for requests in flight.
func (s *refServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		_ = s.http.Close()
	}
	s.store.Close()
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

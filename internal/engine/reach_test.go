package engine

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestReach: any HTTP answer is reachable, on every strategy; a closed port is a dial error
// naming the target, and a server that never answers is a timeout within Options.Timeout.
func TestReach(t *testing.T) {
	srv, _ := testServer(t, http.NotFoundHandler(), false)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + closed.Addr().String()
	closed.Close()
	silent := rawServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	for _, st := range []Strategy{Auto, H2, LastByte, Barrier} {
		e := New(Options{Strategy: st, Timeout: 300 * time.Millisecond})
		if err := e.Reach(t.Context(), srv.URL); err != nil {
			t.Errorf("%s: Reach(404 server) = %v, want nil", st, err)
		}
		err := e.Reach(t.Context(), deadURL)
		if err == nil || !strings.Contains(err.Error(), "target "+deadURL+" unreachable: dial") {
			t.Errorf("%s: Reach(closed port) = %v, want a dial error naming the target", st, err)
		}
		began := time.Now()
		err = e.Reach(t.Context(), silent)
		if err == nil || !strings.Contains(err.Error(), "timeout") {
			t.Errorf("%s: Reach(silent) = %v, want a timeout", st, err)
		}
		if d := time.Since(began); d > 5*time.Second {
			t.Errorf("%s: Reach(silent) took %v, want it bounded by the timeout", st, d)
		}
	}
}

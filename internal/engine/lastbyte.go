package engine

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"
)

// lbRacer is one lastbyte racer: its connection and the byte it holds back.
type lbRacer struct {
	x      *Exchange
	method string
	wire   []byte // the request as serialised, final byte included

	c      *raceConn
	final  []byte // the one byte held back until the release (cleartext, or the last of a TLS record)
	live   bool   // connected and head written: takes part in the release
	sent   int    // how much of final the raw write placed
	relErr error  // why the release failed
}

// The pause between the last head written and the release is the slowest TCP connect (about
// one round trip), kept within these bounds.
const (
	lbMinSettle = 200 * time.Microsecond
	lbMaxSettle = 100 * time.Millisecond
	// lbSpinTail is how much of the pause is spent yielding rather than asleep, so that the
	// release starts on a running thread instead of one the kernel is still waking.
	lbSpinTail = 2 * time.Millisecond
)

/*
fireLastByte races over HTTP/1.1 with one connection per racer: every request is written but
its final byte, then the final bytes are released together. A server cannot act on a request
it has not fully read, so the requests complete within the release's spread.

The release is the whole point, so every step that can be taken before it is:

  - Every connection is dialled and, for https, handshaken, in parallel, before the race
    starts; every request is serialised by hand beforehand.
  - Each racer writes its request but its final byte. Over TLS a record cannot be cut below
    the TLS layer, so the final byte is sealed as a record of its own while the connection
    under TLS holds its writes back, and all of that record but its last byte is sent too:
    the server can open neither an incomplete record nor an incomplete request, so over TLS
    too exactly one byte per connection stands between the server and each request.
  - One goroutine per racer then parks in a read of its connection, so that nothing is left
    to do once the bytes are out.
  - A pause as long as the slowest TCP connect (about one round trip, within lbMinSettle and
    lbMaxSettle) lets the heads reach the server and be parsed, so that the release meets a
    server waiting for one byte a connection rather than one still parsing heads. Its tail
    is spent yielding, not asleep, so the release does not start on a thread being woken.
  - The release writes the held bytes in a tight loop of raw write(2) calls on descriptors
    fetched beforehand: no net poller, no locks, no TLS, no allocation, only a clock read per
    racer for Exchange.Release.

Measured on 2 cores against an in-process server, the release costs about 5 µs a racer, almost
all of it the kernel's loopback TCP path (the syscall itself is about 0.4 µs; the net poller
adds little more). Spreading the writes over both cores did not pay: the other core is the one
the server needs at that very moment, and a helper goroutine was often not yet running when
the release came.
*/
func (r *race) fireLastByte(ctx context.Context) {
	timeout := r.e.opts.Timeout
	racers := make([]*lbRacer, len(r.reqs))
	for i := range r.reqs {
		racers[i] = r.lbPrepare(i)
	}

	dialCtx, cancelDial := context.WithTimeout(ctx, timeout)
	var wg sync.WaitGroup
	for _, lr := range racers {
		if lr.x.Err == nil {
			wg.Go(func() { lr.c, lr.x.Err = r.e.dial(dialCtx, r.targetOf(lr.x.Racer), []string{"http/1.1"}) })
		}
	}
	wg.Wait()
	cancelDial()
	opened := slices.DeleteFunc(slices.Clone(racers), func(lr *lbRacer) bool { return lr.c == nil })
	defer func() {
		for _, lr := range opened {
			lr.c.Close()
		}
	}()

	// Timeout runs from here: the race starts once every connection is open.
	r.start()
	deadline, settle := r.deadline(), lbMinSettle
	for _, lr := range opened {
		defer bound(ctx, lr.c, deadline)()
		settle = max(settle, lr.c.connect)
	}
	settle = min(settle, lbMaxSettle, timeout/4)

	for _, lr := range opened {
		wg.Go(func() { r.lbWriteHead(lr) })
	}
	wg.Wait()
	live := slices.DeleteFunc(slices.Clone(opened), func(lr *lbRacer) bool { return !lr.live })
	for _, lr := range live {
		wg.Go(func() { r.lbFinish(lr) })
	}
	if len(live) > 0 && lbPause(ctx, settle) {
		r.lbRelease(live)
	}
	wg.Wait()
	for _, lr := range live {
		if lr.relErr != nil && lr.x.Err != nil && lr.x.Status == 0 {
			// The server answered nothing: the failed release is the better explanation.
			lr.x.Err = classify(lr.relErr)
		}
	}
}

// lbPrepare serialises racer i's request; a request that cannot be serialised is recorded as
// a protocol error and never sent.
func (r *race) lbPrepare(i int) *lbRacer {
	x := &r.xs[i]
	h, err := newHead(x.Request.URL, r.reqs[i], func(name string) bool {
		switch http.CanonicalHeaderKey(name) {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection":
			return true
		}
		return false
	})
	if err != nil {
		x.Err = &TransportError{Kind: ErrProtocol, Message: err.Error()}
		return &lbRacer{x: x}
	}
	return &lbRacer{x: x, method: h.method, wire: lbSerialise(r.targetOf(i), h, r.reqs[i].Body)}
}

// lbSerialise writes an HTTP/1.1 request by hand: request line, Host, the caller's headers
// (less Host, Content-Length, Transfer-Encoding and Connection, which are the engine's to set),
// a User-Agent unless the caller set one, Content-Length, body.
//
// The request does not ask for Connection: close. A server that answers without reading the
// body (net/http among them) would then close the socket with the final byte unread, and the
// RST that follows throws away whatever of its response was still unsent; kept alive, it
// reads the rest of the body instead. The response is framed either way, and the engine
// closes the connection once it is read.
func lbSerialise(t target, h head, body []byte) []byte {
	b := make([]byte, 0, 256+len(body))
	b = append(b, h.method...)
	b = append(b, ' ')
	b = append(b, h.uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, t.base.Host...)
	b = append(b, "\r\n"...)
	agent := false
	for _, f := range h.fields {
		agent = agent || http.CanonicalHeaderKey(f.name) == "User-Agent"
		b = append(b, f.name...)
		b = append(b, ": "...)
		b = append(b, f.value...)
		b = append(b, "\r\n"...)
	}
	if !agent {
		b = append(b, "User-Agent: conflictcheck\r\n"...)
	}
	if h.length {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, body...)
}

// lbWriteHead writes lr's request but its final byte and sets that byte aside. Over TLS the
// final byte is sealed as a record of its own, and all of that record but its last byte is
// sent too: the server can open the record only once the release completes it.
func (r *race) lbWriteHead(lr *lbRacer) {
	head, last := lr.wire[:len(lr.wire)-1], lr.wire[len(lr.wire)-1:]
	lr.x.WriteStart = r.since()
	_, err := lr.c.Write(head)
	if err == nil {
		last, err = lr.c.seal(last)
	}
	if err == nil && len(last) > 1 {
		_, err = lr.c.tcp.Write(last[:len(last)-1])
	}
	if err != nil {
		lr.x.Err, lr.x.Done = classify(err), r.since()
		return
	}
	lr.final = last[len(last)-1:]
	lr.live = true
}

// lbPause waits d, asleep for all but its last lbSpinTail and yielding to other goroutines
// through that; it reports whether ctx is still live.
func lbPause(ctx context.Context, d time.Duration) bool {
	end := time.Now().Add(d)
	if sleep := d - lbSpinTail; sleep > 0 {
		t := time.NewTimer(sleep)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
	for time.Now().Before(end) && ctx.Err() == nil {
		runtime.Gosched()
	}
	return ctx.Err() == nil
}

// lbRelease writes every racer's final byte, as close together as it can.
func (r *race) lbRelease(live []*lbRacer) {
	for _, lr := range live {
		lr.x.Release = r.since()
		lr.sent = lr.c.writeRaw(lr.final)
	}
	// A byte the raw write could not place (no descriptor, a full send buffer, an interrupted
	// call, a closed peer) goes through the poller instead: late, but with a proper error.
	for _, lr := range live {
		if lr.sent < len(lr.final) {
			lr.x.Release = r.since()
			_, lr.relErr = lr.c.tcp.Write(lr.final[lr.sent:])
		}
	}
}

// lbFinish reads lr's response into its exchange.
func (r *race) lbFinish(lr *lbRacer) {
	rd := &lbReader{conn: lr.c, r: r, x: lr.x}
	lbReadResponse(rd, lr.method, r.e.opts.MaxBody)
	lr.x.Done = r.since()
}

// lbReader is the connection as the response parser sees it: it stamps the first byte and
// keeps the connection's own error apart from the parser's.
type lbReader struct {
	conn io.Reader
	r    *race
	x    *Exchange
	err  error // the first error the connection returned
	last byte  // the last byte it returned
}

func (rd *lbReader) Read(p []byte) (int, error) {
	n, err := rd.conn.Read(p)
	if n > 0 {
		if rd.x.FirstByte == 0 {
			rd.x.FirstByte = max(rd.r.since(), 1)
		}
		rd.last = p[n-1]
	}
	if err != nil && rd.err == nil {
		rd.err = err
	}
	return n, err
}

// lbReadResponse parses one response from rd into rd.x: interim 1xx responses are skipped, the
// body is capped at maxBody. A failure is recorded as a TransportError.
func lbReadResponse(rd *lbReader, method string, maxBody int64) {
	x := rd.x
	br := bufio.NewReader(rd)
	req := &http.Request{Method: method}
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			x.Err = rd.fail(err, br.Buffered())
			return
		}
		if resp.StatusCode < 100 {
			x.Err = &TransportError{Kind: ErrProtocol, Message: "malformed response: status " + resp.Status}
			return
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			if err := x.takeResponse(resp, maxBody); err != nil {
				x.Err = rd.fail(err, br.Buffered())
			}
			return
		}
	}
}

// fail classifies err, returned while reading a response with buffered bytes still unparsed:
// the connection's failures as transport errors, its end before a full response (even
// mid-line, which the parser reports as malformed) as a reset, anything else as a malformed
// response.
func (rd *lbReader) fail(err error, buffered int) *TransportError {
	cerr := rd.err
	cut := cerr != nil && (errors.Is(err, cerr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		buffered == 0 && rd.last != '\n')
	switch {
	case cut && !errors.Is(cerr, io.EOF):
		return classify(cerr)
	case cut, errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &TransportError{Kind: ErrReset, Message: "connection closed before a full response: " + err.Error()}
	}
	return &TransportError{Kind: ErrProtocol, Message: "malformed response: " + err.Error()}
}

package engine

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// HTTP/2 parameters. The receive windows follow net/http's HTTP/2 transport, so flow control
// never stalls a response before the body cap ends it.
const (
	h2StreamWindow  = 4 << 20 // SETTINGS_INITIAL_WINDOW_SIZE we advertise
	h2ConnWindow    = 1 << 30 // our connection receive window after the first WINDOW_UPDATE
	h2DefaultWindow = 65535   // the initial window of RFC 9113 §6.9.2
	h2DefaultFrame  = 16384   // SETTINGS_MAX_FRAME_SIZE until told otherwise, both ways
	h2MaxHeaderList = 1 << 20 // SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce
	h2TableSize     = 4096    // the HPACK dynamic table size of RFC 7541 §4.2
	h2ProbeWait     = 2 * time.Second
	h2SettleWait    = time.Second // the longest the release waits for settle PING ACKs
)

// h2SettlePing is the payload of the PING sent after a connection's streams are opened: its
// ACK proves the server has read every frame before it.
var h2SettlePing = [8]byte{'s', 'e', 't', 't', 'l', 'e'}

// errH2Closed is why a connection's streams stop being written once its reader has ended.
var errH2Closed = errors.New("connection ended before the release")

// fireH2 is the single-packet technique over HTTP/2 (TLS with ALPN h2, or cleartext h2c with
// prior knowledge).
//
// Per target it opens one connection, exchanges SETTINGS, and puts at most the server's
// SETTINGS_MAX_CONCURRENT_STREAMS racers on it. When a target has more racers than that, it
// opens ceil(n/max) connections up front and spreads the racers evenly over them, rather than
// queueing batches: every racer is then in flight at once and every connection is released
// in the same loop.
//
// Once every connection is ready the race starts. Each connection gets, in one write when
// flow control allows, every stream's HEADERS (without END_STREAM) and all of its body but
// the last byte, then a PING; once the PING ACKs are back (see h2settle), one write per
// connection, back to back for all connections, carries every stream's closing DATA frame
// (the last body byte, or an empty frame, with END_STREAM). The release frames are encoded,
// sealed into TLS records for https, and every write lock taken before the first release
// timestamp, so only a clock read separates it from its raw write(2), as in lastbyte.
//
// A server cannot have a request's whole body before its release frame arrives. A server
// that dispatches handlers on HEADERS (Go's does) may start a bodiless request early, but all
// of a connection's HEADERS still leave in one write.
func (r *race) fireH2(ctx context.Context) {
	byTarget := make([][]int, len(r.targets))
	fields := make([][]hpack.HeaderField, len(r.reqs))
	for i := range r.reqs {
		fs, err := h2fields(r.targetOf(i), r.reqs[i], r.xs[i].Request.URL)
		if err != nil {
			r.xs[i].Err = &TransportError{Kind: ErrProtocol, Message: err.Error()}
			continue
		}
		fields[i] = fs
		byTarget[i%len(r.targets)] = append(byTarget[i%len(r.targets)], i)
	}
	perTarget := make([][]*h2conn, len(r.targets))
	var wg sync.WaitGroup
	for ti, racers := range byTarget {
		if len(racers) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			perTarget[ti] = r.h2connect(ctx, r.targets[ti], racers, fields)
		}()
	}
	wg.Wait()
	r.start()
	r.h2run(ctx, slices.Concat(perTarget...))
}

// h2connect opens as many connections to t as racers needs under the server's stream limit
// and assigns the racers to them. A racer that gets no connection has the reason recorded.
func (r *race) h2connect(ctx context.Context, t target, racers []int, fields [][]hpack.HeaderField) []*h2conn {
	first, terr := r.h2dial(ctx, t)
	if terr != nil {
		r.h2failAll(racers, terr)
		return nil
	}
	conns := []*h2conn{first}
	n := len(racers)
	capacity := first.capacity(n)
	for capacity < n {
		per := conns[len(conns)-1].capacity(n)
		if per == 0 {
			break
		}
		more := make([]*h2conn, (n-capacity+per-1)/per)
		errs := make([]*TransportError, len(more))
		var wg sync.WaitGroup
		for j := range more {
			wg.Add(1)
			go func() {
				defer wg.Done()
				more[j], errs[j] = r.h2dial(ctx, t)
			}()
		}
		wg.Wait()
		grew := false
		for j, c := range more {
			if c == nil {
				terr = errs[j]
				continue
			}
			conns = append(conns, c)
			capacity += c.capacity(n)
			grew = true
		}
		if !grew {
			break
		}
	}
	// A bodyless racer's HEADERS wait for the release (a server starts a handler on HEADERS), so
	// its stream opens after the others: it needs a higher stream id (RFC 9113 §5.1.1).
	rest := slices.Clone(racers)
	slices.SortStableFunc(rest, func(a, b int) int {
		return cmp.Compare(bodyless(r.reqs[a]), bodyless(r.reqs[b]))
	})
	var used []*h2conn
	for j, c := range conns {
		share := min(c.capacity(n), (len(rest)+len(conns)-j-1)/(len(conns)-j))
		for _, i := range rest[:share] {
			c.add(i, fields[i])
		}
		rest = rest[share:]
		if share == 0 {
			_ = c.conn.Close()
			continue
		}
		used = append(used, c)
	}
	if len(rest) > 0 {
		if terr == nil {
			terr = &TransportError{Kind: ErrProtocol, Message: fmt.Sprintf(
				"the server allows no more concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS %d)", first.capacity(n))}
		}
		r.h2failAll(rest, terr)
	}
	return used
}

// h2failAll records err for racers that never got a connection (before the race starts, so
// no times).
func (r *race) h2failAll(racers []int, err *TransportError) {
	for _, i := range racers {
		e := *err // each exchange owns its error
		r.xs[i].Err = &e
	}
}

// h2run is the race over open connections: readers first, then every connection's streams
// opened, then the release.
func (r *race) h2run(ctx context.Context, conns []*h2conn) {
	deadline := r.deadline()
	var readers sync.WaitGroup
	for _, c := range conns {
		defer bound(ctx, c.conn, deadline)()
		readers.Go(c.readLoop)
	}
	for _, c := range conns {
		if err := c.prepare(); err != nil {
			c.failAndClose(c.errFor(err))
		}
	}
	h2settle(conns, min(r.e.opts.Timeout/4, h2SettleWait))
	// Under every write lock, so that nothing is written between them and the release, TLS
	// seals each connection's release frames into records. A connection already closed has
	// no stream left to release.
	for _, c := range conns {
		c.wmu.Lock()
		if c.closed {
			c.rel = nil
		}
		if len(c.rel) > 0 {
			c.rel, c.relErr = c.conn.seal(c.rel)
		}
	}
	// The release: no allocation, lock, encoding or encryption between a clock read and its
	// raw write.
	for _, c := range conns {
		if len(c.rel) > 0 && c.relErr == nil {
			c.relAt = r.since()
			c.relSent = c.conn.writeRaw(c.rel)
		}
	}
	// What a raw write could not place goes through the poller: late, but with a proper error.
	for _, c := range conns {
		if len(c.rel) > 0 && c.relErr == nil && c.relSent < len(c.rel) {
			_, c.relErr = c.conn.tcp.Write(c.rel[c.relSent:])
		}
		c.wmu.Unlock()
	}
	for _, c := range conns {
		c.released()
	}
	readers.Wait()
}

// h2settle waits, up to wait in all, until every connection's server has acknowledged the
// PING written after its streams' frames, so it has read them all: the release then reaches
// servers idle on their connections instead of still parsing HEADERS. A server slow to
// answer PING only costs the wait, never the race.
func h2settle(conns []*h2conn, wait time.Duration) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for _, c := range conns {
		select {
		case <-c.settled:
		case <-c.dead:
		case <-timer.C:
			return
		}
	}
}

// h2conn is one HTTP/2 connection of a race and the streams it carries.
type h2conn struct {
	r    *race
	ctx  context.Context
	conn *raceConn
	rfr  *http2.Framer // reads: the handshake's, then only readLoop's

	// Writing: the firing goroutine encodes into wbuf (streams) and relBuf (the release),
	// readLoop into cbuf (acks, window updates, resets); each buffer goes out in one
	// conn.Write under wmu. The connection is closed under wmu too (closed), so that the
	// release's raw write never reaches a closed descriptor, which the process may reuse.
	wmu    sync.Mutex
	closed bool
	wbuf   bytes.Buffer
	wfr    *http2.Framer
	relBuf bytes.Buffer
	relFr  *http2.Framer
	cbuf   bytes.Buffer
	cfr    *http2.Framer
	hbuf   bytes.Buffer
	henc   *hpack.Encoder

	rel     []byte        // the encoded release; sealed, for TLS, just before it is written
	relAt   time.Duration // when the release was written
	relSent int           // how much of rel the raw write placed
	relErr  error

	wake    chan struct{} // a send window grew (capacity 1)
	settled chan struct{} // closed when the server acknowledged the settle PING
	dead    chan struct{} // closed when readLoop ends

	// mu guards what follows, the streams' shared fields and the response fields of their
	// exchanges.
	mu          sync.Mutex
	maxStreams  uint32
	maxFrame    uint32
	peerWindow  int64 // the server's SETTINGS_INITIAL_WINDOW_SIZE
	connWindow  int64 // how much DATA flow control lets us send on the connection
	recvConn    uint32
	streams     []*h2stream // in stream id order
	byID        map[uint32]*h2stream
	open        int
	nextID      uint32
	settledDone bool
}

// h2stream is one racer's stream.
type h2stream struct {
	i      int
	id     uint32
	fields []hpack.HeaderField
	body   []byte

	// Written by the firing goroutine only.
	headersSent bool
	stamped     bool
	inRelease   bool
	// atRelease marks a bodyless stream, whose HEADERS (with END_STREAM) are the release.
	atRelease bool
	sent      int // body bytes written

	// Guarded by h2conn.mu.
	win        int64  // send window
	recvd      uint32 // DATA bytes received since our last stream WINDOW_UPDATE
	gotHeaders bool
	done       bool
}

// h2dial opens a connection to t and exchanges SETTINGS.
func (r *race) h2dial(ctx context.Context, t target) (*h2conn, *TransportError) {
	conn, terr := r.e.dial(ctx, t, []string{http2.NextProtoTLS})
	if terr != nil {
		if terr.Kind == ErrTLS && strings.Contains(terr.Message, "no application protocol") {
			terr.Message += " (the server does not offer HTTP/2 over TLS: ALPN h2)"
		}
		return nil, terr
	}
	if tc, ok := conn.Conn.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol != http2.NextProtoTLS {
		_ = conn.Close()
		return nil, &TransportError{Kind: ErrProtocol, Message: fmt.Sprintf(
			"%s does not speak HTTP/2 over TLS (ALPN h2 not negotiated)", t.base.Host)}
	}
	c := newH2Conn(ctx, r, conn)
	stop := bound(ctx, conn, time.Now().Add(r.e.opts.Timeout))
	err := c.handshake()
	stop()
	if err != nil {
		_ = conn.Close()
		te := c.errFor(err)
		if te.Kind == ErrTimeout && ctx.Err() == nil {
			te.Message = fmt.Sprintf("no HTTP/2 SETTINGS from the server within %v", r.e.opts.Timeout)
		} else {
			te.Message = "HTTP/2 handshake: " + te.Message
		}
		return nil, te
	}
	return c, nil
}

// newH2Conn wraps conn, before any HTTP/2 byte was exchanged, for race r.
func newH2Conn(ctx context.Context, r *race, conn *raceConn) *h2conn {
	c := &h2conn{
		r: r, ctx: ctx, conn: conn,
		rfr:        http2.NewFramer(nil, bufio.NewReaderSize(conn, 64<<10)),
		wake:       make(chan struct{}, 1),
		settled:    make(chan struct{}),
		dead:       make(chan struct{}),
		maxStreams: math.MaxUint32,
		maxFrame:   h2DefaultFrame,
		peerWindow: h2DefaultWindow,
		connWindow: h2DefaultWindow,
		byID:       map[uint32]*h2stream{},
		nextID:     1,
	}
	c.rfr.ReadMetaHeaders = hpack.NewDecoder(h2TableSize, nil)
	c.rfr.MaxHeaderListSize = h2MaxHeaderList
	c.rfr.SetMaxReadFrameSize(h2DefaultFrame)
	c.wfr = http2.NewFramer(&c.wbuf, nil)
	c.relFr = http2.NewFramer(&c.relBuf, nil)
	c.cfr = http2.NewFramer(&c.cbuf, nil)
	c.henc = hpack.NewEncoder(&c.hbuf)
	return c
}

// handshake sends the preface, our SETTINGS and a connection WINDOW_UPDATE, waits for the
// server's SETTINGS (which must come first) and acknowledges them.
func (c *h2conn) handshake() error {
	c.wbuf.Reset()
	c.wbuf.WriteString(http2.ClientPreface)
	_ = c.wfr.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2StreamWindow},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: h2MaxHeaderList},
	)
	_ = c.wfr.WriteWindowUpdate(0, h2ConnWindow-h2DefaultWindow)
	if _, err := c.conn.Write(c.wbuf.Bytes()); err != nil {
		return err
	}
	f, err := c.rfr.ReadFrame()
	if err != nil {
		return err
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		return fmt.Errorf("the server's first frame is %v, not SETTINGS", f.Header())
	}
	c.mu.Lock()
	err = c.applySettings(sf)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.wbuf.Reset()
	_ = c.wfr.WriteSettingsAck()
	_, err = c.conn.Write(c.wbuf.Bytes())
	return err
}

// applySettings takes the server's SETTINGS into account. Call with mu held.
func (c *h2conn) applySettings(sf *http2.SettingsFrame) error {
	return sf.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return fmt.Errorf("invalid setting %v: %w", s, err)
		}
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			c.maxStreams = s.Val
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - c.peerWindow
			for _, st := range c.streams {
				st.win += delta
			}
			c.peerWindow = int64(s.Val)
		case http2.SettingMaxFrameSize:
			c.maxFrame = s.Val
		case http2.SettingHeaderTableSize:
			c.henc.SetMaxDynamicTableSizeLimit(s.Val)
		}
		return nil
	})
}

// capacity is how many of n racers this connection may carry at once.
func (c *h2conn) capacity(n int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(min(uint64(c.maxStreams), uint64(n)))
}

// add assigns racer i to a new stream.
func (c *h2conn) add(i int, fields []hpack.HeaderField) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &h2stream{i: i, id: c.nextID, fields: fields, body: c.r.reqs[i].Body, win: c.peerWindow}
	c.nextID += 2
	c.streams = append(c.streams, s)
	c.byID[s.id] = s
	c.open++
}

// prepare writes every stream's HEADERS and all of its body but the last byte, waiting for
// WINDOW_UPDATEs when flow control demands it, then the settle PING, and encodes the release
// into c.rel. It returns an error when the connection failed first.
func (c *h2conn) prepare() error {
	for first := true; ; first = false {
		c.mu.Lock()
		c.wbuf.Reset()
		var err error
		if first {
			err = c.encodeHeaders()
		}
		ready := false
		if err == nil {
			ready, err = c.encodeData()
		}
		if err == nil && ready {
			err = c.encodeRelease()
			if err == nil {
				err = c.wfr.WritePing(false, h2SettlePing)
			}
		}
		c.mu.Unlock()
		if err != nil {
			return err
		}
		if c.wbuf.Len() > 0 {
			at := c.r.since()
			for _, s := range c.streams {
				if s.headersSent && !s.stamped {
					c.r.xs[s.i].WriteStart = at
					s.stamped = true
				}
			}
			if err := c.write(c.wbuf.Bytes()); err != nil {
				return err
			}
		}
		if ready {
			return nil
		}
		select {
		case <-c.wake:
		case <-c.dead:
			return errH2Closed
		}
	}
}

// encodeHeaders encodes a HEADERS frame (and CONTINUATIONs) without END_STREAM for every
// stream. Call with mu held.
func (c *h2conn) encodeHeaders() error {
	for _, s := range c.streams {
		if s.done || len(s.body) == 0 {
			continue
		}
		if err := c.writeHeaders(c.wfr, s, false); err != nil {
			return err
		}
		s.headersSent = true
	}
	return nil
}

// writeHeaders encodes s's HEADERS frame (and CONTINUATIONs) with fr, ending the stream when
// end is set. Call with mu held, in the order the frames are sent (HPACK is stateful).
func (c *h2conn) writeHeaders(fr *http2.Framer, s *h2stream, end bool) error {
	c.hbuf.Reset()
	for _, f := range s.fields {
		if err := c.henc.WriteField(f); err != nil {
			return fmt.Errorf("encode headers: %w", err)
		}
	}
	block := c.hbuf.Bytes()
	for first := true; first || len(block) > 0; first = false {
		n := min(len(block), int(c.maxFrame))
		frag := block[:n]
		block = block[n:]
		var err error
		if first {
			err = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: s.id, BlockFragment: frag, EndHeaders: len(block) == 0, EndStream: end})
		} else {
			err = fr.WriteContinuation(s.id, len(block) == 0, frag)
		}
		if err != nil {
			return fmt.Errorf("encode headers: %w", err)
		}
	}
	return nil
}

// encodeData encodes as much of every stream's body but its last byte as flow control
// allows, keeping one byte of window per stream for the release. It reports whether every
// stream is ready for its release. Call with mu held.
func (c *h2conn) encodeData() (bool, error) {
	var reserve int64
	for _, s := range c.streams {
		if !s.done && s.headersSent && len(s.body) > 0 {
			reserve++
		}
	}
	ready := c.connWindow >= reserve
	for _, s := range c.streams {
		if s.done || !s.headersSent || len(s.body) == 0 {
			continue
		}
		last := len(s.body) - 1
		for s.sent < last {
			n := min(int64(last-s.sent), s.win-1, c.connWindow-reserve, int64(c.maxFrame))
			if n <= 0 {
				break
			}
			if err := c.wfr.WriteData(s.id, false, s.body[s.sent:s.sent+int(n)]); err != nil {
				return false, fmt.Errorf("encode body: %w", err)
			}
			s.sent += int(n)
			s.win -= n
			c.connWindow -= n
		}
		if s.sent < last || s.win < 1 {
			ready = false
		}
	}
	return ready, nil
}

// encodeRelease encodes every open stream's closing frame into c.rel: the last DATA byte, or a
// bodyless stream's whole HEADERS with END_STREAM. Call with mu held, after encodeData
// reported ready.
func (c *h2conn) encodeRelease() error {
	c.relBuf.Reset()
	for _, s := range c.streams {
		if s.done {
			continue
		}
		if n := len(s.body); n > 0 {
			if !s.headersSent {
				continue
			}
			if err := c.relFr.WriteData(s.id, true, s.body[n-1:]); err != nil {
				return fmt.Errorf("encode release: %w", err)
			}
			s.sent = n
			s.win--
			c.connWindow--
		} else {
			if err := c.writeHeaders(c.relFr, s, true); err != nil {
				return fmt.Errorf("encode release: %w", err)
			}
			s.headersSent, s.stamped, s.atRelease = true, true, true
		}
		s.inRelease = true
	}
	c.rel = c.relBuf.Bytes()
	return nil
}

// released records the release time of the streams it carried, or its failure.
func (c *h2conn) released() {
	if len(c.rel) == 0 {
		return
	}
	if c.relErr != nil {
		c.failAndClose(c.errFor(c.relErr))
		return
	}
	for _, s := range c.streams {
		if s.inRelease {
			c.r.xs[s.i].Release = c.relAt
		}
		if s.atRelease {
			c.r.xs[s.i].WriteStart = c.relAt
		}
	}
}

// write sends b in one conn.Write.
func (c *h2conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.conn.Write(b)
	return err
}

// failAndClose ends every open stream with err and closes the connection, which ends
// readLoop.
func (c *h2conn) failAndClose(err *TransportError) {
	c.fail(err)
	c.close()
}

// close closes the connection under the write lock.
func (c *h2conn) close() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.closed = true
	_ = c.conn.Close()
}

// fail ends every open stream with err.
func (c *h2conn) fail(err *TransportError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.streams {
		c.finish(s, err)
	}
}

// finish ends stream s, with err when it failed. Call with mu held.
func (c *h2conn) finish(s *h2stream, err *TransportError) {
	if s.done {
		return
	}
	s.done = true
	c.open--
	x := &c.r.xs[s.i]
	x.Done = c.r.since()
	if err != nil {
		e := *err // each exchange owns its error
		x.Err = &e
	}
}

// active is the open stream with id, or nil. Call with mu held.
func (c *h2conn) active(id uint32) *h2stream {
	if s := c.byID[id]; s != nil && !s.done {
		return s
	}
	return nil
}

// pending reports whether a stream is still open.
func (c *h2conn) pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open > 0
}

// signal tells prepare that a send window grew.
func (c *h2conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// readLoop reads the server's frames until every stream has ended or the connection fails,
// then closes the connection.
func (c *h2conn) readLoop() {
	defer close(c.dead)
	defer c.close()
	for c.pending() {
		f, err := c.rfr.ReadFrame()
		var se http2.StreamError
		switch {
		case errors.As(err, &se):
			c.mu.Lock()
			if s := c.active(se.StreamID); s != nil {
				msg := "malformed response: " + se.Code.String()
				if se.Cause != nil {
					msg += ": " + se.Cause.Error()
				}
				c.reset(s, se.Code, msg)
			}
			c.mu.Unlock()
		case err != nil:
			c.fail(c.errFor(err))
			return
		default:
			c.mu.Lock()
			terr := c.handle(f)
			c.mu.Unlock()
			if terr != nil {
				c.fail(terr)
				return
			}
		}
		if err := c.flushControl(); err != nil {
			c.fail(c.errFor(err))
			return
		}
	}
	_ = c.cfr.WriteGoAway(0, http2.ErrCodeNo, nil)
	_ = c.flushControl()
}

// flushControl sends the frames readLoop encoded.
func (c *h2conn) flushControl() error {
	if c.cbuf.Len() == 0 {
		return nil
	}
	err := c.write(c.cbuf.Bytes())
	c.cbuf.Reset()
	return err
}

// handle takes one frame into account; a returned error ends the connection. Call with mu
// held.
func (c *h2conn) handle(f http2.Frame) *TransportError {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		if err := c.applySettings(f); err != nil {
			return &TransportError{Kind: ErrProtocol, Message: err.Error()}
		}
		_ = c.cfr.WriteSettingsAck()
		c.signal()
	case *http2.WindowUpdateFrame:
		if f.StreamID == 0 {
			c.connWindow += int64(f.Increment)
		} else if s := c.byID[f.StreamID]; s != nil {
			s.win += int64(f.Increment)
		}
		c.signal()
	case *http2.PingFrame:
		if !f.IsAck() {
			_ = c.cfr.WritePing(true, f.Data)
		} else if f.Data == h2SettlePing && !c.settledDone {
			c.settledDone = true
			close(c.settled)
		}
	case *http2.MetaHeadersFrame:
		if s := c.active(f.StreamID); s != nil {
			c.onHeaders(s, f)
		}
	case *http2.DataFrame:
		c.onData(f)
	case *http2.RSTStreamFrame:
		if s := c.active(f.StreamID); s != nil {
			c.finish(s, &TransportError{Kind: ErrProtocol, Message: "stream reset: " + f.ErrCode.String()})
		}
	case *http2.GoAwayFrame:
		for _, s := range c.streams {
			if !s.done && s.id > f.LastStreamID {
				c.finish(s, &TransportError{Kind: ErrProtocol, Message: fmt.Sprintf(
					"GOAWAY %s: the server did not process stream %d (last stream %d)", f.ErrCode, s.id, f.LastStreamID)})
			}
		}
	case *http2.PushPromiseFrame:
		return &TransportError{Kind: ErrProtocol, Message: "PUSH_PROMISE although push is disabled"}
	}
	return nil
}

// onHeaders takes a stream's response headers (or trailers, which end it). Call with mu
// held.
func (c *h2conn) onHeaders(s *h2stream, f *http2.MetaHeadersFrame) {
	x := &c.r.xs[s.i]
	if x.FirstByte == 0 {
		x.FirstByte = c.r.since()
	}
	if f.Truncated {
		c.reset(s, http2.ErrCodeProtocol, fmt.Sprintf("response headers exceed %d bytes", h2MaxHeaderList))
		return
	}
	if s.gotHeaders {
		if f.StreamEnded() {
			c.finish(s, nil)
		} else {
			c.reset(s, http2.ErrCodeProtocol, "trailers without END_STREAM")
		}
		return
	}
	status, err := strconv.Atoi(f.PseudoValue("status"))
	if err != nil || status < 100 || status > 999 {
		c.reset(s, http2.ErrCodeProtocol, fmt.Sprintf("malformed :status %q", f.PseudoValue("status")))
		return
	}
	if status < 200 {
		if status == http.StatusSwitchingProtocols || f.StreamEnded() {
			c.reset(s, http2.ErrCodeProtocol, fmt.Sprintf("informational status %d cannot end a stream", status))
		}
		return
	}
	s.gotHeaders = true
	regular := f.RegularFields()
	h := make(http.Header, len(regular))
	for _, hf := range regular {
		k := http.CanonicalHeaderKey(hf.Name)
		h[k] = append(h[k], hf.Value)
	}
	x.Status, x.Proto, x.Header = status, "HTTP/2.0", h
	if f.StreamEnded() {
		c.finish(s, nil)
	}
}

// onData takes a DATA frame: its body bytes up to the cap, and the flow-control credit it
// used. Call with mu held.
func (c *h2conn) onData(f *http2.DataFrame) {
	n := f.Header().Length
	c.recvConn += n
	if c.recvConn >= h2ConnWindow/2 {
		_ = c.cfr.WriteWindowUpdate(0, c.recvConn)
		c.recvConn = 0
	}
	s := c.active(f.StreamID)
	if s == nil {
		return
	}
	if !s.gotHeaders {
		c.reset(s, http2.ErrCodeProtocol, "DATA before the response HEADERS")
		return
	}
	x := &c.r.xs[s.i]
	data := f.Data()
	if room := c.r.e.opts.MaxBody - int64(len(x.Body)); int64(len(data)) > room {
		x.Body = append(x.Body, data[:room]...)
		x.Truncated = true
		_ = c.cfr.WriteRSTStream(s.id, http2.ErrCodeCancel)
		c.finish(s, nil)
		return
	}
	x.Body = append(x.Body, data...)
	if f.StreamEnded() {
		c.finish(s, nil)
		return
	}
	s.recvd += n
	if s.recvd >= h2StreamWindow/2 {
		_ = c.cfr.WriteWindowUpdate(s.id, s.recvd)
		s.recvd = 0
	}
}

// reset ends stream s with a protocol error and tells the server. Call with mu held.
func (c *h2conn) reset(s *h2stream, code http2.ErrCode, msg string) {
	_ = c.cfr.WriteRSTStream(s.id, code)
	c.finish(s, &TransportError{Kind: ErrProtocol, Message: msg})
}

// errFor classifies an error of this connection's reads and writes.
func (c *h2conn) errFor(err error) *TransportError {
	var ce http2.ConnectionError
	var opErr *net.OpError
	switch {
	case c.ctx.Err() != nil:
		return &TransportError{Kind: ErrTimeout, Message: "the race was cancelled: " + c.ctx.Err().Error()}
	case isTimeout(err):
		return &TransportError{Kind: ErrTimeout, Message: fmt.Sprintf("no complete response within %v", c.r.e.opts.Timeout)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, errH2Closed):
		return &TransportError{Kind: ErrReset, Message: "connection closed before the response ended"}
	case errors.As(err, &ce):
		msg := err.Error()
		if d := c.rfr.ErrorDetail(); d != nil {
			msg += ": " + d.Error()
		}
		return &TransportError{Kind: ErrProtocol, Message: msg}
	case errors.As(err, &opErr), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return &TransportError{Kind: ErrReset, Message: err.Error()}
	}
	return &TransportError{Kind: ErrProtocol, Message: err.Error()}
}

// h2fields are the header fields of req to t: the pseudo-headers (the target names the
// authority: a caller's Host header is dropped, as lastbyte and net/http do), then its headers
// lowercased (less the connection-specific ones HTTP/2 forbids), then content-length.
func h2fields(t target, req Request, rawURL string) ([]hpack.HeaderField, error) {
	h, err := newHead(rawURL, req, func(name string) bool {
		switch strings.ToLower(name) {
		case "host", "content-length", "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
			return true
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	fs := make([]hpack.HeaderField, 0, 5+len(h.fields))
	fs = append(fs,
		hpack.HeaderField{Name: ":method", Value: h.method},
		hpack.HeaderField{Name: ":scheme", Value: t.base.Scheme},
		hpack.HeaderField{Name: ":authority", Value: t.base.Host},
		hpack.HeaderField{Name: ":path", Value: h.uri},
	)
	for _, f := range h.fields {
		name := strings.ToLower(f.name)
		if name == "te" && f.value != "trailers" {
			continue
		}
		fs = append(fs, hpack.HeaderField{Name: name, Value: f.value, Sensitive: IsSensitive(f.name)})
	}
	if h.length {
		fs = append(fs, hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(req.Body))})
	}
	return fs, nil
}

// speaksH2 reports whether t speaks HTTP/2: by ALPN for https, by an h2c prior-knowledge
// preface answered with SETTINGS within a short wait for http. Any failure means no.
func (e *Engine) speaksH2(ctx context.Context, t target) bool {
	conn, terr := e.dial(ctx, t, []string{http2.NextProtoTLS, "http/1.1"})
	if terr != nil {
		return false
	}
	defer func() { _ = conn.Close() }()
	if tc, ok := conn.Conn.(*tls.Conn); ok {
		return tc.ConnectionState().NegotiatedProtocol == http2.NextProtoTLS
	}
	defer bound(ctx, conn, time.Now().Add(min(e.opts.Timeout, h2ProbeWait)))()
	var b bytes.Buffer
	b.WriteString(http2.ClientPreface)
	_ = http2.NewFramer(&b, nil).WriteSettings()
	if _, err := conn.Write(b.Bytes()); err != nil {
		return false
	}
	fh, err := http2.ReadFrameHeader(conn)
	return err == nil && fh.Type == http2.FrameSettings && fh.StreamID == 0 && !fh.Flags.Has(http2.FlagSettingsAck)
}

// bodyless is 1 when req has no body, else 0 (a sort key).
func bodyless(req Request) int {
	if len(req.Body) == 0 {
		return 1
	}
	return 0
}

package engine

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2MemConn is a connection whose server sends a fixed byte string then closes; what the
// client writes is discarded.
type h2MemConn struct {
	r      *bytes.Reader
	closed atomic.Bool
}

func (m *h2MemConn) Read(b []byte) (int, error) {
	if m.closed.Load() {
		return 0, net.ErrClosed
	}
	return m.r.Read(b)
}

func (m *h2MemConn) Write(b []byte) (int, error) {
	if m.closed.Load() {
		return 0, net.ErrClosed
	}
	return len(b), nil
}

func (m *h2MemConn) Close() error                     { m.closed.Store(true); return nil }
func (m *h2MemConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (m *h2MemConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (m *h2MemConn) SetDeadline(time.Time) error      { return nil }
func (m *h2MemConn) SetReadDeadline(time.Time) error  { return nil }
func (m *h2MemConn) SetWriteDeadline(time.Time) error { return nil }

// h2Frames encodes frames with a fresh framer and HPACK encoder.
func h2Frames(write func(fr *http2.Framer, enc func(...hpack.HeaderField) []byte)) []byte {
	var out, hb bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	he := hpack.NewEncoder(&hb)
	write(fr, func(fs ...hpack.HeaderField) []byte {
		hb.Reset()
		for _, f := range fs {
			_ = he.WriteField(f)
		}
		return bytes.Clone(hb.Bytes())
	})
	return out.Bytes()
}

func h2Status(s string) hpack.HeaderField { return hpack.HeaderField{Name: ":status", Value: s} }

// FuzzH2Response feeds arbitrary server bytes, after a valid SETTINGS frame, to the h2 race
// of three streams: it must not panic, must end, and must leave every exchange either
// answered or failed.
func FuzzH2Response(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	f.Add(h2Frames(func(fr *http2.Framer, enc func(...hpack.HeaderField) []byte) {
		_ = fr.WriteSettingsAck()
		_ = fr.WriteWindowUpdate(0, 1<<20)
		_ = fr.WriteWindowUpdate(5, 1<<20)
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc(h2Status("200")), EndHeaders: true, EndStream: true})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: enc(h2Status("409"), hpack.HeaderField{Name: "content-type", Value: "application/problem+json"}), EndHeaders: true})
		_ = fr.WriteData(3, false, []byte(`{"title":"conflict"}`))
		_ = fr.WriteData(3, true, nil)
		_ = fr.WriteRSTStream(5, http2.ErrCodeRefusedStream)
	}))
	f.Add(h2Frames(func(fr *http2.Framer, enc func(...hpack.HeaderField) []byte) {
		_ = fr.WritePing(false, [8]byte{1})
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}, http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
		block := enc(h2Status("103"), hpack.HeaderField{Name: "link", Value: "</a>"})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndHeaders: true})
		block = enc(h2Status("200"), hpack.HeaderField{Name: "x-long", Value: string(bytes.Repeat([]byte("v"), 300))})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:10]})
		_ = fr.WriteContinuation(1, true, block[10:])
		_ = fr.WriteData(1, false, bytes.Repeat([]byte("d"), 150))
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc(hpack.HeaderField{Name: "grpc-status", Value: "0"}), EndHeaders: true, EndStream: true})
		_ = fr.WriteGoAway(1, http2.ErrCodeEnhanceYourCalm, []byte("bye"))
	}))
	f.Add(h2Frames(func(fr *http2.Framer, enc func(...hpack.HeaderField) []byte) {
		_ = fr.WriteData(1, true, []byte("data first"))
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: enc(h2Status("abc")), EndHeaders: true})
		_ = fr.WritePushPromise(http2.PushPromiseParam{StreamID: 5, PromiseID: 2, BlockFragment: enc(), EndHeaders: true})
	}))
	settings := h2Frames(func(fr *http2.Framer, _ func(...hpack.HeaderField) []byte) {
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxBody = 100
		tg := target{base: &url.URL{Scheme: "http", Host: "fuzz.test"}, raw: "http://fuzz.test"}
		r := New(Options{Timeout: time.Second, MaxBody: maxBody}).newRace([]target{tg}, []Request{
			{Method: "GET", Path: "/"},
			{Method: "POST", Path: "/items", Body: []byte("x")},
			{Method: "PUT", Path: "/items/1", Body: bytes.Repeat([]byte("y"), 70_000)},
		})
		c := h2TestConn(t, r, &h2MemConn{r: bytes.NewReader(append(bytes.Clone(settings), data...))})
		r.start()
		done := make(chan struct{})
		go func() {
			defer close(done)
			r.h2run(context.Background(), []*h2conn{c})
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the race did not end after the server's bytes ran out")
		}
		for i, x := range r.xs {
			if x.Done <= 0 {
				t.Errorf("racer %d never ended", i)
			}
			if x.Err == nil && x.Status < 200 {
				t.Errorf("racer %d: no error and no final status (%d)", i, x.Status)
			}
			if len(x.Body) > maxBody {
				t.Errorf("racer %d: body of %d bytes beyond the cap %d", i, len(x.Body), maxBody)
			}
		}
	})
}

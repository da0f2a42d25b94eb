package engine

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzLastByteResponse feeds arbitrary server bytes to the lastbyte response path: it must
// neither panic nor hang, and what it records must be consistent.
func FuzzLastByteResponse(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nclose-delimited body",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 409 Conflict\r\nContent-Type: application/problem+json\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\nshort",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-",
		"HTTP/9.9 999 ?\r\n\r\n",
		"HTTP/1.1 099 Early\r\n\r\n",
		"SSH-2.0-OpenSSH_9.6\r\n",
		"\x16\x03\x01\x00\x05hello",
		"",
	} {
		f.Add([]byte(seed), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, oneByte bool) {
		const maxBody = 64
		var conn io.Reader = bytes.NewReader(data)
		if oneByte {
			conn = iotest.OneByteReader(conn)
		}
		x := &Exchange{}
		lbReadResponse(&lbReader{conn: conn, r: lbStartedRace(), x: x}, "GET", maxBody)
		if x.Err != nil {
			switch x.Err.Kind {
			case ErrReset, ErrProtocol:
			default:
				t.Fatalf("error kind %q from a reader that only ends: %v", x.Err.Kind, x.Err)
			}
		} else if x.Status < 100 || x.Status > 999 || x.Proto == "" {
			t.Fatalf("no error, yet status %d, proto %q", x.Status, x.Proto)
		}
		if len(x.Body) > maxBody || x.Truncated && len(x.Body) != maxBody {
			t.Fatalf("body of %d bytes, truncated %v; cap %d", len(x.Body), x.Truncated, maxBody)
		}
		if len(data) > 0 && x.FirstByte == 0 {
			t.Fatal("bytes arrived but no first byte was stamped")
		}
	})
}

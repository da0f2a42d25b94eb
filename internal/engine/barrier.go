package engine

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
)

// fireBarrier is the naive baseline: one goroutine per racer with its own net/http client,
// all blocked on a channel that is closed to release them.
func (r *race) fireBarrier(ctx context.Context) {
	clients := make([]*http.Client, len(r.reqs))
	for i := range clients {
		clients[i] = r.e.httpClient()
	}
	ready := make(chan struct{})
	var wg sync.WaitGroup
	r.start()
	for i := range r.reqs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer clients[i].CloseIdleConnections()
			<-ready
			r.doHTTP(ctx, clients[i], i)
		}(i)
	}
	close(ready)
	wg.Wait()
}

// httpClient is a net/http client that never follows redirects and never reuses another
// racer's connection.
func (e *Engine) httpClient() *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: e.opts.Timeout}).DialContext,
		TLSClientConfig:     e.tlsConfig(),
		TLSHandshakeTimeout: e.opts.Timeout,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 1,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// tlsConfig is a copy of the configured TLS settings (nil-safe).
func (e *Engine) tlsConfig() *tls.Config {
	if e.opts.TLS == nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return e.opts.TLS.Clone()
}

// doHTTP sends racer i through c and records the exchange.
func (r *race) doHTTP(ctx context.Context, c *http.Client, i int) {
	x := &r.xs[i]
	ctx, cancel := context.WithTimeout(ctx, r.e.opts.Timeout)
	defer cancel()
	req := r.reqs[i]
	hr, err := http.NewRequestWithContext(ctx, req.Method, x.Request.URL, bytes.NewReader(req.Body))
	if err != nil {
		x.Err = &TransportError{Kind: ErrProtocol, Message: err.Error()}
		return
	}
	for k, vs := range req.Header {
		hr.Header[k] = vs
	}
	x.WriteStart = r.since()
	x.Release = x.WriteStart
	resp, err := c.Do(hr)
	if err != nil {
		x.Done = r.since()
		x.Err = classify(err)
		return
	}
	defer resp.Body.Close()
	x.FirstByte = r.since()
	x.Status, x.Proto, x.Header = resp.StatusCode, resp.Proto, Redact(resp.Header, nil)
	x.Body, x.Truncated, err = readCapped(resp.Body, r.e.opts.MaxBody)
	x.Done = r.since()
	if err != nil {
		x.Err = classify(err)
	}
}

// readCapped reads up to limit bytes of body, reporting whether more was there.
func readCapped(body io.Reader, limit int64) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if int64(len(b)) > limit {
		return b[:limit], true, err
	}
	return b, false, err
}

// classify turns a transport error into data.
func classify(err error) *TransportError {
	var (
		opErr   *net.OpError
		certErr *tls.CertificateVerificationError
		recErr  tls.RecordHeaderError
		dnsErr  *net.DNSError
	)
	kind := ErrReset
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), isTimeout(err):
		kind = ErrTimeout
	case errors.As(err, &certErr), errors.As(err, &recErr):
		kind = ErrTLS
	case errors.As(err, &dnsErr):
		kind = ErrDial
	case errors.As(err, &opErr) && opErr.Op == "dial":
		kind = ErrDial
	}
	return &TransportError{Kind: kind, Message: err.Error()}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

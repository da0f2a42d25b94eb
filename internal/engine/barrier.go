package engine

import (
	"bytes"
	"context"
	"maps"
	"net"
	"net/http"
	"sync"
)

// fireBarrier is the naive baseline: one goroutine per racer with its own net/http client,
// all blocked on a channel that is closed to release them. Clients and requests are built
// before the release, so a released racer only stamps its times and sends.
func (r *race) fireBarrier(ctx context.Context) {
	r.start()
	ctx, cancel := context.WithDeadline(ctx, r.deadline())
	defer cancel()
	ready := make(chan struct{})
	var wg sync.WaitGroup
	for i, req := range r.reqs {
		x := &r.xs[i]
		hr, err := http.NewRequestWithContext(ctx, req.Method, x.Request.URL, bytes.NewReader(req.Body))
		if err != nil {
			x.Err = &TransportError{Kind: ErrProtocol, Message: err.Error()}
			continue
		}
		maps.Copy(hr.Header, req.Header)
		c := r.e.httpClient()
		wg.Go(func() {
			defer c.CloseIdleConnections()
			<-ready
			r.doHTTP(c, hr, x)
		})
	}
	close(ready)
	wg.Wait()
}

// httpClient is a net/http client that never follows redirects and never reuses another
// racer's connection.
func (e *Engine) httpClient() *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: e.opts.Timeout, Resolver: e.opts.Resolver}).DialContext,
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

// doHTTP sends hr through c and records the exchange in x.
func (r *race) doHTTP(c *http.Client, hr *http.Request, x *Exchange) {
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
	err = x.takeResponse(resp, r.e.opts.MaxBody)
	x.Done = r.since()
	if err != nil {
		x.Err = classify(err)
	}
}

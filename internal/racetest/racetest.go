// Package racetest sends JSON requests to test servers, one at a time or colliding, for the
// reference server's tests and load benchmark. It is the plain goroutine baseline, not the
// firing engine: good enough to make a correct server prove itself under contention.
package racetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Request is one request: Body is nil (none), a string or []byte (sent raw) or a value to
// encode as JSON; Header holds name/value pairs, Content-Type overriding application/json.
type Request struct {
	Method, Path string
	Body         any
	Header       []string
}

// Reply is a response read whole, with how long it took.
type Reply struct {
	Status  int
	Header  http.Header
	Body    []byte
	Latency time.Duration
	// Err is the transport error, if the request got no response.
	Err error
}

// Object decodes the body as a JSON object; nil if it is not one.
func (r Reply) Object() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	return m
}

// Client sends requests to one or more base URLs of one API (replicas), round-robin by racer.
type Client struct {
	HTTP  *http.Client
	Bases []string
}

// Do sends req to base i (mod the number of bases).
func (c *Client) Do(ctx context.Context, i int, req Request) Reply {
	var rd io.Reader
	switch b := req.Body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return Reply{Err: fmt.Errorf("encode body: %w", err)}
		}
		rd = bytes.NewReader(data)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, c.Bases[i%len(c.Bases)]+req.Path, rd)
	if err != nil {
		return Reply{Err: err}
	}
	if rd != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	for k := 0; k+1 < len(req.Header); k += 2 {
		if http.CanonicalHeaderKey(req.Header[k]) == "Content-Type" {
			hr.Header.Set(req.Header[k], req.Header[k+1])
			continue
		}
		hr.Header.Add(req.Header[k], req.Header[k+1])
	}
	start := time.Now()
	res, err := c.HTTP.Do(hr)
	if err != nil {
		return Reply{Err: fmt.Errorf("%s %s: %w", req.Method, req.Path, err), Latency: time.Since(start)}
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	out := Reply{Status: res.StatusCode, Header: res.Header, Body: data, Latency: time.Since(start)}
	if err != nil {
		out.Err = fmt.Errorf("%s %s: read body: %w", req.Method, req.Path, err)
	}
	return out
}

// Collide sends the n requests built by mk at once, racer i to base i, and returns the replies
// in racer order.
func (c *Client) Collide(ctx context.Context, n int, mk func(i int) Request) []Reply {
	out := make([]Reply, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		req := mk(i)
		wg.Go(func() {
			<-start
			out[i] = c.Do(ctx, i, req)
		})
	}
	close(start)
	wg.Wait()
	return out
}

// Statuses counts replies by status (0 for transport errors).
func Statuses(rs []Reply) map[int]int {
	m := map[int]int{}
	for _, r := range rs {
		m[r.Status]++
	}
	return m
}

// Package specload loads an OpenAPI document for conflictcheck: from a file or an http(s) URL,
// JSON or YAML, OpenAPI 3.0/3.1 or Swagger 2.0 (converted), with Overlays applied, every $ref
// vetted before anything resolves it, and every operation's x-conflict validated.
//
// Hostile input is expected: sizes, nesting, YAML aliases and referenced files are bounded,
// and every failure is an *Error whose message is one line.
package specload

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/conflictcheck/conflictcheck/internal/xconflict"
	"github.com/getkin/kin-openapi/openapi3"
)

// DefaultMaxBytes is the size cap of a document (after gzip decompression) unless
// Options.MaxBytes says otherwise.
const DefaultMaxBytes = 64 << 20

// DefaultFetchTimeout bounds the fetch of an http(s) document with the default client.
const DefaultFetchTimeout = 30 * time.Second

// Options tunes Load; the zero value is safe.
type Options struct {
	// Overlays are Overlay documents (paths or http(s) URLs), applied in order.
	Overlays []string
	// AllowRemoteRefs allows $refs to absolute paths, to files outside the spec's folder, to
	// file: and http(s) URLs, and the relative $refs of a spec fetched from a URL. Without it,
	// loading opens no network connection but the spec's own URL.
	AllowRemoteRefs bool
	// HTTPClient fetches http(s) documents; nil means a client with DefaultFetchTimeout.
	HTTPClient *http.Client
	// MaxBytes caps each document's size; 0 means DefaultMaxBytes.
	MaxBytes int64
}

// Document is a loaded spec.
type Document struct {
	// Source is the path or URL as given.
	Source string
	// Version is the document's declared version: "3.0.3", "3.1.0", "2.0".
	Version string
	// T is the document as OpenAPI 3 (converted from Swagger 2.0 when needed), refs resolved.
	T *openapi3.T
	// Conflicts maps an operation's ID to its validated x-conflict scenarios.
	Conflicts map[string][]xconflict.Conflict
	// Operations lists every operation of T.Paths, paths in document order, methods in
	// document order within a path.
	Operations []Operation

	byID map[string]int // Operations' index by ID

	raw       []byte // the document's text, for Lines
	linesOnce sync.Once
	lines     map[string]int
}

// Line is the 1-based line of operation id (operationId or "METHOD /path") in the document's
// own text, 0 when unknown (an operation an overlay added, a document that does not parse). The
// lines are computed on first use: reports want them, planning does not.
func (d *Document) Line(id string) int {
	d.linesOnce.Do(func() { d.lines = OperationLines(d.raw) })
	return d.lines[id]
}

// Parameters are the parameters o takes: its own, then its path item's that it does not
// override (same name and location, names compared case-insensitively).
func (o Operation) Parameters() []*openapi3.Parameter {
	var out []*openapi3.Parameter
	seen := map[string]bool{}
	for _, refs := range []openapi3.Parameters{o.opParams(), o.itemParams()} {
		for _, r := range refs {
			if r == nil || r.Value == nil {
				continue
			}
			if k := r.Value.In + ":" + strings.ToLower(r.Value.Name); !seen[k] {
				seen[k] = true
				out = append(out, r.Value)
			}
		}
	}
	return out
}

func (o Operation) opParams() openapi3.Parameters {
	if o.Op == nil {
		return nil
	}
	return o.Op.Parameters
}

func (o Operation) itemParams() openapi3.Parameters {
	if o.Item == nil {
		return nil
	}
	return o.Item.Parameters
}

// Operation returns the operation whose ID (operationId, or "METHOD /path") is id.
func (d *Document) Operation(id string) (Operation, bool) {
	i, ok := d.byID[id]
	if !ok {
		return Operation{}, false
	}
	return d.Operations[i], true
}

// Operation is one operation of a Document.
type Operation struct {
	// ID is the operationId, or "METHOD /path" for an operation without one.
	ID string
	// Method is the upper-case HTTP method.
	Method string
	// Path is the path template as written in the document.
	Path string
	// Op is the operation, and Item the path item that holds it (whose parameters apply too).
	Op   *openapi3.Operation
	Item *openapi3.PathItem
}

// Error is a spec that could not be loaded. Its message is one line: "load spec SOURCE: cause".
type Error struct {
	Source string
	Err    error
}

// maxMessage bounds an error message, which may quote a hostile document.
const maxMessage = 600

func (e *Error) Error() string {
	return "load spec " + e.Source + ": " + truncate(strings.Join(strings.Fields(e.Err.Error()), " "), maxMessage)
}

// truncate cuts s to at most n bytes and a "…", at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func (e *Error) Unwrap() error { return e.Err }

// Load reads, checks and resolves the spec at source, a file path or an http(s) URL.
func Load(ctx context.Context, source string, opts Options) (*Document, error) {
	opts = opts.withDefaults()
	doc, err := func() (*Document, error) {
		src, err := open(ctx, source, opts)
		if err != nil {
			return nil, err
		}
		return load(ctx, src, opts)
	}()
	if err != nil {
		return nil, &Error{Source: source, Err: err}
	}
	return doc, nil
}

// LoadBytes is Load for a document held in memory, such as the embedded reference spec: name
// is how errors refer to it, and references outside the document are refused.
func LoadBytes(ctx context.Context, name string, data []byte, opts Options) (*Document, error) {
	opts = opts.withDefaults()
	if int64(len(data)) > opts.MaxBytes {
		return nil, &Error{Source: name, Err: tooBig(opts.MaxBytes)}
	}
	doc, err := load(ctx, &source{name: name, data: data}, opts)
	if err != nil {
		return nil, &Error{Source: name, Err: err}
	}
	return doc, nil
}

func (o Options) withDefaults() Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: DefaultFetchTimeout}
	}
	return o
}

// source is a document's bytes and where its relative references resolve.
type source struct {
	name string
	data []byte
	// base is the document's location for kin-openapi: an absolute file path or a URL; nil
	// for a document given as bytes.
	base *url.URL
	// path is the document's absolute file path, dir its folder with symlinks resolved:
	// referenced files must lie under it. Both are empty for a URL.
	path, dir string
}

// open reads the document at name, a file path or an http(s) (or file:) URL.
func open(ctx context.Context, name string, opts Options) (*source, error) {
	if scheme, _, ok := strings.Cut(name, "://"); ok && !strings.ContainsAny(scheme, `/\`) {
		u, err := url.Parse(name)
		if err != nil {
			return nil, fmt.Errorf("bad URL: %w", err)
		}
		switch strings.ToLower(u.Scheme) {
		case "http", "https":
			data, err := fetch(ctx, name, opts)
			if err != nil {
				return nil, err
			}
			return &source{name: name, data: data, base: u}, nil
		case "file":
			name = u.Path
		default:
			return nil, fmt.Errorf("unsupported URL scheme %q (want a file path or an http(s) URL)", u.Scheme)
		}
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, err
	}
	data, err := readFile(abs, opts.MaxBytes)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return nil, err
	}
	return &source{name: name, data: data, base: &url.URL{Path: filepath.ToSlash(abs)}, path: abs, dir: dir}, nil
}

// readFile reads a file of at most max bytes (once decompressed, if gzipped).
func readFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errors.New("no such file")
		}
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return nil, errors.New("is a folder, not a file")
	}
	if info.Mode().IsRegular() && info.Size() > limit {
		return nil, tooBig(limit)
	}
	return readCapped(f, limit, info.Size())
}

// fetch GETs an http(s) document of at most opts.MaxBytes bytes.
func fetch(ctx context.Context, u string, opts Options) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/yaml, text/yaml, */*;q=0.5")
	resp, err := opts.HTTPClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if resp.ContentLength > opts.MaxBytes {
		return nil, tooBig(opts.MaxBytes)
	}
	data, err := readCapped(resp.Body, opts.MaxBytes, resp.ContentLength)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return data, nil
}

// readCapped reads r up to max bytes, decompressing gzip transparently (the cap applies to
// the decompressed bytes, which bounds a zip bomb).
func readCapped(r io.Reader, limit, sizeHint int64) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, min(limit, max(sizeHint, 0))+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(r, limit+1)); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	if int64(len(data)) > limit {
		return nil, tooBig(limit)
	}
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	out := bytes.NewBuffer(make([]byte, 0, min(limit, 4*int64(len(data)))+bytes.MinRead))
	if _, err := out.ReadFrom(io.LimitReader(zr, limit+1)); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if int64(out.Len()) > limit {
		return nil, fmt.Errorf("decompressed, %w", tooBig(limit))
	}
	return out.Bytes(), nil
}

func tooBig(limit int64) error {
	return fmt.Errorf("larger than the %s limit (Options.MaxBytes)", byteSize(limit))
}

func byteSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d-byte", n)
}

package specload

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v4"

	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
)

// RefError is a $ref the loader refuses or cannot resolve.
type RefError struct {
	Ref    string // as written
	At     string // JSON pointer of the object holding it, or the file that holds it
	Reason string
}

func (e *RefError) Error() string {
	if e.At == "" {
		return fmt.Sprintf("$ref %q: %s", e.Ref, e.Reason)
	}
	return fmt.Sprintf("$ref %q at %s: %s", e.Ref, e.At, e.Reason)
}

// remoteHint says what is read without AllowRemoteRefs, and how to allow more.
const remoteHint = "only files in the spec's own folder are read unless remote references are allowed (--allow-remote-refs)"

// errRemoteRefs is the reason given for an external $ref refused without AllowRemoteRefs.
const errRemoteRefs = "refused: " + remoteHint

// errNoFolder is the reason given for a relative $ref of a spec given as bytes.
const errNoFolder = "refused: the spec has no folder to resolve it in"

// literalKeys hold values that are data, not OpenAPI objects, so a "$ref" member inside them is
// not a reference; like extensions (x-…), unless they are names in a map of named things.
var literalKeys = map[string]bool{"example": true, "default": true, "enum": true, "const": true}

// namedMaps are the objects whose keys are names (a property called "default", the default
// response), not keywords.
var namedMaps = map[string]bool{
	"properties": true, "patternProperties": true, "$defs": true, "definitions": true, "responses": true,
	"schemas": true, "parameters": true, "headers": true, "requestBodies": true, "securitySchemes": true,
	"links": true, "callbacks": true, "pathItems": true, "paths": true, "webhooks": true, "content": true,
	"encoding": true, "dependentSchemas": true, "examples": true,
}

// refSite is one $ref found in the document.
type refSite struct {
	node *yaml.Node // the scalar holding the reference
	at   string     // JSON pointer of the object holding it
}

// checkRefs vets every $ref of the document before anything resolves it (see Options):
// internal references must point at something, a $ref equal to a schema's absolute $id is
// rewritten to point at that schema (kin-openapi would fetch it as a remote document), and
// external references must be files under the spec's folder unless opts.AllowRemoteRefs. It
// reports whether any external reference remains, and whether it rewrote one.
func checkRefs(root *yaml.Node, src *source, opts Options) (external, rewritten bool, err error) {
	var sites []refSite
	ids := map[string]string{}
	var path []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i].Value, n.Content[i+1]
				switch {
				case k == "$ref" && v.Kind == yaml.ScalarNode:
					sites = append(sites, refSite{node: v, at: joinPointer(path)})
					continue
				case k == "$id" && v.Kind == yaml.ScalarNode:
					if u, err := url.Parse(v.Value); err == nil && u.IsAbs() {
						u.Fragment = ""
						ids[u.String()] = joinPointer(path)
					}
					continue
				case len(path) > 0 && namedMaps[path[len(path)-1]]:
				case literalKeys[k], strings.HasPrefix(k, "x-"),
					k == "examples" && v.Kind == yaml.SequenceNode,
					k == "value" && len(path) >= 2 && path[len(path)-2] == "examples":
					continue
				}
				path = append(path, k)
				walk(v)
				path = path[:len(path)-1]
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				path = append(path, strconv.Itoa(i))
				walk(c)
				path = path[:len(path)-1]
			}
		}
	}
	walk(root)

	ix := &index{root: root, maps: map[*yaml.Node]map[string]*yaml.Node{}, seen: map[string]bool{}}
	for _, s := range sites {
		was := s.node.Value
		ext, err := checkRef(ix, s, ids, src, opts)
		if err != nil {
			return false, false, err
		}
		external = external || ext
		rewritten = rewritten || s.node.Value != was
	}
	return external, rewritten, nil
}

// index answers JSON pointer lookups in a document, indexing its large mappings (a document's
// schemas or paths number thousands) and remembering the pointers that resolved.
type index struct {
	root *yaml.Node
	maps map[*yaml.Node]map[string]*yaml.Node
	seen map[string]bool
}

func (ix *index) has(ptr string) bool {
	if ix.seen[ptr] {
		return true
	}
	n := ix.root
	if ptr != "" {
		if ptr[0] != '/' {
			return false
		}
		for tok := range strings.SplitSeq(ptr[1:], "/") {
			tok = runtimeexpr.UnescapeToken(tok)
			if n.Kind == yaml.MappingNode && len(n.Content) > 32 {
				m := ix.maps[n]
				if m == nil {
					m = make(map[string]*yaml.Node, len(n.Content)/2)
					for i := 0; i+1 < len(n.Content); i += 2 {
						m[n.Content[i].Value] = n.Content[i+1]
					}
					ix.maps[n] = m
				}
				n = m[tok]
			} else {
				n = child(n, tok)
			}
			if n == nil {
				return false
			}
		}
	}
	ix.seen[ptr] = true
	return true
}

// checkRef vets one reference and reports whether it is external.
func checkRef(ix *index, s refSite, ids map[string]string, src *source, opts Options) (bool, error) {
	ref := s.node.Value
	refErr := func(reason string) error { return &RefError{Ref: ref, At: s.at, Reason: reason} }
	if ref == "" {
		return false, refErr("empty reference")
	}
	if ref[0] == '#' {
		frag, err := url.PathUnescape(ref[1:])
		if err != nil {
			return false, refErr("bad escape in the fragment")
		}
		if frag != "" && frag[0] != '/' {
			return false, nil // a plain-name fragment ($anchor): kin-openapi's business
		}
		if !ix.has(frag) {
			return false, refErr("no such location in the document")
		}
		return false, nil
	}
	u, err := url.Parse(ref)
	if err != nil {
		return false, refErr("not a URI reference")
	}
	if u.IsAbs() {
		frag := u.Fragment
		u.Fragment = ""
		if at, ok := ids[u.String()]; ok {
			// A reference to a schema's $id: point at the schema instead.
			if frag != "" && frag[0] != '/' {
				return false, refErr("anchors inside a $id schema are not supported")
			}
			s.node.Value = "#" + escapeFragment(at+frag)
			if !ix.has(at + frag) {
				return false, refErr("no such location in the schema with that $id")
			}
			return false, nil
		}
	}
	if opts.AllowRemoteRefs {
		return true, nil
	}
	switch {
	case u.Scheme == "http" || u.Scheme == "https":
		return false, refErr(errRemoteRefs)
	case u.Scheme != "":
		return false, refErr(fmt.Sprintf("refused: a %s: reference is not a file of the spec's folder", u.Scheme))
	case src.base == nil || src.dir == "":
		if src.base != nil {
			return false, refErr(errRemoteRefs + " (the spec itself was fetched from a URL)")
		}
		return false, refErr(errNoFolder)
	case u.Host != "":
		return false, refErr(errRemoteRefs)
	case filepath.IsAbs(filepath.FromSlash(u.Path)) || strings.HasPrefix(u.Path, "/"):
		return false, refErr("refused: an absolute path; " + remoteHint)
	}
	target := filepath.Join(filepath.Dir(src.path), filepath.FromSlash(u.Path))
	if err := src.inside(target); err != nil {
		return false, refErr(err.Error())
	}
	return true, nil
}

// inside checks that the file at p exists and lies under the spec's folder, symlinks followed.
func (src *source) inside(p string) error {
	if !within(src.dir, p) {
		return errors.New("refused: the file is outside the spec's folder " + src.dir)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("no such file")
		}
		return err
	}
	if !within(src.dir, real) {
		return errors.New("refused: the file is a link to outside the spec's folder " + src.dir)
	}
	return nil
}

// within reports whether path p lies in the folder dir (lexically).
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && filepath.IsLocal(rel)
}

// refReader is the kin-openapi loader's only way to read a referenced document. It reads the
// files checkRefs allowed (checking again, since referenced files have references of their
// own), each through parseDocument's limits, and serves the root document from memory.
type refReader struct {
	ctx   context.Context
	src   *source
	opts  Options
	root  []byte // the document itself
	mu    sync.Mutex
	cache map[string][]byte
	total int64
}

// maxRefFiles bounds how many documents a spec's references may pull in.
const maxRefFiles = 1000

func (r *refReader) read(_ *openapi3.Loader, u *url.URL) ([]byte, error) {
	if err := r.ctx.Err(); err != nil {
		return nil, err
	}
	key := u.String()
	if r.src.base != nil && sameDocument(u, r.src.base) {
		return r.root, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.cache[key]; ok {
		return b, nil
	}
	fail := func(reason string) error { return &RefError{Ref: key, Reason: reason} }
	if len(r.cache) >= maxRefFiles {
		return nil, fail(fmt.Sprintf("the spec references more than %d documents", maxRefFiles))
	}
	var data []byte
	var err error
	switch {
	case u.Scheme == "http" || u.Scheme == "https":
		if !r.opts.AllowRemoteRefs {
			return nil, fail(errRemoteRefs)
		}
		data, err = fetch(r.ctx, u.String(), r.opts)
	case u.Scheme == "" || u.Scheme == "file":
		p := filepath.Clean(filepath.FromSlash(u.Path))
		if !r.opts.AllowRemoteRefs {
			if r.src.dir == "" {
				return nil, fail(errNoFolder)
			}
			if err := r.src.inside(p); err != nil {
				return nil, fail(err.Error())
			}
		}
		data, err = readFile(p, r.opts.MaxBytes)
	default:
		return nil, fail("refused: unsupported scheme")
	}
	if err != nil {
		return nil, fail(err.Error())
	}
	r.total += int64(len(data))
	if r.total > 4*r.opts.MaxBytes {
		return nil, fail(fmt.Sprintf("referenced documents exceed %d bytes in all", 4*r.opts.MaxBytes))
	}
	// Parsed here, so the limits on aliases and depth hold for referenced documents too, and
	// handed on as JSON, which has no aliases.
	n, isJSON, err := parseDocument(data)
	if err != nil {
		return nil, fail(err.Error())
	}
	if !isJSON {
		if data, err = appendJSON(nil, n); err != nil {
			return nil, fail(err.Error())
		}
	}
	if r.cache == nil {
		r.cache = map[string][]byte{}
	}
	r.cache[key] = data
	return data, nil
}

// sameDocument reports whether u names the document at base.
func sameDocument(u, base *url.URL) bool {
	a, b := *u, *base
	a.Fragment, b.Fragment = "", ""
	return a.String() == b.String()
}

func joinPointer(path []string) string {
	var b strings.Builder
	for _, p := range path {
		b.WriteByte('/')
		b.WriteString(runtimeexpr.EscapeToken(p))
	}
	return b.String()
}

// escapeFragment percent-encodes a JSON pointer for a URI fragment.
func escapeFragment(ptr string) string {
	return (&url.URL{Fragment: ptr}).EscapedFragment()
}

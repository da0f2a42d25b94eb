package specload

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/conflictcheck/conflictcheck/internal/runtimeexpr"
	"github.com/theory/jsonpath"
	"github.com/theory/jsonpath/spec"
	"go.yaml.in/yaml/v4"
)

// overlay is a parsed Overlay document (OpenAPI Overlay Specification 1.0,
// https://spec.openapis.org/overlay/v1.0.0). Each action's JSONPath target (RFC 9535) is
// evaluated with github.com/theory/jsonpath on the decoded document, and the small update and
// remove semantics are implemented here rather than with speakeasy's overlay module, which is
// alpha, works on yaml.v3 node trees and pulls a large dependency graph for a page of code.
type overlay struct {
	name    string
	actions []action
}

type action struct {
	target *jsonpath.Path
	expr   string
	update any
	hasUpd bool
	remove bool
}

// readOverlay reads and checks the Overlay document at name (a path or an http(s) URL).
func readOverlay(ctx context.Context, name string, opts Options) (*overlay, error) {
	src, err := open(ctx, name, opts)
	if err != nil {
		return nil, err
	}
	n, _, err := parseDocument(src.data)
	if err != nil {
		return nil, err
	}
	v, err := toAny(n, nil)
	if err != nil {
		return nil, err
	}
	return parseOverlay(name, v)
}

func parseOverlay(name string, v any) (*overlay, error) {
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not an Overlay document: the top level is not a mapping")
	}
	version, ok := doc["overlay"].(string)
	if !ok {
		return nil, errors.New(`not an Overlay document: no "overlay" version field`)
	}
	if !strings.HasPrefix(version, "1.0.") && !strings.HasPrefix(version, "1.1.") {
		return nil, fmt.Errorf("unsupported Overlay version %q (supported: 1.0.x)", version)
	}
	list, ok := doc["actions"].([]any)
	if !ok || len(list) == 0 {
		return nil, errors.New(`"actions" must be a non-empty list`)
	}
	o := &overlay{name: name}
	for i, a := range list {
		m, ok := a.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("actions[%d]: not a mapping", i)
		}
		expr, ok := m["target"].(string)
		if !ok || expr == "" {
			return nil, fmt.Errorf("actions[%d]: no target", i)
		}
		p, err := jsonpath.Parse(expr)
		if err != nil {
			return nil, fmt.Errorf("actions[%d]: target %q: %w", i, expr, err)
		}
		act := action{target: p, expr: expr}
		for k, v := range m {
			switch k {
			case "target", "description":
			case "update":
				act.update, act.hasUpd = v, true
			case "remove":
				b, ok := v.(bool)
				if !ok {
					return nil, fmt.Errorf("actions[%d]: remove must be true or false", i)
				}
				act.remove = b
			default:
				if !strings.HasPrefix(k, "x-") {
					return nil, fmt.Errorf("actions[%d]: unsupported field %q", i, k)
				}
			}
		}
		if !act.hasUpd && !act.remove {
			return nil, fmt.Errorf("actions[%d]: neither update nor remove: true", i)
		}
		o.actions = append(o.actions, act)
	}
	return o, nil
}

// applyOverlays applies each overlay's actions in order to the document tree root and returns
// the new tree. Member order is kept; members an overlay adds follow in sorted order.
func applyOverlays(root *yaml.Node, overlays []*overlay) (*yaml.Node, error) {
	ord := order{}
	tree, err := toAny(root, ord)
	if err != nil {
		return nil, err
	}
	for _, o := range overlays {
		for i, a := range o.actions {
			if tree, err = a.apply(tree); err != nil {
				return nil, fmt.Errorf("overlay %s: actions[%d] (target %q): %w", o.name, i, a.expr, err)
			}
		}
	}
	return fromAny(tree, ord)
}

// apply runs one action on tree, returning the tree (replaced only if the action targets it).
func (a action) apply(tree any) (any, error) {
	nodes := a.target.SelectLocated(tree).Deduplicate()
	if len(nodes) == 0 {
		return nil, errors.New("matches nothing")
	}
	if a.remove {
		// Deepest and last first, so the paths of the others stay valid.
		slices.SortFunc(nodes, func(x, y *spec.LocatedNode) int { return y.Path.Compare(x.Path) })
		for _, n := range nodes {
			if len(n.Path) == 0 {
				return nil, errors.New("cannot remove the whole document")
			}
			parent, ok := lookup(tree, n.Path[:len(n.Path)-1])
			if !ok {
				continue // inside something removed already
			}
			switch sel := n.Path[len(n.Path)-1].(type) {
			case spec.Name:
				if m, ok := parent.(map[string]any); ok {
					delete(m, string(sel))
				}
			case spec.Index:
				if s, ok := parent.([]any); ok && int(sel) < len(s) {
					tree = set(tree, n.Path[:len(n.Path)-1], slices.Delete(slices.Clone(s), int(sel), int(sel)+1))
				}
			}
		}
		return tree, nil
	}
	for _, n := range nodes {
		cur, ok := lookup(tree, n.Path)
		if !ok {
			continue
		}
		tree = set(tree, n.Path, merge(cur, a.update))
	}
	return tree, nil
}

// merge applies an update to a value: objects merge member by member, recursively; a list
// gains the update's items (or the update itself when it is not a list); anything else is
// replaced. The update is copied, so one update applied to several targets shares nothing.
func merge(dst, upd any) any {
	switch d := dst.(type) {
	case map[string]any:
		u, ok := upd.(map[string]any)
		if !ok {
			return runtimeexpr.Clone(upd)
		}
		for k, uv := range u {
			if dv, ok := d[k]; ok {
				d[k] = merge(dv, uv)
			} else {
				d[k] = runtimeexpr.Clone(uv)
			}
		}
		return d
	case []any:
		if u, ok := upd.([]any); ok {
			return append(d, runtimeexpr.Clone(u).([]any)...)
		}
		return append(d, runtimeexpr.Clone(upd))
	}
	return runtimeexpr.Clone(upd)
}

// lookup follows a normalized path from tree.
func lookup(tree any, path spec.NormalizedPath) (any, bool) {
	cur := tree
	for _, sel := range path {
		switch sel := sel.(type) {
		case spec.Name:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if cur, ok = m[string(sel)]; !ok {
				return nil, false
			}
		case spec.Index:
			s, ok := cur.([]any)
			if !ok || int(sel) < 0 || int(sel) >= len(s) {
				return nil, false
			}
			cur = s[sel]
		default:
			return nil, false
		}
	}
	return cur, true
}

// set stores v at path in tree (whose parent exists) and returns the tree.
func set(tree any, path spec.NormalizedPath, v any) any {
	if len(path) == 0 {
		return v
	}
	parent, ok := lookup(tree, path[:len(path)-1])
	if !ok {
		return tree
	}
	switch sel := path[len(path)-1].(type) {
	case spec.Name:
		if m, ok := parent.(map[string]any); ok {
			m[string(sel)] = v
		}
	case spec.Index:
		if s, ok := parent.([]any); ok && int(sel) < len(s) {
			s[sel] = v
		}
	}
	return tree
}

package synth

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/getkin/kin-openapi/openapi3"
)

// Param synthesises parameter p's value (its example, else its first valid named example, else
// Body of its schema or the JSON of its content; the options' Unique pointer "" makes it unique,
// e.g. an Idempotency-Key) serialised by FormatParam, unescaped.
func (g *Generator) Param(p *openapi3.Parameter) (string, error) {
	if p == nil {
		return "", errors.New("no parameter")
	}
	if p.Schema == nil {
		types := sortedKeys(p.Content)
		if len(types) == 0 {
			return "", fmt.Errorf("parameter %s has neither schema nor content", p.Name)
		}
		v, err := g.MediaBody(p.Content[types[0]])
		if err != nil {
			return "", fmt.Errorf("parameter %s: %w", p.Name, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return "", fmt.Errorf("parameter %s: encode: %w", p.Name, err)
		}
		return string(b), nil
	}
	graph, err := analyse(p.Schema)
	if err != nil {
		return "", fmt.Errorf("parameter %s: %w", p.Name, err)
	}
	s := p.Schema.Value
	if !g.opts.IgnoreExamples {
		for _, ex := range mediaExamples(p.Example, p.Examples) {
			v, err := jsonCopy(ex)
			if err != nil {
				continue
			}
			if v = withoutReadOnly(s, v); graph.validate(s, v, false) != nil {
				continue
			}
			if v, err = g.applyUnique(graph, s, v, true); err != nil {
				return "", fmt.Errorf("parameter %s: %w", p.Name, err)
			}
			if text, err := FormatParam(p, v); err == nil && paramUsable(p, text) && g.uniqueValid(graph, s, v) == nil {
				return text, nil
			}
		}
	}
	var lastErr error
	for range maxAttempts {
		v, err := g.body(graph, s)
		if err != nil {
			return "", fmt.Errorf("parameter %s: %w", p.Name, err)
		}
		text, err := FormatParam(p, v)
		if err != nil {
			return "", err
		}
		if paramUsable(p, text) {
			return text, nil
		}
		lastErr = fmt.Errorf("parameter %s: value %q cannot be sent in the %s", p.Name, text, p.In)
	}
	return "", lastErr
}

// paramUsable rejects values that cannot travel where p goes: an empty path segment, a header
// value with control characters or surrounding spaces.
func paramUsable(p *openapi3.Parameter, text string) bool {
	switch p.In {
	case openapi3.ParameterInPath:
		return text != ""
	case openapi3.ParameterInHeader, openapi3.ParameterInCookie:
		if text != strings.TrimSpace(text) {
			return false
		}
		return !strings.ContainsFunc(text, func(r rune) bool { return unicode.IsControl(r) || r > unicode.MaxASCII })
	}
	return true
}

// FormatParam serialises v in parameter p's style (simple, form, spaceDelimited, pipeDelimited,
// label, matrix), returning an exploded query array or object comma-joined (deepObject is not
// supported).
func FormatParam(p *openapi3.Parameter, v any) (string, error) {
	style, explode := "simple", false
	if p.In == openapi3.ParameterInQuery || p.In == openapi3.ParameterInCookie {
		style, explode = "form", true
	}
	if sm, err := p.SerializationMethod(); err == nil && sm != nil {
		style, explode = sm.Style, sm.Explode
	}
	var parts []string
	var scalar bool
	switch x := v.(type) {
	case []any:
		for _, item := range x {
			text, err := scalarText(item)
			if err != nil {
				return "", fmt.Errorf("parameter %s: %w", p.Name, err)
			}
			parts = append(parts, text)
		}
	case map[string]any:
		for _, k := range sortedKeys(x) {
			text, err := scalarText(x[k])
			if err != nil {
				return "", fmt.Errorf("parameter %s: %w", p.Name, err)
			}
			if explode {
				parts = append(parts, k+"="+text)
			} else {
				parts = append(parts, k, text)
			}
		}
	default:
		text, err := scalarText(v)
		if err != nil {
			return "", fmt.Errorf("parameter %s: %w", p.Name, err)
		}
		parts, scalar = []string{text}, true
	}
	switch style {
	case openapi3.SerializationSimple, openapi3.SerializationForm:
		return strings.Join(parts, ","), nil
	case openapi3.SerializationSpaceDelimited:
		return strings.Join(parts, " "), nil
	case openapi3.SerializationPipeDelimited:
		return strings.Join(parts, "|"), nil
	case openapi3.SerializationLabel:
		sep := ","
		if explode {
			sep = "."
		}
		return "." + strings.Join(parts, sep), nil
	case openapi3.SerializationMatrix:
		if scalar || !explode {
			return ";" + p.Name + "=" + strings.Join(parts, ","), nil
		}
		if _, isArray := v.([]any); isArray {
			for i := range parts {
				parts[i] = p.Name + "=" + parts[i]
			}
		}
		return ";" + strings.Join(parts, ";"), nil
	}
	return "", fmt.Errorf("parameter %s: style %q is not supported", p.Name, style)
}

// scalarText renders a JSON scalar as parameter text.
func scalarText(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case json.Number:
		return x.String(), nil
	case int, int64, int32:
		return fmt.Sprint(x), nil
	}
	return "", fmt.Errorf("cannot serialise a nested %T in a parameter", v)
}

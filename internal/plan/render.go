package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// jsonScenario is a scenario as `conflictcheck plan --json` prints it: the fields,
// plus binding, blocked and notes where they say something.
type jsonScenario struct {
	ID        string   `json:"id"`
	Kind      string   `json:"kind"`
	Operation string   `json:"operation"`
	Method    string   `json:"method"`
	Path      string   `json:"path"`
	Source    string   `json:"source"`
	Expect    []int    `json:"expect"`
	Read      string   `json:"read"`
	Subject   string   `json:"subject"`
	Binding   string   `json:"binding,omitempty"`
	Blocked   string   `json:"blocked,omitempty"`
	Notes     []string `json:"notes,omitempty"`
}

// WriteJSON prints the plan as `conflictcheck plan --json` does.
func (p *Plan) WriteJSON(w io.Writer) error {
	out := struct {
		Spec      SpecInfo       `json:"spec"`
		Scenarios []jsonScenario `json:"scenarios"`
		Uncovered []Uncovered    `json:"uncovered"`
		Warnings  []string       `json:"warnings"`
	}{Spec: p.Spec, Scenarios: []jsonScenario{}, Uncovered: p.Uncovered, Warnings: p.Warnings}
	for _, s := range p.Scenarios {
		out.Scenarios = append(out.Scenarios, jsonScenario{
			ID: s.ID, Kind: string(s.Kind), Operation: s.Operation, Method: s.Method, Path: s.Path,
			Source: s.Source, Expect: s.Expect, Read: s.Read, Subject: s.Subject,
			Binding: s.BindingSummary(), Blocked: s.Blocked, Notes: s.Notes,
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return nil
}

// WriteText prints the plan for a person: the scenarios as a table, why each was inferred,
// then the uncovered operations and the warnings.
func (p *Plan) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "%s %s (OpenAPI %s): %d scenarios, %d uncovered, %d warnings\n\n",
		orDash(p.Spec.Title), p.Spec.Version, p.Spec.OpenAPI, len(p.Scenarios), len(p.Uncovered), len(p.Warnings))
	if len(p.Scenarios) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tOPERATION\tMETHOD PATH\tSOURCE\tEXPECT\tREAD\tSUBJECT\tBINDING")
		for _, s := range p.Scenarios {
			fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\t%s\t%s\t%s\n", s.Kind, s.Operation, s.Method, s.Path, s.Source,
				joinInts(s.Expect), orDash(s.Read), orDash(s.Subject), orDash(s.BindingSummary()))
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write plan: %w", err)
		}
		var why []string
		for _, s := range p.Scenarios {
			for _, n := range s.Notes {
				why = append(why, fmt.Sprintf("  %s: %s", s.ID, n))
			}
		}
		if len(why) > 0 {
			fmt.Fprintf(w, "\nInferred:\n%s\n", strings.Join(why, "\n"))
		}
	} else {
		fmt.Fprintln(w, "No scenarios: add x-conflict to the operations that can conflict (see openapi/x-conflict.schema.json), or declare 409/412 responses.")
	}
	if len(p.Uncovered) > 0 {
		fmt.Fprintf(w, "\nUncovered operations (declare 409/412, no scenario):\n")
		for _, u := range p.Uncovered {
			fmt.Fprintf(w, "  %s (%s %s): %s\n", u.Operation, u.Method, u.Path, u.Reason)
		}
	}
	if len(p.Warnings) > 0 {
		fmt.Fprintf(w, "\nWarnings:\n")
		for _, m := range p.Warnings {
			fmt.Fprintf(w, "  %s\n", m)
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func joinInts(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprint(x)
	}
	return strings.Join(parts, ",")
}

package main

import (
	"github.com/spf13/cobra"

	"github.com/conflictcheck/conflictcheck/internal/plan"
	"github.com/conflictcheck/conflictcheck/internal/specload"
)

func newPlanCmd() *cobra.Command {
	var (
		spec     string
		asJSON   bool
		loadOpt  specload.Options
		profiles profileFlags
	)
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show the conflict scenarios a spec yields, what was inferred, and what is not covered",
		Long: `Load an OpenAPI document (3.0, 3.1 or Swagger 2.0; a file or an http(s) URL), apply
overlays, and list the conflict scenarios conflictcheck would fire: from x-conflict, or
inferred by the rules of DESIGN.md. Mutating operations that declare 409/412 but yield no
scenario are listed with the reason; those that declare neither are warned about.
The statuses each scenario expects come from the operation's x-conflict expect, else an
--expect for its kind, else the --profile (rfc9110 unless told), as run would expect them.
Nothing is sent to any API. Exit 0 whatever is found; 2 when the spec cannot be loaded
or a flag is wrong.`,
		Example: `  conflictcheck plan --spec openapi.yaml
  conflictcheck plan --spec openapi.yaml --overlay conflicts.overlay.yaml --json
  conflictcheck plan --spec openapi.yaml --profile google --expect capacity=409`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pr, err := profiles.profile()
			if err != nil {
				return err
			}
			doc, err := specload.Load(cmd.Context(), spec, loadOpt)
			if err != nil {
				return err
			}
			p, err := plan.New(doc, plan.Options{Profile: pr})
			if err != nil {
				return err
			}
			if asJSON {
				return p.WriteJSON(cmd.OutOrStdout())
			}
			return p.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec, "spec", "", "OpenAPI document: a file path or an http(s) URL (required)")
	f.StringArrayVar(&loadOpt.Overlays, "overlay", nil, "OpenAPI Overlay 1.0 document applied before planning (repeatable, in order)")
	f.BoolVar(&asJSON, "json", false, "print the plan as JSON")
	f.BoolVar(&loadOpt.AllowRemoteRefs, "allow-remote-refs", false, "follow $refs to absolute paths, outside the spec's folder, or to URLs")
	profiles.register(f)
	_ = cmd.MarkFlagRequired("spec")
	return cmd
}

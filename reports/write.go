package reports

import (
	"errors"
	"fmt"
)

// WriteAll writes every report of run into dir (junit.xml, report.json, report.html,
// summary.md, results.sarif) and appends the Markdown summary to $GITHUB_STEP_SUMMARY when
// it is set. It writes every file it can and returns the errors of those it could not.
func WriteAll(dir string, run Run) error {
	var errs []error
	for _, w := range []func(string, Run) error{WriteJUnit, WriteJSON, WriteHTML, WriteMarkdown, WriteSARIF} {
		errs = append(errs, w(dir, run))
	}
	if err := AppendStepSummary(run); err != nil {
		errs = append(errs, fmt.Errorf("step summary: %w", err))
	}
	return errors.Join(errs...)
}

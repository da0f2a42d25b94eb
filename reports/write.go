package reports

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// WriteAll writes every report of run into dir (junit.xml, report.json, report.html,
// summary.md, results.sarif) and appends the Markdown summary to $GITHUB_STEP_SUMMARY when
// it is set. It writes every file it can and returns the errors of those it could not.
func WriteAll(dir string, run Run) error {
	var errs []error
	for _, w := range []func(string, Run) error{WriteJUnit, WriteJSON, WriteHTML, WriteSARIF} {
		errs = append(errs, w(dir, run))
	}
	md := Markdown(run)
	errs = append(errs, writeReport(dir, MarkdownFile, []byte(md)))
	if err := appendStepSummary(md); err != nil {
		errs = append(errs, fmt.Errorf("step summary: %w", err))
	}
	return errors.Join(errs...)
}

// writeEncoded writes into dir the report file name that encode makes of run.
func writeEncoded(dir, name string, run Run, encode func(Run) ([]byte, error)) error {
	b, err := encode(run)
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return writeReport(dir, name, b)
}

// writeReport writes one report file, name, into dir.
func writeReport(dir, name string, b []byte) error {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

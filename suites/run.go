package suites

import (
	"io"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/formatter"
	"github.com/onsi/ginkgo/v2/types"
)

// RunOptions configure RunSpecs.
type RunOptions struct {
	// Suite and Reporter are Ginkgo's configuration (label filter, focus, JUnit path,
	// verbosity); start from ginkgo.GinkgoConfiguration().
	Suite    types.SuiteConfig
	Reporter types.ReporterConfig
	// Output receives Ginkgo's own console output; nil discards it.
	Output io.Writer
	// AfterSuite, when set, is given the suite's report once every spec ran.
	AfterSuite func(types.Report)
}

// failT is the GinkgoTestingT of a run outside go test: RunSpecs's result says it all.
type failT struct{}

func (failT) Fail() {}

// RunSpecs builds the spec tree for cfg and runs it once with Ginkgo, outside go test (the CLI).
// Ginkgo allows one run per process. It returns whether every spec passed or was skipped.
func RunSpecs(cfg Config, opts RunOptions) bool {
	out := opts.Output
	if out == nil {
		out = io.Discard
	}
	formatter.ColorableStdOut = out
	Build(cfg)
	if opts.AfterSuite != nil {
		ginkgo.ReportAfterSuite("conflictcheck reports", opts.AfterSuite)
	}
	return ginkgo.RunSpecs(failT{}, SuiteDescription, opts.Suite, opts.Reporter)
}

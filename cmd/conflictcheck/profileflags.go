package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/conflictcheck/conflictcheck/internal/profile"
)

// profileFlags are --profile and --expect, shared by plan and run: the conventions whose
// statuses count as a correct rejection, and per-kind overrides of them.
type profileFlags struct {
	name   string
	expect []string
}

// register adds --profile and --expect to f.
func (p *profileFlags) register(f *pflag.FlagSet) {
	f.StringVar(&p.name, "profile", profile.Default, "expected rejection statuses per conflict kind, by the conventions of: "+strings.Join(profile.Names(), ", "))
	f.StringArrayVar(&p.expect, "expect", nil, "KIND=CODES, e.g. transition=400,409: the statuses that count as a rejection for one kind, over the profile (an operation's x-conflict expect still wins); repeatable")
}

// profile is the chosen profile with the --expect overrides applied, in order.
func (p profileFlags) profile() (profile.Profile, error) {
	pr, err := profile.Get(p.name)
	if err != nil {
		return profile.Profile{}, fmt.Errorf("--profile: %w", err)
	}
	for _, spec := range p.expect {
		if pr, err = pr.Override(spec); err != nil {
			return profile.Profile{}, fmt.Errorf("--expect: %w", err)
		}
	}
	return pr, nil
}

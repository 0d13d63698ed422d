package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/urfave/cli/v2"
)

func TestRepeatedFlags(t *testing.T) {
	t.Parallel()
	flags := []cli.Flag{
		&cli.PathFlag{Name: "repo"},
		&cli.StringFlag{Name: "to", Aliases: []string{"t"}},
		&cli.StringSliceFlag{Name: "tags"},
		&cli.BoolFlag{Name: "json"},
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"once each", []string{"release", "publish", "--repo", "a", "--to", "b", "1.0"}, nil},
		{"value after space and =", []string{"--to", "a", "--to=b"},
			[]string{`--to is given 2 times but takes one value: using the last, "b", and ignoring "a"`}},
		{"alias counts as the flag", []string{"-t", "a", "--to", "b", "-t=c"},
			[]string{`--to is given 3 times but takes one value: using the last, "c", and ignoring "a", "b"`}},
		{"slices and switches collect", []string{"--tags", "a", "--tags", "b", "--json", "--json"}, nil},
		{"a value that looks like a flag is a value", []string{"--repo", "--to", "--to", "x"}, nil},
		{"after -- nothing is a flag", []string{"--to", "a", "--", "--to", "b"}, nil},
		{"unknown flags are urfave's business", []string{"--nope", "a", "--nope", "b"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, repeatedFlags(flags, tt.args)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

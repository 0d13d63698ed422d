package sample

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/buildout"
)

func TestParseSpec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		arg  string
		want Spec
		bad  bool
	}{
		{arg: "core-foo:1.0", want: Spec{Name: "core-foo", Tag: "1.0"}},
		{arg: "core-foo:", want: Spec{Name: "core-foo"}},
		{arg: "core-foo:1.0:alt", want: Spec{Name: "core-foo", Tag: "1.0", Seed: "alt"}},
		{arg: "core-foo:1.0::linux/amd64,linux/arm64/v8", want: Spec{Name: "core-foo", Tag: "1.0", Platforms: []string{"linux/amd64", "linux/arm64/v8"}}},
		{arg: "core-foo", bad: true},
		{arg: ":1.0", bad: true},
		{arg: "a:b:c:d:e", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			t.Parallel()
			got, err := parseSpec(tt.arg)
			if tt.bad {
				if !errors.Is(err, errUsage) {
					t.Errorf("parseSpec error = %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseSpec mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRunPrintsWhatBuildoutReads checks that the printed digest list is the
// one buildout computes from the layouts written.
func TestRunPrintsWhatBuildoutReads(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	var stdout bytes.Buffer
	args := []string{"-out", out, "-flat", "core-foo:1.0", "core-bar:2.0:alt:linux/amd64,linux/arm64"}
	if err := run(args, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	images, err := buildout.Read(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := buildout.WriteDigestList(&want, buildout.DigestEntries(images)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want.String(), stdout.String()); diff != "" {
		t.Errorf("printed digest list mismatch (-buildout +mksample):\n%s", diff)
	}
	if n := strings.Count(stdout.String(), "\n"); n != 3 {
		t.Errorf("printed %d lines, want 3", n)
	}
}

func TestRunDockerSave(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	if err := run([]string{"-out", out, "-docker-save", "core-saved"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "core-saved", "manifest.json")); err != nil {
		t.Error(err)
	}
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{},
		{"-out", t.TempDir()},
		{"core-foo:1.0"},
		{"-out", t.TempDir(), "-docker-save", "x", "core-foo:1.0"},
		{"-nope"},
	} {
		if err := run(args, io.Discard, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("run(%q) error = %v, want a usage error", args, err)
		}
	}
}

package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestHelpExamples checks that every command's help shows examples and that
// each example line is a command line tally reads without a usage error: the
// help teaches only what runs.
func TestHelpExamples(t *testing.T) {
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
	var walk func(path []*cli.Command)
	walk = func(path []*cli.Command) {
		cmd := path[len(path)-1]
		var help bytes.Buffer
		printHelp(&help, app, path)
		name := fullName(path)
		_, examples, ok := strings.Cut(help.String(), "EXAMPLES:\n")
		if !ok {
			t.Errorf("%s: help has no EXAMPLES", name)
		}
		for _, s := range visible(cmd.Subcommands) {
			if !strings.Contains(help.String(), "\n   "+s.Name+" ") {
				t.Errorf("%s: help does not list %s", name, s.Name)
			}
		}
		n := 0
		lines := strings.Split(examples, "\n")
		for i := 0; i < len(lines); i++ {
			line := strings.TrimSpace(lines[i])
			if line == "" || strings.HasSuffix(line, ":") && !strings.HasPrefix(line, "tally ") {
				if n > 0 {
					break
				}
				continue
			}
			for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
				i++
				line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(lines[i])
			}
			if before, _, ok := strings.Cut(line, " #"); ok {
				line = before
			}
			if !strings.HasPrefix(line, "tally ") {
				continue
			}
			n++
			l, err := readLine(app, strings.Fields(line))
			if err != nil {
				t.Errorf("%s: example %q: %v", name, line, err)
				continue
			}
			if l.kind != lineRun {
				t.Errorf("%s: example %q does not run a command", name, line)
			}
		}
		if n == 0 {
			t.Errorf("%s: no runnable example", name)
		}
		for _, s := range visible(cmd.Subcommands) {
			walk(append(append([]*cli.Command(nil), path...), s))
		}
	}
	for _, c := range visible(app.Commands) {
		walk([]*cli.Command{c})
	}
}

// TestReadLineFlagsAnywhere checks that flags before, between and after the
// arguments reach the command the same way, and "--" ends the flags.
func TestReadLineFlagsAnywhere(t *testing.T) {
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
	want := []string{"tally", "status", "--repo=sigs", "--json=true", "--", "core-gcc", "core-musl"}
	for _, line := range []string{
		"tally status --repo sigs --json core-gcc core-musl",
		"tally status core-gcc core-musl --repo sigs --json",
		"tally status core-gcc --repo=sigs core-musl --json",
		"tally status -r sigs core-gcc --json core-musl",
	} {
		l, err := readLine(app, strings.Fields(line))
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if strings.Join(l.args, " ") != strings.Join(want, " ") {
			t.Errorf("%q read as %q, want %q", line, l.args, want)
		}
	}
	l, err := readLine(app, []string{"tally", "status", "--", "--json"})
	if err != nil || strings.Join(l.args, " ") != "tally status -- --json" {
		t.Errorf(`"status -- --json" read as %q, %v`, l.args, err)
	}
}

func TestClosest(t *testing.T) {
	for _, tc := range []struct {
		word string
		want string
	}{
		{"statsu", "status"}, {"stauts", "status"}, {"sing", "sign"}, {"relase", "release"},
		{"frobnicate", ""}, {"x", ""}, {"ver", "verify"},
	} {
		got := closest(tc.word, []string{"init", "sign", "status", "verify", "release", "repair", "merge"})
		if got != tc.want {
			t.Errorf("closest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
}

package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// warnRepeatedFlags makes every command (and subcommand) warn when a flag
// that holds one value is given more than once: urfave/cli keeps the last
// silently, and a maintainer who wrote --to A --to B for a flag that takes
// one value should learn that A was dropped. Flags that collect values
// (string slices) and switches are not warned about.
func warnRepeatedFlags(cmds []*cli.Command, env *environment) {
	for _, cmd := range cmds {
		warnRepeatedFlags(cmd.Subcommands, env)
		if cmd.Action == nil {
			continue
		}
		action, cmd := cmd.Action, cmd
		cmd.Action = func(c *cli.Context) error {
			for _, w := range repeatedFlags(cmd.Flags, rawArgs(c)) {
				fmt.Fprintf(env.stderr, "tally: warning: %s\n", w)
			}
			return action(c)
		}
	}
}

// rawArgs is the command line as the application saw it (without the
// program name): the application's context stops parsing at the first
// command, so its arguments are the longest in the lineage.
func rawArgs(c *cli.Context) []string {
	var raw []string
	for _, l := range c.Lineage() {
		if a := l.Args().Slice(); len(a) > len(raw) {
			raw = a
		}
	}
	return raw
}

// repeatedFlags lists the single-valued flags of flags that args give more
// than once, saying which value is used.
func repeatedFlags(flags []cli.Flag, args []string) []string {
	type info struct {
		name  string // the flag's first name, as the warning says it
		bool  bool
		multi bool
	}
	known := map[string]info{}
	for _, f := range flags {
		names := f.Names()
		if len(names) == 0 {
			continue
		}
		in := info{name: names[0]}
		switch f.(type) {
		case *cli.BoolFlag:
			in.bool = true
		case *cli.StringSliceFlag, *cli.IntSliceFlag, *cli.Int64SliceFlag, *cli.Float64SliceFlag, *cli.UintSliceFlag, *cli.Uint64SliceFlag:
			in.multi = true
		}
		for _, n := range names {
			known[n] = in
		}
	}
	values := map[string][]string{}
	var order []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		in, ok := known[name]
		if !ok {
			continue
		}
		if !in.bool && !hasValue && i+1 < len(args) {
			i++
			value = args[i]
		}
		if in.multi || in.bool {
			continue
		}
		if _, seen := values[in.name]; !seen {
			order = append(order, in.name)
		}
		values[in.name] = append(values[in.name], value)
	}
	var out []string
	for _, n := range order {
		v := values[n]
		if len(v) < 2 {
			continue
		}
		out = append(out, fmt.Sprintf("--%s is given %d times but takes one value: using the last, %q, and ignoring %s",
			n, len(v), v[len(v)-1], quoteAll(v[:len(v)-1])))
	}
	return out
}

func quoteAll(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

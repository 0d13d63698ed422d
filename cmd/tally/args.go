package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
)

// The command line is read here before urfave/cli sees it, so that every
// command takes its flags anywhere (before, between or after its arguments),
// an unknown command or flag is one error line with a "did you mean" hint,
// help works at every level, and a missing required flag is named.
// urfave/cli then parses a line of the one shape it reads well:
// tally [GLOBAL] COMMAND [SUBCOMMAND] FLAGS... -- ARGS...

// lineKind says what run does with a parsed command line.
type lineKind int

const (
	lineRun       lineKind = iota // run args with urfave/cli
	lineHelp                      // print path's help on stdout, exit 0
	lineUsageHelp                 // print path's help on stderr, exit 64
	lineVersion                   // print the version on stdout, exit 0
)

// commandLine is a command line read against the app's commands.
type commandLine struct {
	kind lineKind
	path []*cli.Command // the command and subcommand named (empty: tally itself)
	args []string       // for lineRun: the rewritten line urfave/cli parses
}

// readLine reads args (args[0] is the program) against app's commands.
func readLine(app *cli.App, args []string) (*commandLine, error) {
	prog, in := "tally", []string(nil)
	if len(args) > 0 {
		prog, in = args[0], args[1:]
	}
	// The global flags come before the command: help and version only.
	if len(in) > 0 && strings.HasPrefix(in[0], "-") && in[0] != "-" {
		switch in[0] {
		case "-h", "--help", "-help":
			return &commandLine{kind: lineHelp}, nil
		case "-V", "--version", "-version":
			return &commandLine{kind: lineVersion}, nil
		}
		return nil, unknownFlag(in[0], nil, []string{"--help", "--version"})
	}
	if len(in) == 0 {
		return &commandLine{kind: lineUsageHelp}, nil
	}
	if in[0] == "help" || in[0] == "h" {
		return readHelp(app.Commands, in[1:])
	}
	var path []*cli.Command
	cmds := app.Commands
	var deferred []string // flags given before the subcommand
	for {
		cmd, err := findCommand(path, cmds, in[0])
		if err != nil {
			return nil, err
		}
		path = append(path, cmd)
		in = in[1:]
		if len(visible(cmd.Subcommands)) == 0 {
			break
		}
		// A command with subcommands: the first word is the subcommand;
		// flags before it are the subcommand's.
		i := 0
		for i < len(in) && strings.HasPrefix(in[i], "-") && in[i] != "-" {
			if isHelpFlag(in[i]) {
				return &commandLine{kind: lineHelp, path: path}, nil
			}
			if in[i] == "--" {
				break
			}
			name, _, hasValue := strings.Cut(strings.TrimLeft(in[i], "-"), "=")
			deferred = append(deferred, in[i])
			if !hasValue && takesValueInAny(cmd.Subcommands, name) && i+1 < len(in) {
				i++
				deferred = append(deferred, in[i])
			}
			i++
		}
		if i >= len(in) || in[i] == "--" {
			return &commandLine{kind: lineUsageHelp, path: path}, nil
		}
		if in[i] == "help" {
			return readHelp(cmd.Subcommands, in[i+1:], path...)
		}
		in = append([]string{in[i]}, append(deferred, in[i+1:]...)...)
		deferred = nil
		cmds = cmd.Subcommands
	}
	flags, positional, help, err := splitFlags(path, in)
	if err != nil {
		return nil, err
	}
	if help {
		return &commandLine{kind: lineHelp, path: path}, nil
	}
	if err := checkRequired(path, flags); err != nil {
		return nil, err
	}
	out := []string{prog}
	for _, c := range path {
		out = append(out, c.Name)
	}
	out = append(out, flagArgs(flags)...)
	out = append(out, "--")
	out = append(out, positional...)
	return &commandLine{kind: lineRun, path: path, args: out}, nil
}

// readHelp reads "tally help [COMMAND [SUBCOMMAND]]".
func readHelp(cmds []*cli.Command, names []string, parent ...*cli.Command) (*commandLine, error) {
	path := append([]*cli.Command(nil), parent...)
	for _, n := range names {
		if strings.HasPrefix(n, "-") {
			return nil, unknownFlag(n, path, nil)
		}
		cmd, err := findCommand(path, cmds, n)
		if err != nil {
			return nil, err
		}
		path = append(path, cmd)
		cmds = cmd.Subcommands
	}
	return &commandLine{kind: lineHelp, path: path}, nil
}

// findCommand finds the command called name among cmds, or refuses with the
// closest name as a hint.
func findCommand(path []*cli.Command, cmds []*cli.Command, name string) (*cli.Command, error) {
	for _, c := range cmds {
		if c.Name == "help" {
			continue
		}
		if c.Name == name || slices.Contains(c.Aliases, name) {
			return c, nil
		}
	}
	var names []string
	for _, c := range visible(cmds) {
		names = append(names, c.Name)
	}
	where := "tally"
	if len(path) > 0 {
		where = fullName(path)
	}
	var err error
	if len(path) == 0 {
		err = fmt.Errorf("unknown command %q", name)
	} else {
		err = fmt.Errorf("%s has no command %q (it has: %s)", where, name, strings.Join(names, ", "))
	}
	if s := closest(name, names); s != "" {
		return nil, fail(exitUsage, err, fmt.Sprintf("did you mean %q?", where+" "+s))
	}
	return nil, fail(exitUsage, err, fmt.Sprintf("run %q for the commands", helpCommand(path)))
}

// splitFlags parses the leaf command's flags wherever they stand and returns
// them (name and value, in order), the positional arguments, and whether
// help was asked for.
func splitFlags(path []*cli.Command, in []string) (flags [][2]string, positional []string, help bool, err error) {
	leaf := path[len(path)-1]
	for i := 0; i < len(in); i++ {
		a := in[i]
		if a == "--" {
			positional = append(positional, in[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		if isHelpFlag(a) {
			return nil, nil, true, nil
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := lookupFlag(leaf.Flags, name)
		if f == nil {
			var names []string
			for _, f := range leaf.Flags {
				names = append(names, "--"+f.Names()[0])
			}
			return nil, nil, false, unknownFlag(a, path, names)
		}
		canonical := f.Names()[0]
		switch {
		case hasValue:
		case !takesValue(f):
			value = "true"
		case i+1 < len(in):
			i++
			value = in[i]
		default:
			return nil, nil, false, fail(exitUsage, fmt.Errorf("--%s needs a value", canonical),
				fmt.Sprintf("run %q for its flags", helpCommand(path)))
		}
		if err := checkValue(f, value); err != nil {
			return nil, nil, false, fail(exitUsage, fmt.Errorf("--%s %q: %w", canonical, value, err),
				fmt.Sprintf("run %q for its flags", helpCommand(path)))
		}
		flags = append(flags, [2]string{canonical, value})
	}
	return flags, positional, false, nil
}

// checkRequired names every required flag of the leaf command the line lacks.
func checkRequired(path []*cli.Command, flags [][2]string) error {
	leaf := path[len(path)-1]
	var missing []string
	for _, f := range leaf.Flags {
		r, ok := f.(cli.RequiredFlag)
		if !ok || !r.IsRequired() {
			continue
		}
		given := slices.ContainsFunc(flags, func(kv [2]string) bool { return kv[0] == f.Names()[0] })
		if !given && !envSet(f) {
			missing = append(missing, "--"+f.Names()[0]+" "+placeholder(f))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fail(exitUsage, fmt.Errorf("%s needs %s", fullName(path), strings.Join(missing, " and ")),
		fmt.Sprintf("run %q for its flags and examples", helpCommand(path)))
}

// flagArgs writes the parsed flags back as --name=value arguments.
func flagArgs(flags [][2]string) []string {
	out := make([]string, 0, len(flags))
	for _, kv := range flags {
		out = append(out, "--"+kv[0]+"="+kv[1])
	}
	return out
}

func envSet(f cli.Flag) bool {
	if e, ok := f.(interface{ GetEnvVars() []string }); ok {
		for _, v := range e.GetEnvVars() {
			if os.Getenv(v) != "" {
				return true
			}
		}
	}
	return false
}

// placeholder is the word a flag's value is shown as in errors and help.
func placeholder(f cli.Flag) string {
	name := f.Names()[0]
	switch name {
	case "release":
		return "VERSION"
	case "repo", "out":
		return "DIR"
	case "registry":
		return "REGISTRY/NAMESPACE"
	case "lookaside":
		return "URL"
	case "local-user":
		return "KEYID"
	case "key", "key-file", "keyring":
		return "FILE"
	}
	switch f.(type) {
	case *cli.IntFlag:
		return "N"
	case *cli.DurationFlag:
		return "DURATION"
	case *cli.PathFlag:
		return "PATH"
	}
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// unknownFlag is the error of a flag the command does not take.
func unknownFlag(a string, path []*cli.Command, names []string) error {
	name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
	shown := "--" + name
	if len(name) == 1 {
		shown = "-" + name
	}
	where := "tally"
	if len(path) > 0 {
		where = fullName(path)
	}
	err := fmt.Errorf("%s takes no flag %s", where, shown)
	if s := closest("--"+name, names); s != "" {
		return fail(exitUsage, err, fmt.Sprintf("did you mean %s?", s))
	}
	return fail(exitUsage, err, fmt.Sprintf("run %q for its flags", helpCommand(path)))
}

func isHelpFlag(a string) bool { return a == "-h" || a == "--help" || a == "-help" }

func lookupFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

// takesValue reports whether a flag needs a value (all but booleans).
func takesValue(f cli.Flag) bool {
	_, isBool := f.(*cli.BoolFlag)
	return !isBool
}

func takesValueInAny(cmds []*cli.Command, name string) bool {
	for _, c := range cmds {
		if f := lookupFlag(c.Flags, name); f != nil && takesValue(f) {
			return true
		}
	}
	return false
}

func visible(cmds []*cli.Command) []*cli.Command {
	var out []*cli.Command
	for _, c := range cmds {
		if !c.Hidden && c.Name != "help" {
			out = append(out, c)
		}
	}
	return out
}

func fullName(path []*cli.Command) string {
	names := []string{"tally"}
	for _, c := range path {
		names = append(names, c.Name)
	}
	return strings.Join(names, " ")
}

// helpCommand is the command that shows path's help.
func helpCommand(path []*cli.Command) string {
	if len(path) == 0 {
		return "tally help"
	}
	return "tally help" + strings.TrimPrefix(fullName(path), "tally")
}

// closest returns the candidate nearest to word, if one is near enough to be
// what the user meant.
func closest(word string, candidates []string) string {
	best, bestD := "", 0
	for _, c := range candidates {
		d := editDistance(word, c)
		if strings.HasPrefix(c, word) && len(word) >= 3 {
			d = min(d, 1)
		}
		if best == "" || d < bestD {
			best, bestD = c, d
		}
	}
	limit := 2
	if len(strings.TrimLeft(word, "-")) <= 3 {
		limit = 1
	}
	if best == "" || bestD > limit {
		return ""
	}
	return best
}

// editDistance is the Damerau-Levenshtein (optimal string alignment) distance.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// printHelp writes the help of the command at path (tally's own when path is empty).
func printHelp(w io.Writer, app *cli.App, path []*cli.Command) {
	if len(path) == 0 {
		printAppHelp(w, app)
		return
	}
	cmd := path[len(path)-1]
	name := fullName(path)
	fmt.Fprintf(w, "NAME:\n   %s - %s\n\nUSAGE:\n", name, cmd.Usage)
	subs := visible(cmd.Subcommands)
	if len(subs) > 0 {
		fmt.Fprintf(w, "   %s COMMAND [options] [arguments]\n", name)
	} else {
		usage := strings.TrimSpace(cmd.ArgsUsage)
		line := name
		if len(cmd.Flags) > 0 {
			line += " [options]"
		}
		if usage != "" {
			line += " " + usage
		}
		fmt.Fprintf(w, "   %s\n", line)
		if usage != "" && len(cmd.Flags) > 0 {
			fmt.Fprintf(w, "   (options may come before or after the arguments)\n")
		}
	}
	if cmd.Description != "" {
		fmt.Fprintf(w, "\nDESCRIPTION:\n%s\n", indent(cmd.Description, "   "))
	}
	if len(subs) > 0 {
		fmt.Fprintf(w, "\nCOMMANDS:\n")
		width := 0
		for _, s := range subs {
			width = max(width, len(s.Name))
		}
		for _, s := range subs {
			fmt.Fprintf(w, "   %-*s  %s\n", width, s.Name, s.Usage)
		}
		fmt.Fprintf(w, "\nRun %q for a command's options and examples.\n", helpCommand(path)+" COMMAND")
	}
	if len(cmd.Flags) > 0 {
		fmt.Fprintf(w, "\nOPTIONS:\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, f := range cmd.Flags {
			fmt.Fprintf(tw, "   %s\n", flagHelp(f))
		}
		tw.Flush()
	}
}

// flagHelp is one line of OPTIONS: --name, -n VALUE  usage (default: ...).
func flagHelp(f cli.Flag) string {
	names := f.Names()
	var parts []string
	for _, n := range names {
		if len(n) == 1 {
			parts = append(parts, "-"+n)
		} else {
			parts = append(parts, "--"+n)
		}
	}
	s := strings.Join(parts, ", ")
	d, ok := f.(cli.DocGenerationFlag)
	if !ok {
		if takesValue(f) {
			s += " " + placeholder(f)
		}
		return s
	}
	// urfave/cli's convention: a `NAME` in the usage is the value's placeholder.
	name, usage := unquoteUsage(d.GetUsage())
	if takesValue(f) {
		if name == "" || name == "value" {
			name = placeholder(f)
		}
		s += " " + name
	}
	s += "\t" + usage
	if r, ok := f.(cli.RequiredFlag); ok && r.IsRequired() {
		s += " (required)"
	}
	if def := d.GetDefaultText(); takesValue(f) && def != "" && def != "0" && def != "0s" && def != `""` && def != "[]" {
		s += " (default: " + strings.Trim(def, `"`) + ")"
	}
	if env := d.GetEnvVars(); len(env) > 0 {
		s += " [$" + strings.Join(env, ", $") + "]"
	}
	return s
}

func printAppHelp(w io.Writer, app *cli.App) {
	fmt.Fprintf(w, "NAME:\n   %s - %s\n\nUSAGE:\n   tally COMMAND [options] [arguments]\n   tally help COMMAND [SUBCOMMAND]\n\nVERSION:\n   %s\n\nDESCRIPTION:\n%s\n\nCOMMANDS:\n",
		app.Name, app.Usage, app.Version, indent(app.Description, "   "))
	width := 0
	for _, c := range visible(app.Commands) {
		width = max(width, len(c.Name))
	}
	for _, c := range visible(app.Commands) {
		fmt.Fprintf(w, "   %-*s  %s\n", width, c.Name, c.Usage)
	}
	fmt.Fprintf(w, "\nGLOBAL OPTIONS:\n   --help, -h     show help\n   --version, -V  print the version\n")
}

func indent(text, prefix string) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

// commandName is the full name of the running command, as a user types it:
// "tally release plan".
func commandName(c *cli.Context) string {
	var names []string
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" && ctx.Command.Name != "tally" {
			names = append([]string{ctx.Command.Name}, names...)
		}
	}
	return "tally " + strings.Join(names, " ")
}

// checkValue refuses a value the flag's type cannot hold, before urfave/cli
// would (with the flag shown with one dash and the whole help on stdout).
func checkValue(f cli.Flag, value string) error {
	var err error
	switch f.(type) {
	case *cli.BoolFlag:
		_, err = strconv.ParseBool(value)
		if err != nil {
			return errors.New("want true or false")
		}
	case *cli.IntFlag:
		_, err = strconv.ParseInt(value, 0, 64)
		if err != nil {
			return errors.New("want a whole number")
		}
	case *cli.DurationFlag:
		_, err = time.ParseDuration(value)
		if err != nil {
			return errors.New("want a duration like 30s or 2m")
		}
	}
	return nil
}

// unquoteUsage splits a flag's usage into the placeholder it names in
// backquotes (urfave/cli's convention) and the usage without the quotes.
func unquoteUsage(usage string) (string, string) {
	before, rest, ok := strings.Cut(usage, "`")
	if !ok {
		return "", usage
	}
	name, after, ok := strings.Cut(rest, "`")
	if !ok {
		return "", usage
	}
	return name, before + name + after
}

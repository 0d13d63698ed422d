// Command tally signs reproducible builds into a git signatures repository and
// counts an honest M-of-N quorum of maintainers who built the same digests.
//
// Run "tally help" for the commands, and see README.md for the workflow.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/release"
)

func main() {
	// The collector's target is tally's (release.GCPercent) unless the user
	// chose one with GOGC, which the Go runtime has already applied.
	if os.Getenv("GOGC") == "" {
		release.TuneGC()
	}
	os.Exit(runInterruptible(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line and returns the process exit code; main is
// the only place that exits.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	line, err := readLine(app, args)
	if err != nil {
		return report(stderr, err)
	}
	switch line.kind {
	case lineHelp:
		printHelp(stdout, app, line.path)
		return exitOK
	case lineUsageHelp:
		printHelp(stderr, app, line.path)
		return exitUsage
	case lineVersion:
		fmt.Fprintf(stdout, "tally version %s\n", version)
		return exitOK
	}
	return report(stderr, commandHelpHint(app.RunContext(ctx, line.args), line.path))
}

// genericHint is the hint of a usage error that does not know its command.
const genericHint = `run "tally help" for usage`

// commandHelpHint points a usage error's generic hint at the help of the
// command that was run.
func commandHelpHint(err error, path []*cli.Command) error {
	if err == nil || len(path) == 0 {
		return err
	}
	specific := fmt.Sprintf("run %q for its usage and examples", helpCommand(path))
	var ee *exitError
	if errors.As(err, &ee) {
		for i, h := range ee.hints {
			if h == genericHint {
				ee.hints[i] = specific
			}
		}
		return err
	}
	if isUsage(err) {
		return fail(exitUsage, err, specific)
	}
	return err
}

// Command tally signs reproducible builds into a git signatures repository and
// counts an honest M-of-N quorum of maintainers who built the same digests.
//
// Run "tally help" for the commands, and see README.md for the workflow.
package main

import (
	"context"
	"io"
	"os"

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
	err := app.RunContext(ctx, args)
	return report(stderr, err)
}

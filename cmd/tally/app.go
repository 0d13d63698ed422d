package main

import (
	"io"

	"github.com/urfave/cli/v2"
)

// version is tally's version; release builds set it with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

// newApp wires every command. Each command lives in its own file and calls
// one library function; this file only lists them.
func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	env := &environment{stdin: stdin, stdout: stdout, stderr: stderr}
	app := &cli.App{
		Name:    "tally",
		Usage:   "sign reproducible builds and count an honest M-of-N quorum of maintainers",
		Version: version,
		Description: `tally keeps maintainers' OpenPGP signatures of OCI image digests in a git
"signatures repository" that is also a containers lookaside store, so stock
podman and skopeo verify them. A release is trusted only when M distinct
maintainer keys signed the same digest.

A maintainer's round:
   make                                   # build: out/<stage>-<name>/ OCI layouts
   tally sign --repo ../signatures --release 2026.11.0 --key me.sec.asc
   tally status --repo ../signatures --release 2026.11.0

` + exitCodesHelp,
		Reader:                 stdin,
		Writer:                 stdout,
		ErrWriter:              stderr,
		ExitErrHandler:         exitErrHandler,
		HideHelpCommand:        false,
		UseShortOptionHandling: false,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return fail(exitUsage, err, `run "tally help" for usage`)
		},
		Commands: []*cli.Command{
			initCommand(env),
			signCommand(env),
			statusCommand(env),
			verifyCommand(env),
			mergeCommand(env),
			syncCommand(env),
			repairCommand(env),
			releaseCommand(env),
			policyCommand(env),
			bundleCommand(env),
			checkCommand(env),
			approveCommand(env),
			keysCommand(env),
			thresholdCommand(env),
			hooksCommand(env),
			lookasideCommand(env),
			hookCommand(env),
		},
		CommandNotFound: func(c *cli.Context, name string) {
			env.commandNotFound = name
		},
		After: func(*cli.Context) error {
			if env.commandNotFound != "" {
				return usagef("unknown command %q", env.commandNotFound)
			}
			return nil
		},
	}
	warnRepeatedFlags(app.Commands, env)
	return app
}

// environment is what commands may touch of the process: streams and the
// process environment, read only here at the edge.
type environment struct {
	stdin           io.Reader
	stdout, stderr  io.Writer
	commandNotFound string
}

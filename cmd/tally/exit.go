package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// Exit codes. They are documented in README.md and in "tally help".
const (
	exitOK       = 0  // success
	exitNoQuorum = 1  // quorum not met (status, verify, release plan)
	exitInvalid  = 2  // an invalid signature file exists
	exitMismatch = 3  // a local build or registry image differs from what met quorum
	exitUsage    = 64 // bad flags or arguments
	exitData     = 65 // bad input data: corrupt layout, bad key, not a signatures repository
	exitInternal = 70 // a bug in tally
	exitIOErr    = 74 // reading or writing files failed
	exitTempFail = 75 // try again: repository locked, remote moved, registry unreachable
	exitRefused  = 77 // refused: would overwrite uncommitted work or published history
)

const exitCodesHelp = `EXIT CODES:
   0   success
   1   quorum not met (an image is missing signatures, divergent, or backed only
       by untrusted or duplicate signatures)
   2   an invalid signature file exists (does not parse or verify, or claims
       another digest or image than the place it sits in); 2 wins over 1
   3   a local build or registry image differs from what met quorum
   64  usage error: bad flags or arguments
   65  bad input: corrupt image layout, unusable key, not a signatures repository
   70  internal error in tally (please report it)
   74  an I/O error reading or writing files
   75  temporary failure: the repository is locked, the remote moved, or a
       registry is unreachable; run the command again
   77  refused: it would overwrite uncommitted work or published history, or
       a change breaks the rules of a guarded signatures repository (check,
       hooks)
   130 interrupted by SIGINT (143: SIGTERM); nothing was committed unless the
       branch had moved already, and then the checkout was finished first`

// exitError carries an exit code and hints for the user alongside an error.
type exitError struct {
	code  int
	err   error
	hints []string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// fail wraps err with an exit code and optional hints.
func fail(code int, err error, hints ...string) error {
	return &exitError{code: code, err: err, hints: hints}
}

// usagef reports a usage error (exit 64).
func usagef(format string, args ...any) error {
	return fail(exitUsage, fmt.Errorf(format, args...), genericHint)
}

// exitStatus is a result (not an error) that still sets a non-zero exit code,
// such as "quorum not met": the command already printed its report.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// report prints err the way every tally error is printed and returns the exit code.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	var st exitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	code, hints := classify(err)
	msg := err.Error()
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if len(ee.hints) > 0 {
			hints = ee.hints // the command knows better than the error table
		}
	}
	for _, line := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		fmt.Fprintf(stderr, "tally: error: %s\n", line)
	}
	seen := map[string]bool{}
	for _, h := range hints {
		if h != "" && !seen[h] {
			seen[h] = true
			fmt.Fprintf(stderr, "tally: hint: %s\n", h)
		}
	}
	return code
}

// classify maps library errors to an exit code and hints. Errors it does not
// know are bad input (65): tally refuses rather than guesses.
func classify(err error) (int, []string) {
	for _, c := range classes {
		for _, target := range c.targets {
			if errors.Is(err, target) {
				return c.code, c.hints
			}
		}
	}
	if isInterrupt(err) {
		return exitTempFail, []string{interruptHint}
	}
	if isUsage(err) {
		return exitUsage, []string{`run "tally help" for usage`}
	}
	return exitData, nil
}

// isUsage recognises urfave/cli's own flag-parsing errors.
func isUsage(err error) bool {
	msg := err.Error()
	for _, s := range []string{"flag provided but not defined", "Required flag", "Required flags", "invalid value", "flag needs an argument"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// errorClass is one row of the error table: library errors, exit code, hints.
type errorClass struct {
	targets []error
	code    int
	hints   []string
}

// exitErrHandler stops urfave/cli from calling os.Exit: main decides exit codes.
func exitErrHandler(*cli.Context, error) {}

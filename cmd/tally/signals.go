package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/tally-sig/tally/gitstore"
)

// interruptHint is the documented hint of a command stopped by SIGINT or
// SIGTERM before it changed anything.
const interruptHint = "interrupted: nothing was committed; run the command again"

// runInterruptible runs the command line with a context that is done at
// the first SIGINT or SIGTERM. A writing command stops cleanly if its
// branch has not moved yet (nothing changed), and otherwise finishes the
// checkout update first; reads stop promptly. Either way tally then exits
// 128 + the signal's number (130 for SIGINT, 143 for SIGTERM). Later
// signals are caught too, so that nothing cuts the checkout update short;
// SIGKILL still can, and the next tally command repairs what it left
// (gitstore.Repo.Recover).
func runInterruptible(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	var got atomic.Value // syscall.Signal
	go func() {
		for s := range signals {
			if got.CompareAndSwap(nil, s) {
				cancel()
			}
		}
	}()
	code := run(ctx, args, stdin, stdout, stderr)
	s, ok := got.Load().(syscall.Signal)
	if !ok {
		return code
	}
	if code == exitOK {
		fmt.Fprintf(stderr, "tally: interrupted by %s after the point of no return: the work under way was finished first\n", signalName(s))
	}
	return 128 + int(s)
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// isInterrupt reports whether err is a command stopping for a signal.
func isInterrupt(err error) bool {
	return errors.Is(err, gitstore.ErrInterrupted) || errors.Is(err, context.Canceled)
}

// openRepo opens the repository at dir and first repairs what an
// interrupted tally left in it (gitstore.Repo.Recover), saying so in one
// line on stderr. A repair that fails is a warning: the command's own
// checks still refuse a checkout that is not clean.
func openRepo(env *environment, dir string) (*gitstore.Repo, error) {
	repo, err := gitstore.Open(dir)
	if err != nil {
		return nil, err
	}
	rc, err := repo.Recover()
	if line := rc.String(); line != "" {
		fmt.Fprintf(env.stderr, "tally: %s\n", line)
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "tally: warning: %v\n", err)
	}
	return repo, nil
}

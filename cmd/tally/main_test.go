package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/tally-sig/tally/internal/testkeys"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"tally": func() {
			pinClock(os.Getenv("TALLY_TEST_NOW"))
			installFault()
			code := runInterruptible(os.Args, os.Stdin, os.Stdout, os.Stderr)
			reportPeakMemory()
			os.Exit(code)
		},
		"mksample": func() { os.Exit(mksampleMain()) },
		"mksig":    func() { os.Exit(mksigMain()) },
		"mkkey":    func() { os.Exit(mkkeyMain()) },
	})
}

// TestScript runs the end-to-end scripts in testdata/script: one or more per
// command and one per user-facing error. Each script starts in a fresh $WORK
// holding the throwaway keys as keys/<name>.pub.asc and keys/<name>.sec.asc.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Cmds:                map[string]func(*testscript.TestScript, bool, []string){"exits": cmdExits},
		Setup: func(e *testscript.Env) error {
			dir := filepath.Join(e.WorkDir, "keys")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			for _, n := range testkeys.Names {
				if err := os.WriteFile(filepath.Join(dir, n+".pub.asc"), testkeys.Public(n), 0o644); err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, n+".sec.asc"), testkeys.Secret(n), 0o600); err != nil {
					return err
				}
				e.Setenv("FPR_"+n, testkeys.Fingerprint(n))
			}
			e.Setenv("TALLY_TEST_NOW", "2027-01-01T12:00:00Z")
			e.Setenv("TALLY_PASSPHRASE_TEST", testkeys.Passphrase)
			e.Setenv("HOME", e.WorkDir)
			e.Setenv("GIT_CONFIG_NOSYSTEM", "1")
			return nil
		},
	})
}

// cmdExits runs a command and checks its exit code: "exits 65 tally init …".
// Its output is then checked with stdout and stderr like exec's.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("running %s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

package interop

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Date is the fixed author and committer date that [Git] gives every commit,
// so that commit hashes are the same on every run.
const Date = "2025-01-01T00:00:00+0000"

// Identity used by [Git] for authors and committers.
const (
	UserName  = "tally test"
	UserEmail = "test@example.invalid"
)

// Require skips the test when one of tools is not on PATH, with a loud
// message naming the tool. When the environment variable CI is set it fails
// the test instead: CI installs every tool and must run every interop test.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("INTEROP SKIPPED: %s not installed; CI installs it (.ci/run)", strings.Join(missing, ", "))
	if os.Getenv("CI") != "" {
		t.Fatalf("%s, but CI is set: interop tests must run in CI", msg)
		return
	}
	t.Skip(msg)
}

// homes holds one isolated HOME per test, made on first use.
var homes sync.Map // testing.TB -> string

// Home returns the test's isolated HOME directory, the same for every call in
// one test. [Command] sets HOME to it, so git, gpg and skopeo never read the
// caller's configuration.
func Home(t testing.TB) string {
	t.Helper()
	if h, ok := homes.Load(t); ok {
		return h.(string)
	}
	h := t.TempDir()
	homes.Store(t, h)
	t.Cleanup(func() { homes.Delete(t) })
	return h
}

// Env returns the fixed environment that [Command] starts from: PATH and
// TMPDIR from the caller, HOME from [Home], no system git configuration,
// init.defaultBranch main, a fixed author and committer with [Date], the C
// locale and UTC. Nothing else is inherited.
func Env(t testing.TB) []string {
	t.Helper()
	home := Home(t)
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + home + "/.config",
		"LC_ALL=C",
		"TZ=UTC",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=init.defaultBranch",
		"GIT_CONFIG_VALUE_0=main",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=" + UserName,
		"GIT_AUTHOR_EMAIL=" + UserEmail,
		"GIT_AUTHOR_DATE=" + Date,
		"GIT_COMMITTER_NAME=" + UserName,
		"GIT_COMMITTER_EMAIL=" + UserEmail,
		"GIT_COMMITTER_DATE=" + Date,
	}
	if tmp := os.Getenv("TMPDIR"); tmp != "" {
		env = append(env, "TMPDIR="+tmp)
	}
	return env
}

// Command returns an exec.Cmd for name with args, run in dir (the current
// directory when empty) with [Env] followed by env: a later entry wins, so
// env can override anything, for example GNUPGHOME or HOME. The command has
// no standard input and is killed when the test ends.
func Command(t testing.TB, dir string, env []string, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	cmd.Env = append(Env(t), env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Run runs name with args in the current directory like [Command] and
// returns its standard output; it fails the test, showing standard error,
// when the command fails.
func Run(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	out, err := RunErr(t, "", env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// GitErr runs git with args in dir like [Command] and returns its standard
// output, or an error holding git's standard error.
func GitErr(t testing.TB, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	return RunErr(t, dir, env, "git", args...)
}

// Git is [GitErr] that fails the test, showing git's standard error, when
// git fails.
func Git(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	out, err := RunErr(t, dir, env, "git", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// RunErr runs name with args in dir (the current directory when empty) like
// [Command] and returns its standard output. On failure the error names the
// command and holds its standard error.
func RunErr(t testing.TB, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := Command(t, dir, env, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("running %s %s: %w\n%s",
			name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

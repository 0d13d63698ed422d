package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/testkeys"
)

// The crash harness. TestCrashCommands runs sign, merge, sync, repair,
// release cut and release publish (to a real docker-registry) and stops
// them with SIGKILL and SIGINT at the write steps of the library (the fault
// points of gitstore.SetFaultHook, by TALLY_TEST_FAULT) and after random delays.
// After each kill it checks git fsck --strict, that the branch is at the old
// commit or at one with the clean run's files, that the next tally command
// leaves index and working tree matching HEAD with nothing of tally's left
// behind, that tally verify agrees with the files on disk, and that a rerun
// completes the job. TALLY_CRASH_SOAK=N (make soak) multiplies the timed
// kills by N and kills at every occurrence of every point.

const (
	faultEnv    = "TALLY_TEST_FAULT"     // POINT:N:SIGNAL (KILL or INT)
	faultLogEnv = "TALLY_TEST_FAULT_LOG" // a file that gets each point reached
)

// installFault sets the fault hook that TALLY_TEST_FAULT asks for, in the
// tally the end-to-end tests run (the test binary itself).
func installFault() {
	if log := os.Getenv(faultLogEnv); log != "" {
		f, err := os.OpenFile(log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o666)
		if err == nil {
			var mu sync.Mutex
			gitstore.SetFaultHook(func(p string) { mu.Lock(); fmt.Fprintln(f, p); mu.Unlock() })
		}
		return
	}
	parts := strings.Split(os.Getenv(faultEnv), ":")
	if len(parts) != 3 {
		return
	}
	point := parts[0]
	n, _ := strconv.Atoi(parts[1])
	sig := map[string]syscall.Signal{"INT": syscall.SIGINT, "TERM": syscall.SIGTERM}[parts[2]]
	if sig == 0 {
		sig = syscall.SIGKILL
	}
	var count atomic.Int64
	gitstore.SetFaultHook(func(p string) {
		if p != point || count.Add(1) != int64(n) {
			return
		}
		_ = syscall.Kill(os.Getpid(), sig)
		if sig == syscall.SIGKILL {
			select {}
		}
		time.Sleep(100 * time.Millisecond) // the signal handler cancels the context meanwhile
	})
}

// crashPoints are the fault points, in the order a commit reaches them.
var crashPoints = []string{
	"pack-written", "objects-written", "lock-taken", "intent-written", "ref-lock-written", "ref-moved",
	"worktree-file-deleted", "worktree-tmp-created", "worktree-file-written", "index-lock-written",
	"index-written", "checkout-done",
}

// interruptAt are the points where a SIGINT is sent in make test (every
// point in make soak): before the branch moves, and after.
var interruptAt = map[string]bool{"objects-written": true, "intent-written": true, "ref-moved": true, "worktree-file-written": true}

// timedKills is how many SIGKILLs after a random delay each command gets
// in make test (times TALLY_CRASH_SOAK in make soak).
const timedKills = 4

// beforeMove are the points where the branch has not moved yet.
var beforeMove = map[string]bool{"pack-written": true, "objects-written": true, "intent-written": true}

// crashFixture is a directory of repositories for one command: base is
// copied for every kill; cmd runs in the copy; repo is the repository
// checked (relative to the copy).
type crashFixture struct {
	name  string
	repo  string
	args  []string // tally arguments; REPO and WORK are replaced
	extra []string // other repositories to fsck, relative to the copy
}

type crashEnvT struct {
	t    *testing.T
	work string // keys, out, fixtures
	tal  string // the tally executable
	env  []string
}

func (e *crashEnvT) run(dir string, extraEnv []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(append([]string{}, e.env...), extraEnv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (e *crashEnvT) must(dir string, name string, args ...string) string {
	e.t.Helper()
	out, err := e.run(dir, nil, name, args...)
	if err != nil {
		e.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func newCrashEnv(t *testing.T) *crashEnvT {
	interop.Require(t, "git")
	tal, err := exec.LookPath("tally")
	if err != nil {
		t.Fatalf("the test binary's tally is not on PATH: %v", err)
	}
	work := t.TempDir()
	e := &crashEnvT{t: t, work: work, tal: tal}
	e.env = append(interop.Env(t), "TALLY_TEST_NOW=2027-01-01T12:00:00Z", "TALLY_PASSPHRASE="+testkeys.Passphrase,
		"GIT_CONFIG_NOSYSTEM=1", "PATH="+os.Getenv("PATH"))
	for _, n := range []string{"alice", "bob"} {
		if err := os.WriteFile(filepath.Join(work, n+".pub.asc"), testkeys.Public(n), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, n+".sec.asc"), testkeys.Secret(n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	images := []string{"core-multi:2.0::linux/amd64,linux/arm64"}
	for i := range 40 {
		images = append(images, fmt.Sprintf("core-p%02d:1.0", i))
	}
	e.must(work, "mksample", append([]string{"-out", "out"}, images...)...)
	return e
}

// fixtures builds the starting state of each command once.
func (e *crashEnvT) fixtures(registry string) []crashFixture {
	t, w := e.t, e.work
	tally := func(dir string, args ...string) string { t.Helper(); return e.must(dir, e.tal, args...) }
	git := func(dir string, args ...string) string { t.Helper(); return e.must(dir, "git", args...) }
	var fx []crashFixture

	// sign: a fresh clone of an initialised origin.
	d := filepath.Join(w, "sign")
	git(w, "init", "-q", "--bare", "-b", "main", filepath.Join(d, "origin.git"))
	tally(w, "init", "--repo", filepath.Join(d, "seed"), "--threshold", "2", "--key-file", "alice.pub.asc", "--key-file", "bob.pub.asc")
	git(d, "-C", "seed", "remote", "add", "origin", filepath.Join(d, "origin.git"))
	git(d, "-C", "seed", "push", "-q", "-u", "origin", "main")
	git(d, "clone", "-q", "origin.git", "repo")
	fx = append(fx, crashFixture{name: "sign", repo: "repo", args: []string{"sign", "--repo", "REPO", "--release", "1.0", "--key", "WORK/alice.sec.asc", "--out", "WORK/out"}})

	// merge: alice signed in her clone; bob signed in his; alice merges bob's.
	m := filepath.Join(w, "merge")
	must(t, os.MkdirAll(m, 0o777))
	git(w, "clone", "-q", filepath.Join(d, "origin.git"), filepath.Join(m, "repo"))
	git(w, "clone", "-q", filepath.Join(d, "origin.git"), filepath.Join(m, "bob"))
	tally(w, "sign", "--repo", filepath.Join(m, "repo"), "--release", "1.0", "--key", "alice.sec.asc", "--out", "out")
	tally(w, "sign", "--repo", filepath.Join(m, "bob"), "--release", "1.0", "--key", "bob.sec.asc", "--out", "out")
	fx = append(fx, crashFixture{name: "merge", repo: "repo", args: []string{"merge", "--repo", "REPO", "--key", "WORK/alice.sec.asc", "bob"}})

	// sync: alice pushed her signatures; bob's unpublished ones replay on top.
	s := filepath.Join(w, "sync")
	must(t, os.MkdirAll(s, 0o777))
	git(w, "clone", "-q", "--bare", filepath.Join(d, "origin.git"), filepath.Join(s, "origin.git"))
	git(s, "clone", "-q", "origin.git", "alice")
	git(s, "clone", "-q", "origin.git", "repo")
	tally(w, "sign", "--repo", filepath.Join(s, "alice"), "--release", "1.0", "--key", "alice.sec.asc", "--out", "out", "--push")
	tally(w, "sign", "--repo", filepath.Join(s, "repo"), "--release", "1.0", "--key", "bob.sec.asc", "--out", "out")
	fx = append(fx, crashFixture{name: "sync", repo: "repo", extra: []string{"origin.git"}, args: []string{"sync", "--repo", "REPO", "--key", "WORK/bob.sec.asc"}})

	// repair: a gap left by a hand edit (signature-2 moved to signature-3).
	r := filepath.Join(w, "repair")
	must(t, os.MkdirAll(r, 0o777))
	git(w, "clone", "-q", filepath.Join(s, "origin.git"), filepath.Join(r, "repo"))
	tally(w, "sign", "--repo", filepath.Join(r, "repo"), "--release", "1.0", "--key", "bob.sec.asc", "--out", "out")
	var moves []string
	for _, f := range strings.Fields(git(filepath.Join(r, "repo"), "ls-files", "stagex")) {
		if strings.HasSuffix(f, "/signature-2") {
			moves = append(moves, f)
		}
	}
	for _, f := range moves {
		git(filepath.Join(r, "repo"), "mv", f, strings.TrimSuffix(f, "2")+"3")
	}
	git(filepath.Join(r, "repo"), "commit", "-q", "-m", "a hand edit leaves gaps")
	fx = append(fx, crashFixture{name: "repair", repo: "repo", args: []string{"repair", "--repo", "REPO", "--key", "WORK/alice.sec.asc", "--force"}})

	// release cut: both maintainers signed everything (the sync fixture after its sync).
	c := filepath.Join(w, "cut")
	must(t, os.MkdirAll(c, 0o777))
	git(w, "clone", "-q", "--bare", filepath.Join(s, "origin.git"), filepath.Join(c, "origin.git"))
	git(c, "clone", "-q", "origin.git", "repo")
	tally(w, "sign", "--repo", filepath.Join(c, "repo"), "--release", "1.0", "--key", "bob.sec.asc", "--out", "out", "--push")
	fx = append(fx, crashFixture{name: "release-cut", repo: "repo", args: []string{"release", "cut", "--repo", "REPO", "1.0", "--key", "WORK/alice.sec.asc"}})

	if registry != "" {
		p := filepath.Join(w, "publish")
		must(t, os.MkdirAll(p, 0o777))
		git(w, "clone", "-q", "--bare", filepath.Join(c, "origin.git"), filepath.Join(p, "origin.git"))
		git(p, "clone", "-q", "origin.git", "repo")
		tally(w, "release", "cut", "--repo", filepath.Join(p, "repo"), "1.0", "--key", "alice.sec.asc")
		fx = append(fx, crashFixture{name: "release-publish", repo: "repo", extra: []string{"origin.git"},
			args: []string{"release", "publish", "--repo", "REPO", "1.0", "--out", "WORK/out", "--to", registry + "/stagex"}})
	}
	return fx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// outcome is what one kill did, for the tally of kills per command.
type outcome struct {
	killed, interrupted, completed int // SIGKILL, SIGINT or SIGTERM, finished before a timed kill
}

func TestCrashCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash harness runs a few hundred processes; not in -short")
	}
	e := newCrashEnv(t)
	registry := ""
	if _, err := exec.LookPath("docker-registry"); err == nil || os.Getenv("CI") != "" {
		interop.Require(t, "docker-registry")
		registry = interop.StartRegistry(t).Addr
	} else {
		t.Log("INTEROP SKIPPED: docker-registry not installed: release publish is not crash-tested")
	}
	soak, _ := strconv.Atoi(os.Getenv("TALLY_CRASH_SOAK"))
	fixtures := e.fixtures(registry)
	results := map[string]*outcome{}
	for _, fx := range fixtures {
		res := &outcome{}
		results[fx.name] = res
		t.Run(fx.name, func(t *testing.T) {
			t.Parallel()
			e := *e
			e.t = t
			base := filepath.Join(e.work, fx.name)
			if fx.name == "release-cut" || fx.name == "release-publish" {
				base = filepath.Join(e.work, strings.TrimPrefix(fx.name, "release-"))
			}
			e.crashOne(fx, base, soak, res)
		})
	}
	t.Cleanup(func() { logCrashResults(t, results) })
}

func logCrashResults(t *testing.T, results map[string]*outcome) {
	var names []string
	for n := range results {
		names = append(names, n)
	}
	sort.Strings(names)
	total := 0
	for _, n := range names {
		r := results[n]
		t.Logf("%-16s %3d SIGKILL, %3d SIGINT/SIGTERM survived; %d run(s) finished before the timed kill", n, r.killed, r.interrupted, r.completed)
		total += r.killed + r.interrupted
	}
	t.Logf("%d kills survived in all", total)
}

// crashOne runs one command's kills.
func (e *crashEnvT) crashOne(fx crashFixture, base string, soak int, res *outcome) {
	t := e.t
	args := func(dir string) []string {
		out := make([]string, len(fx.args))
		for i, a := range fx.args {
			a = strings.ReplaceAll(a, "REPO", filepath.Join(dir, fx.repo))
			out[i] = strings.ReplaceAll(a, "WORK", e.work)
		}
		return out
	}
	old := strings.TrimSpace(e.must(filepath.Join(base, fx.repo), "git", "rev-parse", "HEAD"))

	// The clean run: which points it reaches, how long it takes, what files it leaves.
	clean := copyTree(t, base)
	log := filepath.Join(t.TempDir(), "points")
	start := time.Now()
	if out, err := e.run(clean, []string{faultLogEnv + "=" + log}, e.tal, args(clean)...); err != nil {
		t.Fatalf("clean run: %v\n%s", err, out)
	}
	took := time.Since(start)
	if fx.name == "release-publish" {
		// The registry keeps what the clean run uploaded: time a second run.
		again := copyTree(t, base)
		start = time.Now()
		if out, err := e.run(again, nil, e.tal, args(again)...); err != nil {
			t.Fatalf("second clean run: %v\n%s", err, out)
		}
		took = time.Since(start)
	}
	data, _ := os.ReadFile(log)
	counts := map[string]int{}
	for _, p := range strings.Fields(string(data)) {
		counts[p]++
	}
	want := e.must(filepath.Join(clean, fx.repo), "git", "ls-tree", "-r", "--name-only", "HEAD")
	t.Logf("clean run %s: points %v", took.Round(time.Millisecond), counts)

	type kill struct {
		spec  string
		delay time.Duration
	}
	var kills []kill
	for _, p := range crashPoints {
		n := counts[p]
		if n == 0 {
			continue
		}
		occ := []int{1}
		if n > 1 && (p == "worktree-file-written" || p == "ref-moved") {
			occ = append(occ, n)
		}
		if soak > 0 {
			occ = occ[:0]
			for i := 1; i <= n; i += max(1, n/20) {
				occ = append(occ, i)
			}
		}
		seen := map[int]bool{}
		for _, i := range occ {
			if !seen[i] {
				seen[i] = true
				kills = append(kills, kill{spec: fmt.Sprintf("%s:%d:KILL", p, i)})
			}
		}
		if interruptAt[p] || soak > 0 {
			kills = append(kills, kill{spec: fmt.Sprintf("%s:%d:INT", p, 1)})
		}
		if p == "objects-written" || p == "worktree-file-written" {
			kills = append(kills, kill{spec: fmt.Sprintf("%s:%d:TERM", p, 1)})
		}
	}
	rng := rand.New(rand.NewPCG(1, uint64(len(fx.name))))
	for range timedKills * max(1, soak) {
		kills = append(kills, kill{delay: time.Duration(rng.Int64N(int64(took) + 1))})
	}

	for _, k := range kills {
		dir := copyTree(t, base)
		var out string
		var err error
		if k.spec != "" {
			out, err = e.run(dir, []string{faultEnv + "=" + k.spec}, e.tal, args(dir)...)
		} else {
			out, err = e.runKilledAfter(dir, k.delay, args(dir))
		}
		what := k.spec
		if what == "" {
			what = "SIGKILL after " + k.delay.Round(time.Millisecond).String()
		}
		var ee *exec.ExitError
		st := syscall.WaitStatus(0)
		if errors.As(err, &ee) {
			st = ee.Sys().(syscall.WaitStatus)
		}
		switch {
		case strings.HasSuffix(k.spec, ":INT") || strings.HasSuffix(k.spec, ":TERM"):
			point := strings.Split(k.spec, ":")[0]
			code := 130
			if strings.HasSuffix(k.spec, ":TERM") {
				code = 143
			}
			if !st.Exited() || st.ExitStatus() != code {
				t.Errorf("%s: exit %v, want %d\n%s", what, err, code, out)
			}
			if beforeMove[point] && !strings.Contains(out, interruptHint) {
				t.Errorf("%s: no %q\n%s", what, interruptHint, out)
			}
			res.interrupted++
		case st.Signaled() && st.Signal() == syscall.SIGKILL:
			res.killed++
		case err == nil && k.spec == "":
			res.completed++
		default:
			t.Errorf("%s: not killed: %v\n%s", what, err, out)
			continue
		}
		e.checkAfterKill(what, fx, dir, old, want, args(dir))
	}
}

// runKilledAfter runs tally and kills it with SIGKILL after delay, unless it
// finished first.
func (e *crashEnvT) runKilledAfter(dir string, delay time.Duration, args []string) (string, error) {
	cmd := exec.Command(e.tal, args...)
	cmd.Dir = dir
	cmd.Env = e.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	timer := time.AfterFunc(delay, func() { _ = cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	return out.String(), err
}

// checkAfterKill checks the repositories a command was killed in.
func (e *crashEnvT) checkAfterKill(what string, fx crashFixture, dir, old, want string, rerun []string) {
	t := e.t
	repo := filepath.Join(dir, fx.repo)
	fail := func(format string, args ...any) { t.Errorf("%s: %s", what, fmt.Sprintf(format, args...)) }
	for _, r := range append([]string{fx.repo}, fx.extra...) {
		if out, err := e.run(filepath.Join(dir, r), nil, "git", "fsck", "--strict", "--no-progress"); err != nil {
			fail("git fsck --strict in %s: %v\n%s", r, err, out)
		}
	}
	tip := strings.TrimSpace(e.must(repo, "git", "rev-parse", "HEAD"))
	if tip != old {
		if got := e.must(repo, "git", "ls-tree", "-r", "--name-only", "HEAD"); got != want {
			fail("HEAD %s is neither the old commit nor one with the clean run's files", tip)
		}
	}
	// The next tally command repairs the checkout; then git and the disk agree with HEAD.
	out, err := e.run(dir, nil, e.tal, "verify", "--repo", repo)
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 2 || ee.ExitCode() > 3 {
			fail("tally verify after the kill: %v\n%s", err, out)
		}
	}
	if st := e.must(repo, "git", "status", "--porcelain", "--untracked-files=all", "--ignored"); st != "" {
		fail("git status after the next tally command:\n%s\n(tally said: %s)", st, out)
	}
	for _, p := range []string{".git/index.lock", ".git/refs/heads/main.lock", ".git/tally/checkout-intent"} {
		if _, err := os.Lstat(filepath.Join(repo, p)); err == nil {
			fail("%s left behind after the next tally command", p)
		}
	}
	// tally verify reads git objects, the lookaside clients read files: the
	// signature files on disk are exactly those of HEAD.
	onDisk := 0
	_ = filepath.WalkDir(filepath.Join(repo, "stagex"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			onDisk++
		}
		return nil
	})
	inHead := len(strings.Fields(e.must(repo, "git", "ls-tree", "-r", "--name-only", "HEAD", "stagex")))
	if onDisk != inHead {
		fail("%d signature files on disk, %d in HEAD", onDisk, inHead)
	}
	// A rerun completes the job. A cut that was complete refuses to cut
	// again (a tag never moves), as documented.
	if out, err := e.run(dir, nil, e.tal, rerun...); err != nil {
		tagged := fx.name == "release-cut" && strings.Contains(out, "tag already exists") &&
			strings.TrimSpace(e.must(repo, "git", "rev-parse", "1.0^{commit}")) == strings.TrimSpace(e.must(repo, "git", "rev-parse", "HEAD"))
		if !tagged {
			fail("rerun: %v\n%s", err, out)
			return
		}
	}
	if got := e.must(repo, "git", "ls-tree", "-r", "--name-only", "HEAD"); got != want {
		fail("after the rerun HEAD's files differ from the clean run's")
	}
	if st := e.must(repo, "git", "status", "--porcelain", "--untracked-files=all"); st != "" {
		fail("git status after the rerun:\n%s", st)
	}
}

// copyTree copies a directory with cp -a into a new temporary directory,
// pointing the remotes of the repositories in it at the copies of theirs.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "w")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	entries, _ := os.ReadDir(dst)
	for _, e := range entries {
		cfg := filepath.Join(dst, e.Name(), ".git", "config")
		data, err := os.ReadFile(cfg)
		if err != nil {
			continue
		}
		if fixed := bytes.ReplaceAll(data, []byte("url = "+src+"/"), []byte("url = "+dst+"/")); !bytes.Equal(fixed, data) {
			if err := os.WriteFile(cfg, fixed, 0o666); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dst
}

// TestInterruptAfterTheBranchMoved checks what SIGINT after the commit
// says: the commit stays, the checkout is complete, and the hint names what
// is left to do instead of claiming that nothing was committed.
func TestInterruptAfterTheBranchMoved(t *testing.T) {
	if testing.Short() {
		t.Skip("not in -short")
	}
	e := newCrashEnv(t)
	fx := e.fixtures("")
	base := filepath.Join(e.work, fx[0].name)
	for _, c := range []struct {
		name string
		args []string
		hint string
	}{
		{"sign --push", []string{"sign", "--repo", "repo", "--release", "1.0", "--key", filepath.Join(e.work, "alice.sec.asc"), "--out", filepath.Join(e.work, "out"), "--push"},
			"interrupted after the commit: the signatures are committed"},
		{"sign", []string{"sign", "--repo", "repo", "--release", "1.0", "--key", filepath.Join(e.work, "alice.sec.asc"), "--out", filepath.Join(e.work, "out")},
			"tally: interrupted by SIGINT after the point of no return"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := copyTree(t, base)
			repo := filepath.Join(dir, "repo")
			old := strings.TrimSpace(e.must(repo, "git", "rev-parse", "HEAD"))
			out, err := e.run(dir, []string{faultEnv + "=ref-moved:1:INT"}, e.tal, c.args...)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Fatalf("exit %v, want 130\n%s", err, out)
			}
			if !strings.Contains(out, c.hint) || strings.Contains(out, interruptHint) {
				t.Errorf("output lacks %q (or claims nothing was committed):\n%s", c.hint, out)
			}
			if tip := strings.TrimSpace(e.must(repo, "git", "rev-parse", "HEAD")); tip == old {
				t.Error("the branch did not move")
			}
			if st := e.must(repo, "git", "status", "--porcelain", "--untracked-files=all"); st != "" {
				t.Errorf("checkout not finished:\n%s", st)
			}
		})
	}
}

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tally-sig/tally/internal/testkeys"
)

// maintenanceLoops is how many rounds of each command the maintenance
// tests run while git's maintenance runs beside them (times
// TALLY_CRASH_SOAK in make soak).
const maintenanceLoops = 6

// gitMaintenance runs git's own maintenance in dir, in a loop, until ctx
// is done: what auto-gc after receive-pack and git maintenance do on a
// server. It returns how many rounds it ran.
func (e *crashEnvT) gitMaintenance(ctx context.Context, dir string, wg *sync.WaitGroup, rounds *int) {
	// Not gc --prune=now: that deletes the quarantine of a push under way
	// (objects/tmp_objdir-incoming-*), which breaks git's own receive-pack
	// as much as tally's hook; git's auto-gc prunes only what is two weeks old.
	tasks := [][]string{
		{"gc", "--quiet"},
		{"repack", "-a", "-d", "-q"},
		{"prune-packed"},
		{"pack-refs", "--all"},
		{"maintenance", "run", "--task=gc", "--task=loose-objects", "--task=incremental-repack", "--quiet"},
	}
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			// Failures are git's business (a concurrent ref update makes
			// pack-refs retry); only tally's verdicts are checked.
			_, _ = e.run(dir, nil, "git", tasks[i%len(tasks)]...)
			*rounds = i + 1
		}
	})
}

// checkNoMiss fails on a spurious "not found" in tally's output.
func checkNoMiss(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range []string{"not found", "object not found", "reference not found", "no such file"} {
		if strings.Contains(strings.ToLower(out), s) {
			t.Errorf("%s while git maintenance ran: %q in\n%s", what, s, out)
		}
	}
}

// TestGitMaintenanceBesideTally runs verify, status, sign, check, init's
// adoption and the server hook in loops while git gc, repack -a -d,
// prune-packed, pack-refs --all and git maintenance run concurrently in
// the same repositories, and checks every verdict and that no command sees
// an object or reference go missing.
func TestGitMaintenanceBesideTally(t *testing.T) {
	if testing.Short() {
		t.Skip("runs git maintenance in loops; not in -short")
	}
	e := newCrashEnv(t)
	loops := maintenanceLoops * max(1, soakFactor())
	w := e.work
	tally := func(dir string, args ...string) (string, error) { return e.run(dir, nil, e.tal, args...) }

	// A guarded server and a maintainer's clone that signs, pushes, verifies.
	server := filepath.Join(w, "server.git")
	e.must(w, "git", "init", "-q", "--bare", "-b", "main", server)
	e.must(w, e.tal, "init", "--repo", "seed", "--threshold", "1", "--key-file", "alice.pub.asc", "--key-file", "bob.pub.asc", "--key", "alice.sec.asc")
	e.must(w, e.tal, "hooks", "install", "--server", "--repo", server)
	e.must(w, "git", "-C", "seed", "push", "-q", server, "main")
	e.must(w, "git", "clone", "-q", server, "clone")
	clone := filepath.Join(w, "clone")

	// A plain repository with a lookaside tree for init to adopt.
	adopt := filepath.Join(w, "adopt")
	e.must(w, "git", "init", "-q", "-b", "main", adopt)
	for i := range 40 {
		d := filepath.Join(adopt, "stagex", fmt.Sprintf("core-a%02d@sha256=%064d", i, i))
		must(t, os.MkdirAll(d, 0o777))
		must(t, os.WriteFile(filepath.Join(d, "signature-1"), []byte("a signature of another tool"), 0o666))
	}
	e.must(adopt, "git", "add", ".")
	e.must(adopt, "git", "commit", "-q", "-m", "lookaside")

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var clRounds, srvRounds int
	e.gitMaintenance(ctx, clone, &wg, &clRounds)
	e.gitMaintenance(ctx, server, &wg, &srvRounds)
	defer func() { cancel(); wg.Wait() }()

	counts := map[string]int{}
	for i := range loops {
		release := fmt.Sprintf("1.%d", i)
		key := []string{"alice.sec.asc", "bob.sec.asc"}[i%2]
		out, err := tally(w, "sign", "--repo", clone, "--release", release, "--key", key, "--out", "out")
		checkNoMiss(t, "sign", out)
		if err != nil {
			t.Fatalf("sign %s: %v\n%s", release, err, out)
		}
		counts["sign"]++
		for attempt := 0; ; attempt++ {
			out, err = e.run(clone, nil, "git", "push", "-q", "origin", "main")
			// git's own receive-pack races with its gc removing empty
			// fan-out directories; that is git's failure, not the hook's.
			if err != nil && attempt < 5 && strings.Contains(out, "unable to migrate objects to permanent storage") {
				counts["git's own receive-pack failures"]++
				continue
			}
			break
		}
		if !strings.Contains(out, "unable to migrate objects") {
			checkNoMiss(t, "the server hook", out)
		}
		if err != nil {
			t.Fatalf("push (server hook) %s: %v\n%s", release, err, out)
		}
		counts["server hook"]++
		out, err = tally(w, "verify", "--repo", clone)
		checkNoMiss(t, "verify", out)
		if err != nil {
			t.Fatalf("verify: %v\n%s", err, out)
		}
		counts["verify"]++
		out, err = tally(w, "verify", "--repo", server)
		checkNoMiss(t, "verify (server)", out)
		if err != nil {
			t.Fatalf("verify on the server: %v\n%s", err, out)
		}
		counts["verify"]++
		out, err = tally(w, "status", "--repo", clone, "--release", release)
		checkNoMiss(t, "status", out)
		if err != nil || !strings.Contains(out, "quorum met") {
			t.Fatalf("status: %v\n%s", err, out)
		}
		counts["status"]++
		out, err = tally(w, "check", "--repo", clone, "HEAD")
		checkNoMiss(t, "check", out)
		if err != nil {
			t.Fatalf("check: %v\n%s", err, out)
		}
		counts["check"]++

		// init adopts a lookaside tree while git gc repacks it.
		dir := copyTree(t, adopt)
		actx, acancel := context.WithCancel(ctx)
		var awg sync.WaitGroup
		var aRounds int
		e.gitMaintenance(actx, dir, &awg, &aRounds)
		out, err = tally(w, "init", "--repo", dir, "--threshold", "1", "--key-file", "alice.pub.asc")
		acancel()
		awg.Wait()
		checkNoMiss(t, "init (adoption)", out)
		if err != nil || !strings.Contains(out, "adopted 40 existing lookaside file(s)") {
			t.Fatalf("init adoption: %v\n%s", err, out)
		}
		counts["init adoption"]++
	}
	cancel()
	wg.Wait()
	if st := e.must(clone, "git", "status", "--porcelain"); st != "" {
		t.Errorf("git status after the loops:\n%s", st)
	}
	e.must(clone, "git", "fsck", "--strict", "--no-progress")
	e.must(server, "git", "fsck", "--strict", "--no-progress")
	t.Logf("rounds while git maintenance ran (%d rounds in the clone, %d on the server): %v", clRounds, srvRounds, counts)
}

// TestTwoTalliesOneClone runs two tally sign in one clone at once, and two
// maintainers' tally sync racing into one guarded server: each waits for or
// replays onto the other as documented, and nothing is lost.
func TestTwoTalliesOneClone(t *testing.T) {
	if testing.Short() {
		t.Skip("not in -short")
	}
	e := newCrashEnv(t)
	w := e.work
	server := filepath.Join(w, "server.git")
	e.must(w, "git", "init", "-q", "--bare", "-b", "main", server)
	e.must(w, e.tal, "init", "--repo", "seed", "--threshold", "1", "--key-file", "alice.pub.asc", "--key-file", "bob.pub.asc", "--key", "alice.sec.asc")
	e.must(w, e.tal, "hooks", "install", "--server", "--repo", server)
	e.must(w, "git", "-C", "seed", "push", "-q", server, "main")
	for _, n := range []string{"alice", "bob"} {
		e.must(w, "git", "clone", "-q", server, n)
	}
	rounds := 4 * max(1, soakFactor())
	for i := range rounds {
		// Two signs in alice's clone at once: the second waits for the lock.
		var wg sync.WaitGroup
		outs := make([]string, 2)
		errs := make([]error, 2)
		for j := range 2 {
			wg.Go(func() {
				outs[j], errs[j] = e.run(w, nil, e.tal, "sign", "--repo", "alice", "--release", fmt.Sprintf("2.%d.%d", i, j), "--key", "alice.sec.asc", "--out", "out")
			})
		}
		wg.Wait()
		for j := range 2 {
			if errs[j] != nil {
				t.Fatalf("round %d: concurrent sign %d: %v\n%s", i, j, errs[j], outs[j])
			}
		}
		if st := e.must(filepath.Join(w, "alice"), "git", "status", "--porcelain"); st != "" {
			t.Fatalf("round %d: git status after two concurrent signs:\n%s", i, st)
		}
		for j := range 2 {
			rec := fmt.Sprintf("builds/2.%d.%d/%s.txt", i, j, testkeysFingerprint("alice"))
			e.must(filepath.Join(w, "alice"), "git", "cat-file", "-e", "HEAD:"+rec)
		}
		// bob signs too; both sync into the guarded server at once.
		e.must(w, e.tal, "sign", "--repo", "bob", "--release", fmt.Sprintf("2.%d.0", i), "--key", "bob.sec.asc", "--out", "out")
		keys := map[string]string{"alice": "alice.sec.asc", "bob": "bob.sec.asc"}
		for j, n := range []string{"alice", "bob"} {
			wg.Go(func() {
				outs[j], errs[j] = e.run(w, nil, e.tal, "sync", "--repo", n, "--key", keys[n], "--attempts", "10")
			})
		}
		wg.Wait()
		for j := range 2 {
			if errs[j] != nil {
				t.Fatalf("round %d: racing sync %d: %v\n%s", i, j, errs[j], outs[j])
			}
		}
		// Whoever lost the race catches up at its next sync; the server holds both.
		for _, n := range []string{"alice", "bob"} {
			e.must(w, e.tal, "sync", "--repo", n, "--key", keys[n])
		}
		a := strings.TrimSpace(e.must(filepath.Join(w, "alice"), "git", "rev-parse", "HEAD"))
		b := strings.TrimSpace(e.must(filepath.Join(w, "bob"), "git", "rev-parse", "HEAD"))
		s := strings.TrimSpace(e.must(server, "git", "rev-parse", "main"))
		if a != s || b != s {
			t.Fatalf("round %d: alice %s, bob %s, server %s", i, a, b, s)
		}
		for _, n := range []string{"alice", "bob"} {
			e.must(server, "git", "cat-file", "-e", fmt.Sprintf("main:builds/2.%d.0/%s.txt", i, testkeysFingerprint(n)))
		}
	}
	e.must(server, "git", "fsck", "--strict", "--no-progress")
	t.Logf("%d rounds of two concurrent signs in one clone and two racing syncs into one guarded server", rounds)
}

func soakFactor() int {
	var n int
	_, _ = fmt.Sscan(os.Getenv("TALLY_CRASH_SOAK"), &n)
	return n
}

func testkeysFingerprint(name string) string { return testkeys.Fingerprint(name) }

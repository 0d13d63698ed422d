package hooks

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
)

// benchVersion names the layout of the cached benchmark repositories;
// change it whenever benchRepo builds something different.
const benchVersion = "v1"

// benchTouched is how many digests the benchmarked push signs.
const benchTouched = 500

// benchRepo returns a bare repository, built once and cached under
// os.TempDir, in which bob and carol signed `digests` digests (two
// signatures each) in commit base, and commit pushed, on top, adds alice's
// signature-3 to the first benchTouched of them with her build record: the
// push a check judges. Its commits are signed by their signers.
func benchRepo(b *testing.B, digests int) (dir string, base, pushed plumbing.Hash) {
	b.Helper()
	dir = filepath.Join(os.TempDir(), fmt.Sprintf("tally-hooks-bench-%s-%d", benchVersion, digests))
	marker := filepath.Join(dir, "tally-bench-complete")
	if data, err := os.ReadFile(marker); err == nil {
		var a, c string
		if _, err := fmt.Sscan(string(data), &a, &c); err == nil {
			return dir, plumbing.NewHash(a), plumbing.NewHash(c)
		}
	}
	b.Logf("building the benchmark repository %s (once)", dir)
	tmp, err := os.MkdirTemp(os.TempDir(), "tally-hooks-bench-build-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	repo, err := gitstore.Init(tmp, true, "main")
	if err != nil {
		b.Fatal(err)
	}
	commit := func(branch string, parent plumbing.Hash, by string, changes []gitstore.Change) plumbing.Hash {
		who := identity(by, t0)
		req := gitstore.CommitRequest{Branch: plumbing.ReferenceName(branch), Changes: changes, Message: "bench",
			Author: who, Committer: who, Sign: signer(b, by).SignDetached}
		if !parent.IsZero() {
			req.Parents = []plumbing.Hash{parent}
		}
		h, err := repo.Commit(req)
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	var policyChanges []gitstore.Change
	for _, e := range policyFiles(b, 2, "alice", "bob", "carol") {
		policyChanges = append(policyChanges, gitstore.Change{Path: e.path, Data: e.data})
	}
	init := commit("main", plumbing.ZeroHash, "alice", policyChanges)
	name := func(i int) (string, string) {
		return fmt.Sprintf("core-%04d", i/10), digest(fmt.Sprintf("bench %d", i))
	}
	sign := func(key string, number int, n int) []gitstore.Change {
		out := make([]gitstore.Change, n)
		var wg sync.WaitGroup
		workers := runtime.GOMAXPROCS(0)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < n; i += workers {
					img, d := name(i)
					out[i] = gitstore.Change{Path: sigPath(img, d, number), Data: signature(b, key, img, "1.0", d)}
				}
			}(w)
		}
		wg.Wait()
		return out
	}
	base = commit("main", init, "bob", append(sign("bob", 1, digests), sign("carol", 2, digests)...))
	alice := testkeys.Fingerprint("alice")
	var touched []string
	for i := 0; i < benchTouched; i++ {
		_, d := name(i)
		touched = append(touched, d)
	}
	push := append(sign("alice", 3, benchTouched),
		gitstore.Change{Path: policy.BuildRecordPath("2026.11.0", alice), Data: recordFile(b, nil, alice, touched...)})
	pushed = commit("main", base, "alice", push)
	if err := repo.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "tally-bench-complete"), []byte(base.String()+" "+pushed.String()+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		b.Fatal(err)
	}
	return dir, base, pushed
}

// benchCheck times Check of the push in a cached repository: a fresh Repo
// each time, as each hook run opens one.
func benchCheck(b *testing.B, digests int) {
	dir, oldTip, newTip := benchRepo(b, digests)
	b.ReportAllocs()
	for b.Loop() {
		repo, err := gitstore.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		res, err := Check(repo, oldTip, newTip, Options{Now: now})
		if err != nil {
			b.Fatal(err)
		}
		if !res.OK() || res.Signatures != benchTouched || res.Commits != 1 {
			b.Fatalf("check: %d commit(s), %d signature(s):%s", res.Commits, res.Signatures, describe(res))
		}
		repo.Close()
	}
	// The budget, so that make bench reports the share of it used.
	b.ReportMetric(2e9, "budget-ns")
}

// BenchmarkCheck500Into20k checks a push of 500 new signatures into a
// repository of 20,000: the target is under 2 s (budget-ns).
func BenchmarkCheck500Into20k(b *testing.B) { benchCheck(b, 10000) }

// BenchmarkCheck500Into1k is the same push into a repository of 1,000
// signatures (the 500 touched digests' own): a ratio near 1 with
// BenchmarkCheck500Into20k shows the check costs what the push brings, not
// what the repository holds.
func BenchmarkCheck500Into1k(b *testing.B) { benchCheck(b, benchTouched) }

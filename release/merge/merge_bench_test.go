package merge_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release"
	"github.com/tally-sig/tally/release/merge"
	"github.com/tally-sig/tally/sigstore"
)

// benchSignatures makes, in parallel, one signature by who for each image
// (digest digestOf(image)) and returns them as changes at number n.
func benchSignatures(b *testing.B, who string, images []string, n int) []gitstore.Change {
	b.Helper()
	s := signerFor(b, who)
	out := make([]gitstore.Change, len(images))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				d := digestOf(images[i])
				p := sigstore.Payload{Reference: "stagex/" + images[i] + ":1.0", Digest: d, Creator: "bench"}
				data, err := p.Marshal()
				var blob []byte
				if err == nil {
					blob, err = s.SignMessage(data)
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					continue
				}
				loc := sigstore.Location{Repository: "stagex/" + images[i], Digest: d, Number: n}
				out[i] = gitstore.Change{Path: loc.Path(), Data: blob}
			}
		}()
	}
	for i := range images {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	return out
}

func images(prefix string, from, to int) []string {
	out := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-%05d", prefix, i))
	}
	return out
}

// BenchmarkMerge2x500Into20000 merges two branches that each add 500
// signatures (half to digests already signed, where both branches took
// signature-3, half to new digests, a quarter of them shared) onto a
// repository of 20,000 signatures (10,000 digests signed by two keys), in a
// checked-out repository on disk. It reports the time spent checking
// signatures (verify-ns/op) and everything else (noncrypto-ns/op): the
// merge reads only the trees the branches changed, and writes the 1,000 new
// files into the working tree.
func BenchmarkMerge2x500Into20000(b *testing.B) { benchMerge(b, false) }

// BenchmarkMerge2x500Into20000Bare is BenchmarkMerge2x500Into20000 in a bare
// repository: the merge without the working tree's file writes.
func BenchmarkMerge2x500Into20000Bare(b *testing.B) { benchMerge(b, true) }

func benchMerge(b *testing.B, bare bool) {
	ctx := context.Background()
	repo, err := gitstore.Init(b.TempDir(), bare, "main")
	if err != nil {
		b.Fatal(err)
	}
	defer repo.Close()
	var keys []release.PublicKey
	for _, n := range []string{"alice", "bob", "carol", "dave"} {
		keys = append(keys, release.PublicKey{Source: n, Data: testkeys.Public(n)})
	}
	if _, err := release.Init(ctx, repo, release.InitOptions{Namespace: "stagex", Threshold: 2, Keys: keys, Signer: signerFor(b, "alice"), Now: mergeClock}); err != nil {
		b.Fatal(err)
	}
	r := &sigRepo{t: b, repo: repo, ns: "stagex"}
	old := images("core", 0, 10000)
	base := append(benchSignatures(b, "bob", old, 1), benchSignatures(b, "carol", old, 2)...)
	r.commit("main", "bob", "20,000 signatures", base...)
	start := r.tip("main")
	r.branch("alice", start)
	r.branch("dave", start)
	r.commit("alice", "alice", "alice signs 500",
		append(benchSignatures(b, "alice", old[:250], 3), benchSignatures(b, "alice", images("new", 0, 250), 1)...)...)
	r.commit("dave", "dave", "dave signs 500",
		append(benchSignatures(b, "dave", old[:250], 3), benchSignatures(b, "dave", images("new", 125, 375), 1)...)...)

	var verify time.Duration
	b.ResetTimer()
	for b.Loop() {
		res, err := merge.Merge(ctx, repo, merge.MergeOptions{Sources: []string{"alice", "dave"}, Signer: signerFor(b, "alice"), Now: mergeClock})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Added) != 1000 || len(res.Rejected) != 0 {
			b.Fatalf("added %d, rejected %d", len(res.Added), len(res.Rejected))
		}
		verify += merge.VerifyTime(res)
		b.StopTimer()
		if err := repo.SetBranch(gitstore.BranchUpdate{Branch: "main", Old: plumbing.NewHash(res.Commit), New: start}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	total := b.Elapsed()
	b.ReportMetric(float64(verify.Nanoseconds())/float64(b.N), "verify-ns/op")
	b.ReportMetric(float64((total-verify).Nanoseconds())/float64(b.N), "noncrypto-ns/op")
}

package merge_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/sample"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release"
	"github.com/tally-sig/tally/release/merge"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/quorum"
)

// origin makes a bare repository holding a trust policy for the named keys
// with threshold m, and returns its path.
func origin(t *testing.T, m int, names ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "origin.git")
	interop.Git(t, "", nil, "init", "-q", "--bare", "-b", "main", dir)
	seedDir := filepath.Join(t.TempDir(), "seed")
	seed, err := gitstore.Init(seedDir, false, "main")
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Close()
	var keys []release.PublicKey
	for _, n := range names {
		keys = append(keys, release.PublicKey{Source: n, Data: testkeys.Public(n)})
	}
	if _, err := release.Init(context.Background(), seed, release.InitOptions{Namespace: "stagex", Threshold: m, Keys: keys, Signer: signerFor(t, names[0])}); err != nil {
		t.Fatal(err)
	}
	interop.Git(t, seedDir, nil, "push", "-q", dir, "main")
	return dir
}

// clone clones the origin into a new directory and opens it.
func clone(t *testing.T, originDir, name string) *gitstore.Repo {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	interop.Git(t, "", nil, "clone", "-q", originDir, dir)
	repo, err := gitstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	return repo
}

// signImages signs images in repo with the key who, like tally sign.
func signImages(t *testing.T, repo *gitstore.Repo, who string, images []buildout.Image) *release.SignResult {
	t.Helper()
	res, err := release.Sign(context.Background(), repo, release.SignOptions{Release: "2026.11.0", Images: images, Signer: signerFor(t, who), Creator: "test"})
	if err != nil {
		t.Fatalf("%s signs: %v", who, err)
	}
	return res
}

// checkAppendOnly checks that every commit of the first-parent history of
// repo's main only added lookaside files: nothing published ever changed.
func checkAppendOnly(t *testing.T, repo *gitstore.Repo) {
	t.Helper()
	tip, err := repo.Branch("main")
	if err != nil {
		t.Fatal(err)
	}
	for h := tip; !h.IsZero(); {
		c, err := repo.ReadCommit(h)
		if err != nil {
			t.Fatal(err)
		}
		parentTree := plumbing.ZeroHash
		next := plumbing.ZeroHash
		if len(c.Parents) > 0 {
			next = c.Parents[0]
			p, err := repo.ReadCommit(next)
			if err != nil {
				t.Fatal(err)
			}
			parentTree = p.Tree
		}
		diff, err := repo.Diff(parentTree, c.Tree)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range diff {
			if strings.HasPrefix(d.Path, "stagex/") && d.Action != gitstore.Added {
				t.Errorf("commit %s %s the published %s", merge.Short(c.Hash), d.Action, d.Path)
			}
		}
		h = next
	}
}

func TestInteropSyncRetriesWhenOthersPushFirst(t *testing.T) {
	t.Parallel()
	interop.Require(t, "git")
	for _, tt := range []struct {
		name     string
		races    int // how many attempts another maintainer's push beats
		attempts int
	}{{"wins on the second attempt", 1, 3}, {"gives up", 3, 3}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			originDir := origin(t, 2, "alice", "bob", "carol")
			alice := clone(t, originDir, "alice")
			carol := clone(t, originDir, "carol")
			img := func(name string) []buildout.Image {
				return []buildout.Image{{Name: name, Tag: "1.0", Manifests: []buildout.Manifest{{Digest: digestOf(name), Platform: "linux/amd64"}}}}
			}
			signImages(t, alice, "alice", img("core-a"))
			raced := 0
			res, err := merge.Sync(ctx, alice, merge.WithBeforePush(merge.SyncOptions{Signer: signerFor(t, "alice"), Attempts: tt.attempts,
				Backoff: func(int) time.Duration { return 0 }}, func(attempt int) {
				if raced >= tt.races {
					return
				}
				raced++
				// carol signs core-a too and publishes first.
				signImages(t, carol, "carol", img(fmt.Sprintf("core-a-%d", attempt)))
				if attempt == 1 {
					signImages(t, carol, "carol", img("core-a"))
				}
				if _, err := merge.Sync(ctx, carol, merge.SyncOptions{Signer: signerFor(t, "carol")}); err != nil {
					t.Errorf("carol's sync: %v", err)
				}
			}))
			originRepo, oerr := gitstore.Open(originDir)
			if oerr != nil {
				t.Fatal(oerr)
			}
			defer originRepo.Close()
			r := &sigRepo{t: t, repo: originRepo, ns: "stagex"}
			if tt.races >= tt.attempts {
				if !errors.Is(err, gitstore.ErrNonFastForward) {
					t.Fatalf("sync after %d lost races: %v, want ErrNonFastForward", tt.races, err)
				}
				if res.Attempts != tt.attempts || res.Pushed {
					t.Errorf("attempts %d pushed %v", res.Attempts, res.Pushed)
				}
				// alice's work is kept locally, replayed onto the last fetch.
				local := &sigRepo{t: t, repo: alice, ns: "stagex"}
				if files := local.files(local.tip("main")); files[sigPath("core-a", 2)] != "alice" {
					t.Errorf("alice's signature is not kept locally: %v", files)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Attempts != tt.races+1 || !res.Pushed {
				t.Errorf("attempts %d pushed %v, want %d and pushed", res.Attempts, res.Pushed, tt.races+1)
			}
			want := map[string]string{sigPath("core-a", 1): "carol", sigPath("core-a", 2): "alice", sigPath("core-a-1", 1): "carol"}
			if got := r.files(r.tip("main")); !mapsEqual(got, want) {
				t.Errorf("origin holds %v, want %v", got, want)
			}
			checkAppendOnly(t, originRepo)
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestInteropThreeMaintainersSignConcurrently is the story of the issue:
// three maintainers sign the same images at the same time in their own
// clones of one origin, and each pushes with tally sign --push's sync. The
// origin ends with signature-1..3 for every digest, no published file ever
// changed, the verify logic finds the 3-of-3 quorum without a problem, and
// stock skopeo accepts the images under a policy that needs all three.
func TestInteropThreeMaintainersSignConcurrently(t *testing.T) {
	t.Parallel()
	interop.Require(t, "git", "skopeo", "docker-registry", "gpg")
	ctx := context.Background()
	names := []string{"alice", "bob", "carol"}
	originDir := origin(t, 3, names...)

	out := t.TempDir()
	if _, err := sample.Write(out,
		sample.Spec{Name: "core-hello", Tag: "1.0", Flat: true},
		sample.Spec{Name: "core-world", Tag: "2.0", Flat: true},
		sample.Spec{Name: "core-multi", Tag: "3.0", Flat: true}); err != nil {
		t.Fatal(err)
	}
	images, err := buildout.Read(out, nil)
	if err != nil {
		t.Fatal(err)
	}

	clones := map[string]*gitstore.Repo{}
	for _, n := range names {
		clones[n] = clone(t, originDir, n)
	}
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		mu      sync.Mutex
		results = map[string]*merge.SyncResult{}
		signed  = map[string][]release.SignedImage{}
	)
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := release.Sign(ctx, clones[n], release.SignOptions{Release: "2026.11.0", Images: images, Signer: signerFor(t, n), Creator: "test"})
			if err != nil {
				t.Errorf("%s signs: %v", n, err)
				return
			}
			if len(res.Signed) != 3 {
				t.Errorf("%s signed %d digests, want 3", n, len(res.Signed))
			}
			sres, err := merge.SyncAndPush(ctx, clones[n], signerFor(t, n), time.Now)
			if err != nil {
				t.Errorf("%s pushes: %v", n, err)
				return
			}
			mu.Lock()
			results[n] = sres
			signed[n] = res.Signed
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	replays := 0
	for n, r := range results {
		t.Logf("%s: %d attempt(s), %d commit(s) replayed, %d signature(s) renumbered", n, r.Attempts, len(r.Replayed), len(r.Renumbered))
		replays += len(r.Replayed)
	}
	if replays < 2 {
		t.Errorf("only %d replays: at least two maintainers found the origin moved", replays)
	}

	originRepo, err := gitstore.Open(originDir)
	if err != nil {
		t.Fatal(err)
	}
	defer originRepo.Close()
	r := &sigRepo{t: t, repo: originRepo, ns: "stagex"}
	files := r.files(r.tip("main"))
	for _, img := range images {
		for _, m := range img.Manifests {
			signers := map[string]bool{}
			for n := 1; n <= 3; n++ {
				p := r.dir(img.Name, m.Digest) + fmt.Sprintf("/signature-%d", n)
				who, ok := files[p]
				if !ok {
					t.Errorf("%s missing", p)
				}
				signers[who] = true
			}
			if len(signers) != 3 || signers["?"] {
				t.Errorf("%s@%s: signers %v, want alice, bob and carol", img.Name, m.Digest, signers)
			}
		}
	}
	// What each sync reported moving is where each signature is now.
	for n, res := range results {
		moved := map[string]string{}
		for _, m := range res.Renumbered {
			moved[m.From] = m.To
		}
		for _, s := range signed[n] {
			now := s.Path
			if to, ok := moved[s.Path]; ok {
				now = to
			}
			if files[now] != n {
				t.Errorf("%s signed %s; sync reports it at %s, which holds a signature by %q", n, s.Path, now, files[now])
			}
		}
	}
	if len(files) != 9 {
		t.Errorf("origin holds %d signature files, want 9: %v", len(files), files)
	}
	// Every signature-1 is the one its first pusher published: no commit
	// of the origin's history changed or removed a lookaside file.
	checkAppendOnly(t, originRepo)
	if merges := interop.Git(t, originDir, nil, "rev-list", "--merges", "main"); merges != "" {
		t.Errorf("the origin's history is not linear: merges %s", merges)
	}
	interop.Git(t, originDir, nil, "fsck", "--strict")

	// tally verify's logic: every image meets the 3-of-3 quorum, no problem.
	st, err := policy.LoadHead(originRepo)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := quorum.Evaluate(ctx, st, quorum.EvaluateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep := ev.Tally(quorum.Scope{})
	if !rep.QuorumMet() || rep.Invalid() || len(rep.Problems) > 0 {
		t.Errorf("verify: quorum %v, invalid %v, problems %+v", rep.QuorumMet(), rep.Invalid(), rep.Problems)
	}

	// Stock skopeo, a policy needing all three maintainers, the origin's
	// checkout as the lookaside.
	reg := interop.StartRegistry(t)
	scope := reg.Addr + "/stagex"
	accept := interop.WritePolicy(t, interop.Policy{Default: []interop.Requirement{interop.AcceptAnything()}})
	lookaside := filepath.Join(t.TempDir(), "lookaside")
	interop.Git(t, "", nil, "clone", "-q", originDir, lookaside)
	regd := interop.WriteRegistriesD(t, scope, lookaside)
	for _, img := range images {
		if err := interop.SkopeoCopy(t, accept, t.TempDir(), "oci:"+img.Dir+":"+img.Tag, "docker://"+scope+"/"+img.Name+":"+img.Tag); err != nil {
			t.Fatal(err)
		}
	}
	identity := &interop.Identity{Type: "remapIdentity", Prefix: scope, SignedPrefix: "docker.io/stagex"}
	keyFile := func(name string) string {
		p := filepath.Join(t.TempDir(), name+".asc")
		if err := os.WriteFile(p, testkeys.Public(name), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var all []interop.Requirement
	for _, n := range names {
		all = append(all, interop.SignedBy(keyFile(n), identity))
	}
	allThree := interop.WritePolicy(t, interop.DockerPolicy(scope, all...))
	withMallory := interop.WritePolicy(t, interop.DockerPolicy(scope, append(all, interop.SignedBy(keyFile("mallory"), identity))...))
	for _, img := range images {
		ref := "docker://" + scope + "/" + img.Name + ":" + img.Tag
		if err := interop.SkopeoCopy(t, allThree, regd, ref, "dir:"+t.TempDir()); err != nil {
			t.Errorf("skopeo refused %s under a policy needing alice, bob and carol: %v", ref, err)
		}
		if err := interop.SkopeoCopy(t, withMallory, regd, ref, "dir:"+t.TempDir()); err == nil {
			t.Errorf("skopeo accepted %s under a policy that also needs mallory, who never signed", ref)
		}
	}
}

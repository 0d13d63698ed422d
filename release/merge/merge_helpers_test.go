package merge_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release"
	"github.com/tally-sig/tally/release/merge"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/quorum"
	"github.com/tally-sig/tally/sigstore"
)

// mergeNow is the clock of the merge, sync and repair tests: after the test
// keys were made, before any of them expires.
var mergeNow = time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)

func mergeClock() time.Time { return mergeNow }

// digestOf is a made-up manifest digest for a name.
func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// sigRepo is a signatures repository in memory with its policy.
type sigRepo struct {
	t    testing.TB
	repo *gitstore.Repo
	ns   string
}

// newSigRepo initialises a repository in memory (with a working tree in
// memory when worktree is set) trusting the named keys, threshold M.
func newSigRepo(t testing.TB, worktree bool, threshold int, names ...string) *sigRepo {
	t.Helper()
	repo := gitstore.NewMemory(worktree)
	var keys []release.PublicKey
	for _, n := range names {
		keys = append(keys, release.PublicKey{Source: n + ".pub.asc", Data: testkeys.Public(n)})
	}
	if _, err := release.Init(context.Background(), repo, release.InitOptions{Namespace: "stagex", Threshold: threshold, Keys: keys,
		Signer: signerFor(t, names[0]), Now: mergeClock}); err != nil {
		t.Fatalf("init: %v", err)
	}
	return &sigRepo{t: t, repo: repo, ns: "stagex"}
}

// tip returns the tip of a branch.
func (r *sigRepo) tip(branch string) plumbing.Hash {
	r.t.Helper()
	h, err := r.repo.Branch(plumbing.ReferenceName(branch))
	if err != nil {
		r.t.Fatalf("branch %s: %v", branch, err)
	}
	return h
}

// branch creates a branch at commit.
func (r *sigRepo) branch(name string, at plumbing.Hash) {
	r.t.Helper()
	if err := r.repo.SetBranch(gitstore.BranchUpdate{Branch: plumbing.ReferenceName(name), New: at}); err != nil {
		r.t.Fatalf("creating branch %s: %v", name, err)
	}
}

// blob makes a real signature by key who for image:tag at digest.
func (r *sigRepo) blob(who, image, digest string) []byte {
	r.t.Helper()
	p := sigstore.Payload{Reference: r.ns + "/" + image + ":1.0", Digest: digest, Creator: "test"}
	data, err := p.Marshal()
	if err != nil {
		r.t.Fatal(err)
	}
	blob, err := signerFor(r.t, who).SignMessage(data)
	if err != nil {
		r.t.Fatal(err)
	}
	return blob
}

// dir is the lookaside directory of image at digest.
func (r *sigRepo) dir(image, digest string) string {
	return sigstore.Location{Repository: r.ns + "/" + image, Digest: digest}.Dir()
}

// commit commits changes on branch (which must exist) as a commit signed by who.
func (r *sigRepo) commit(branch, who, msg string, changes ...gitstore.Change) plumbing.Hash {
	r.t.Helper()
	s := signerFor(r.t, who)
	h, err := r.repo.Commit(gitstore.CommitRequest{Branch: plumbing.ReferenceName(branch), Parents: []plumbing.Hash{r.tip(branch)},
		Changes: changes, Message: msg, Author: policy.Author(who, mergeNow), Sign: s.SignDetached})
	if err != nil {
		r.t.Fatalf("commit on %s: %v", branch, err)
	}
	return h
}

// sign adds who's signature of each image (digest digestOf(image)) on branch
// at the first free number, like tally sign, and returns the paths.
func (r *sigRepo) sign(branch, who string, images ...string) []string {
	r.t.Helper()
	snap := r.snap(r.tip(branch))
	var changes []gitstore.Change
	var paths []string
	for _, img := range images {
		d := digestOf(img)
		dir := r.dir(img, d)
		n := 1
		for {
			if _, err := snap.Stat(fmt.Sprintf("%s/signature-%d", dir, n)); errors.Is(err, fs.ErrNotExist) {
				break
			}
			n++
		}
		p := fmt.Sprintf("%s/signature-%d", dir, n)
		changes = append(changes, gitstore.Change{Path: p, Data: r.blob(who, img, d)})
		paths = append(paths, p)
	}
	r.commit(branch, who, "sign by "+who, changes...)
	return paths
}

func (r *sigRepo) snap(commit plumbing.Hash) *gitstore.Snapshot {
	r.t.Helper()
	s, err := r.repo.Snapshot(commit)
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

// read returns a file at the tip of branch, "" when missing.
func (r *sigRepo) read(branch, path string) string {
	r.t.Helper()
	data, err := r.snap(r.tip(branch)).ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return string(data)
}

// files lists the lookaside files at commit with the signer of each
// ("?" when it does not verify).
func (r *sigRepo) files(commit plumbing.Hash) map[string]string {
	r.t.Helper()
	st, err := policy.LoadCommit(r.repo, commit)
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]string{}
	err = st.Snap.Walk(r.ns, func(p string, e gitstore.Entry) error {
		if e.IsDir() {
			return nil
		}
		data, err := st.Snap.Blob(e.Hash)
		if err != nil {
			return err
		}
		who := "?"
		if sig, err := sigstore.Verify(data, st.Keys); err == nil {
			who = nameOf(sig.Signer)
		}
		out[p] = who
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.t.Fatal(err)
	}
	return out
}

// nameOf turns a fixture fingerprint back into its name.
func nameOf(fpr string) string {
	for _, n := range testkeys.Names {
		if testkeys.Fingerprint(n) == fpr {
			return n
		}
	}
	return fpr
}

// merge merges sources into main, signed by who.
func (r *sigRepo) merge(who string, allowInvalid bool, sources ...string) (*merge.MergeResult, error) {
	r.t.Helper()
	return merge.Merge(context.Background(), r.repo, merge.MergeOptions{Sources: sources, Signer: signerFor(r.t, who),
		AllowInvalid: allowInvalid, Now: mergeClock})
}

// verifyClean runs the verify logic (Evaluate and Tally) on the tip of main
// and fails the test on any problem.
func (r *sigRepo) verifyClean() *quorum.Report {
	r.t.Helper()
	st, err := policy.LoadHead(r.repo)
	if err != nil {
		r.t.Fatal(err)
	}
	ev, err := quorum.Evaluate(context.Background(), st, quorum.EvaluateOptions{Now: mergeClock})
	if err != nil {
		r.t.Fatal(err)
	}
	rep := ev.Tally(quorum.Scope{})
	if len(rep.Problems) > 0 {
		var b strings.Builder
		for _, p := range rep.Problems {
			fmt.Fprintf(&b, "\n  %s: %s: %s", p.Path, p.Kind, p.Error)
		}
		r.t.Errorf("verify reports problems:%s", b.String())
	}
	return rep
}

package release

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/quorum"
	"github.com/tally-sig/tally/sigstore"
)

// Helpers of the evaluate, quorum, report and verify tests, prefixed fx so
// that they stay apart from the other tests of the package.

// fxEpoch is when fixture repositories start; fxNow is the clock of the
// evaluations (keys made by fxKey are created relative to the real time,
// see there).
var fxEpoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// fxPath is the lookaside path of signature n of image name at digest.
func fxPath(name, digest string, n int) string {
	return sigstore.Location{Repository: "stagex/" + name, Digest: digest, Number: n}.Path()
}

// fxPayload is the payload of a signature of stagex/name:tag at digest.
func fxPayload(t testing.TB, name, tag, digest string) []byte {
	t.Helper()
	data, err := sigstore.Payload{Reference: "stagex/" + name + ":" + tag, Digest: digest, Creator: "tally test"}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// fxKeyring returns the binary keyring of public keys given armored (the
// testkeys fixtures) or binary (fxKey.public).
func fxKeyring(t testing.TB, pubs ...[]byte) []byte {
	t.Helper()
	var all bytes.Buffer
	for _, p := range pubs {
		kr, err := sigstore.ReadKeyring(p)
		if err != nil {
			t.Fatalf("reading key: %v", err)
		}
		if err := kr.Serialize(&all); err != nil {
			t.Fatal(err)
		}
	}
	return all.Bytes()
}

// fxPublic returns the armored public keys of the named fixtures.
func fxPublic(names ...string) [][]byte {
	var out [][]byte
	for _, n := range names {
		out = append(out, testkeys.Public(n))
	}
	return out
}

// fxRepo is a signatures repository in memory whose commits carry chosen
// committer times.
type fxRepo struct {
	t    testing.TB
	repo *gitstore.Repo
	tip  plumbing.Hash
}

// newFxRepo commits a policy with threshold and a keyring of pubs at
// fxEpoch. The policy is written directly (not with Init) so that it may
// hold keys Init refuses, such as expired ones.
func newFxRepo(t testing.TB, threshold int, pubs ...[]byte) *fxRepo {
	t.Helper()
	return newFxRepoOn(t, gitstore.NewMemory(false), threshold, pubs...)
}

// newFxRepoOn is newFxRepo on a given (empty) repository.
func newFxRepoOn(t testing.TB, repo *gitstore.Repo, threshold int, pubs ...[]byte) *fxRepo {
	t.Helper()
	return newFxRepoKeyring(t, repo, threshold, fxKeyring(t, pubs...))
}

// newFxRepoKeyring is newFxRepoOn with a keyring made by fxKeyring.
func newFxRepoKeyring(t testing.TB, repo *gitstore.Repo, threshold int, keyring []byte) *fxRepo {
	t.Helper()
	r := &fxRepo{t: t, repo: repo}
	p := policy.Policy{Namespace: "stagex", IdentityPrefix: "stagex", Threshold: threshold, Keyring: "stagex-keyring.pgp"}
	r.commit(fxEpoch, gitstore.Change{Path: policy.PolicyFile, Data: p.Marshal()}, gitstore.Change{Path: p.Keyring, Data: keyring})
	return r
}

// commit commits changes with committer time at.
func (r *fxRepo) commit(at time.Time, changes ...gitstore.Change) plumbing.Hash {
	r.t.Helper()
	who := object.Signature{Name: "tally test", Email: "test@example.invalid", When: at}
	req := gitstore.CommitRequest{Branch: "main", Changes: changes, Message: fmt.Sprintf("%d change(s)", len(changes)), Author: who, Committer: who}
	if !r.tip.IsZero() {
		req.Parents = []plumbing.Hash{r.tip}
	}
	h, err := r.repo.Commit(req)
	if err != nil {
		r.t.Fatalf("commit: %v", err)
	}
	r.tip = h
	return h
}

// gitstoreChange is a change of a commit.
type gitstoreChange = gitstore.Change

// file is a change writing data at path.
func file(path string, data []byte) gitstore.Change { return gitstore.Change{Path: path, Data: data} }

// evaluate evaluates the tip at now.
func (r *fxRepo) evaluate(now time.Time, opts quorum.EvaluateOptions) (*quorum.Evaluation, error) {
	r.t.Helper()
	st, err := policy.LoadHead(r.repo)
	if err != nil {
		return nil, err
	}
	opts.Now = func() time.Time { return now }
	return quorum.Evaluate(context.Background(), st, opts)
}

// mustEvaluate is evaluate that fails the test on error.
func (r *fxRepo) mustEvaluate(now time.Time, opts quorum.EvaluateOptions) *quorum.Evaluation {
	r.t.Helper()
	ev, err := r.evaluate(now, opts)
	if err != nil {
		r.t.Fatalf("Evaluate: %v", err)
	}
	return ev
}

// fxImage finds the image of a report by reference and release.
func fxImage(t testing.TB, rep *quorum.Report, ref, rel string) quorum.ImageStatus {
	t.Helper()
	for _, img := range rep.Images {
		if img.Reference == ref && img.Release == rel {
			return img
		}
	}
	t.Fatalf("no image %s (release %q) in report: %+v", ref, rel, rep.Images)
	return quorum.ImageStatus{}
}

// fxRow finds the digest row of an image.
func fxRow(t testing.TB, img quorum.ImageStatus, digest string) quorum.DigestStatus {
	t.Helper()
	for _, d := range img.Digests {
		if d.Digest == digest {
			return d
		}
	}
	t.Fatalf("no digest %s in image %s: %+v", digest, img.Reference, img.Digests)
	return quorum.DigestStatus{}
}

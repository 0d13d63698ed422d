package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// The helpers of the release tests (plan, cut, publish, policy export) are
// prefixed "rel" so they never meet the other tests' helpers.

// relNow is the fixed clock of the release tests: every fixture key is
// valid then.
var relNow = time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)

func relClock() time.Time { return relNow }

// relKey returns a fixture key as the Key a report names it by.
func relKey(t testing.TB, who string) sigstore.Key {
	t.Helper()
	kr, err := sigstore.ReadKeyring(testkeys.Public(who))
	if err != nil {
		t.Fatal(err)
	}
	return kr.Keys()[0]
}

// relInit initialises repo for the named maintainers with threshold m,
// the init commit signed by the first of them.
func relInit(t testing.TB, repo *gitstore.Repo, m int, names ...string) {
	t.Helper()
	var keys []PublicKey
	for _, n := range names {
		keys = append(keys, PublicKey{Source: n + ".pub.asc", Data: testkeys.Public(n)})
	}
	if _, err := Init(context.Background(), repo, InitOptions{Namespace: "stagex", Threshold: m, Keys: keys,
		Signer: signerFor(t, names[0]), Now: relClock}); err != nil {
		t.Fatalf("init: %v", err)
	}
}

// relMemRepo is an in-memory signatures repository (with a worktree).
func relMemRepo(t testing.TB, m int, names ...string) *gitstore.Repo {
	t.Helper()
	repo := gitstore.NewMemory(true)
	relInit(t, repo, m, names...)
	return repo
}

// relDigest makes a fake manifest digest from a seed.
func relDigest(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// relImage describes a built image: name, tag and "platform=seed" pairs
// whose digests are relDigest(name+tag+platform+seed).
func relImage(name, tag string, platformSeeds ...string) buildout.Image {
	img := buildout.Image{Name: name, Tag: tag}
	for _, ps := range platformSeeds {
		pl, seed, _ := strings.Cut(ps, "=")
		img.Manifests = append(img.Manifests, buildout.Manifest{Digest: relDigest(name + tag + pl + seed), Platform: pl})
	}
	return img
}

// relSign has who sign images for release rel.
func relSign(t testing.TB, repo *gitstore.Repo, who, rel string, images ...buildout.Image) *SignResult {
	t.Helper()
	res, err := Sign(context.Background(), repo, SignOptions{Release: rel, Images: images, Signer: signerFor(t, who),
		Run: record.Run{Source: "unknown", Dirty: "unknown", Platform: "linux/amd64", CPUVendor: "unknown", CPUModel: "unknown", Tally: "test"},
		Now: relClock, Creator: "tally test"})
	if err != nil {
		t.Fatalf("%s signs %s: %v", who, rel, err)
	}
	return res
}

// relCommit commits files directly on the checked-out branch, unsigned.
func relCommit(t testing.TB, repo *gitstore.Repo, msg string, changes ...gitstore.Change) plumbing.Hash {
	t.Helper()
	branch, tip, err := repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	who := object.Signature{Name: "test", Email: "test@example.invalid", When: relNow}
	h, err := repo.Commit(gitstore.CommitRequest{Branch: branch, Parents: []plumbing.Hash{tip}, Changes: changes,
		Message: msg, Author: who, Committer: who})
	if err != nil {
		t.Fatalf("committing: %v", err)
	}
	return h
}

// relSignature is who's signature file for name:tag at digest.
func relSignature(t testing.TB, who, name, tag, digest string) []byte {
	t.Helper()
	data, err := sigstore.Payload{Reference: "stagex/" + name + ":" + tag, Digest: digest}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	blob, err := signerFor(t, who).SignMessage(data)
	if err != nil {
		t.Fatal(err)
	}
	return blob
}

func relPlan(t testing.TB, repo *gitstore.Repo, rel string) *Plan {
	t.Helper()
	p, err := NewPlan(context.Background(), repo, PlanOptions{Release: rel, Now: relClock})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}

// TestPlanUnknownRelease: a release nobody recorded is an error naming the
// releases that exist, never an empty plan that reads like "not signed yet".
func TestPlanUnknownRelease(t *testing.T) {
	t.Parallel()
	repo := relMemRepo(t, 2, "alice", "bob")
	_, err := NewPlan(context.Background(), repo, PlanOptions{Release: "r1", Now: relClock})
	if !errors.Is(err, ErrUnknownRelease) || !strings.Contains(err.Error(), "no release has build records yet") {
		t.Errorf("plan of a repository without releases: %v", err)
	}
	relSign(t, repo, "alice", "2026.11.0", relImage("core-hello", "1.0", "linux/amd64=a"))
	_, err = NewPlan(context.Background(), repo, PlanOptions{Release: "2026.11.1", Now: relClock})
	if !errors.Is(err, ErrUnknownRelease) || !strings.Contains(err.Error(), "did you mean 2026.11.0?") {
		t.Errorf("plan of a mistyped release: %v", err)
	}
}

func TestPlanReady(t *testing.T) {
	t.Parallel()
	repo := relMemRepo(t, 2, "alice", "bob", "carol")
	hello := relImage("core-hello", "1.0", "linux/amd64=a")
	multi := relImage("core-multi", "2.0", "linux/amd64=a", "linux/arm64=a")
	relSign(t, repo, "alice", "2026.11.0", hello, multi)
	relSign(t, repo, "bob", "2026.11.0", hello, multi)
	relSign(t, repo, "carol", "2026.11.0", hello)
	// Another release's images are not part of this one.
	relSign(t, repo, "alice", "2026.12.0", relImage("core-next", "9", "linux/amd64=a"))

	p := relPlan(t, repo, "2026.11.0")
	if !p.Ready() || p.Invalid() {
		t.Fatalf("plan not ready: %+v", p.Blockers)
	}
	alice, bob, carol := relKey(t, "alice"), relKey(t, "bob"), relKey(t, "carol")
	sorted := func(keys ...sigstore.Key) []sigstore.Key {
		out := append([]sigstore.Key(nil), keys...)
		for i := range out {
			for j := i + 1; j < len(out); j++ {
				if out[j].Fingerprint < out[i].Fingerprint {
					out[i], out[j] = out[j], out[i]
				}
			}
		}
		return out
	}
	want := []ReleasedImage{
		{Name: "core-hello", Tag: "1.0", Reference: "stagex/core-hello:1.0", Platforms: []ReleasedPlatform{
			{Platform: "linux/amd64", Digest: hello.Manifests[0].Digest, Signers: sorted(alice, bob, carol)}}},
		{Name: "core-multi", Tag: "2.0", Reference: "stagex/core-multi:2.0", Platforms: []ReleasedPlatform{
			{Platform: "linux/amd64", Digest: multi.Manifests[0].Digest, Signers: sorted(alice, bob)},
			{Platform: "linux/arm64", Digest: multi.Manifests[1].Digest, Signers: sorted(alice, bob)}}},
	}
	if diff := cmp.Diff(want, p.Released()); diff != "" {
		t.Errorf("released images (-want +got):\n%s", diff)
	}
	if p.Threshold != 2 || len(p.Maintainers) != 3 || p.Tagged != "" {
		t.Errorf("threshold %d, %d maintainers, tagged %q", p.Threshold, len(p.Maintainers), p.Tagged)
	}
	_, tip, _ := repo.Head()
	if p.Commit != tip.String() {
		t.Errorf("plan at %s, want the tip %s", p.Commit, tip)
	}
}

func TestPlanBlockers(t *testing.T) {
	t.Parallel()
	hello := relImage("core-hello", "1.0", "linux/amd64=a")
	multi := relImage("core-multi", "2.0", "linux/amd64=a", "linux/arm64=a")
	multiBob := relImage("core-multi", "2.0", "linux/amd64=a", "linux/arm64=cloud")
	tests := []struct {
		name    string
		setup   func(t *testing.T, repo *gitstore.Repo)
		kinds   []string // blocker kinds, in order
		message string   // in some blocker's message
		invalid bool
	}{
		{
			name: "one signature of two",
			setup: func(t *testing.T, repo *gitstore.Repo) {
				relSign(t, repo, "alice", "r1", hello)
			},
			kinds:   []string{BlockBelowQuorum},
			message: "linux/amd64 " + ShortDigest(hello.Manifests[0].Digest) + " has 1 of 2 signature(s) (Alice",
		},
		{
			name: "divergent arm64 build",
			setup: func(t *testing.T, repo *gitstore.Repo) {
				relSign(t, repo, "alice", "r1", hello, multi)
				relSign(t, repo, "bob", "r1", hello, multiBob)
			},
			kinds:   []string{BlockDivergent},
			message: "divergent builds of linux/arm64: ",
		},
		{
			name: "one image under two versions",
			setup: func(t *testing.T, repo *gitstore.Repo) {
				other := relImage("core-hello", "1.1", "linux/amd64=a")
				relSign(t, repo, "alice", "r1", hello, other)
				relSign(t, repo, "bob", "r1", hello, other)
			},
			kinds:   []string{BlockSeveralTags},
			message: "recorded under 2 tags (1.0, 1.1)",
		},
		{
			name: "garbage signature file",
			setup: func(t *testing.T, repo *gitstore.Repo) {
				relSign(t, repo, "alice", "r1", hello)
				relSign(t, repo, "bob", "r1", hello)
				dir := "stagex/core-hello@sha256=" + strings.TrimPrefix(hello.Manifests[0].Digest, "sha256:")
				relCommit(t, repo, "garbage", gitstore.Change{Path: dir + "/signature-3", Data: []byte("not a signature")})
			},
			// Stock clients reject every signature of a directory holding
			// garbage, so the image is below quorum too.
			kinds:   []string{BlockInvalid, BlockBelowQuorum},
			message: "signature-3",
			invalid: true,
		},
		{
			name: "a build of unknown platform",
			setup: func(t *testing.T, repo *gitstore.Repo) {
				odd := buildout.Image{Name: "core-odd", Tag: "1", Manifests: []buildout.Manifest{{Digest: relDigest("odd")}}}
				relSign(t, repo, "alice", "r1", hello, odd)
				relSign(t, repo, "bob", "r1", hello, odd)
			},
			kinds:   []string{BlockUnknownPlatform},
			message: "do not say which platform",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			repo := relMemRepo(t, 2, "alice", "bob")
			tt.setup(t, repo)
			p := relPlan(t, repo, "r1")
			var kinds []string
			found := tt.message == ""
			for _, b := range p.Blockers {
				kinds = append(kinds, b.Kind)
				found = found || strings.Contains(b.Message, tt.message)
			}
			if diff := cmp.Diff(tt.kinds, kinds); diff != "" {
				t.Errorf("blocker kinds (-want +got):\n%s\n%+v", diff, p.Blockers)
			}
			if !found {
				t.Errorf("no blocker says %q: %+v", tt.message, p.Blockers)
			}
			if p.Ready() || p.Invalid() != tt.invalid {
				t.Errorf("Ready %v, Invalid %v, want false, %v", p.Ready(), p.Invalid(), tt.invalid)
			}
		})
	}
}

// TestPlanUntrustedSignatureDoesNotCount: a valid signature by a key outside
// the policy neither counts nor blocks; it is a warning.
func TestPlanUntrustedSignatureDoesNotCount(t *testing.T) {
	t.Parallel()
	repo := relMemRepo(t, 2, "alice", "bob")
	hello := relImage("core-hello", "1.0", "linux/amd64=a")
	relSign(t, repo, "alice", "r1", hello)
	dir := "stagex/core-hello@sha256=" + strings.TrimPrefix(hello.Manifests[0].Digest, "sha256:")
	relCommit(t, repo, "mallory", gitstore.Change{Path: dir + "/signature-2", Data: relSignature(t, "mallory", "core-hello", "1.0", hello.Manifests[0].Digest)})

	p := relPlan(t, repo, "r1")
	if p.Ready() || len(p.Blockers) != 1 || p.Blockers[0].Kind != BlockBelowQuorum {
		t.Fatalf("blockers %+v, want one below-quorum", p.Blockers)
	}
	if !strings.Contains(p.Blockers[0].Message, "1 of 2") || !strings.Contains(p.Blockers[0].Message, "not counted") {
		t.Errorf("message %q does not say 1 of 2 and what did not count", p.Blockers[0].Message)
	}
	if len(p.Warnings) == 0 {
		t.Errorf("no warning about the untrusted signature")
	}

	relSign(t, repo, "bob", "r1", hello)
	if p := relPlan(t, repo, "r1"); !p.Ready() {
		t.Errorf("alice and bob signed, mallory too: blockers %+v", p.Blockers)
	}
}

func TestPlanRefusesBadRelease(t *testing.T) {
	t.Parallel()
	repo := relMemRepo(t, 1, "alice")
	for _, v := range []string{"", "../x", "a..b", "x.lock", "a b"} {
		if _, err := NewPlan(context.Background(), repo, PlanOptions{Release: v, Now: relClock}); err == nil {
			t.Errorf("NewPlan accepted release %q", v)
		}
	}
	if _, err := NewPlan(context.Background(), gitstore.NewMemory(true), PlanOptions{Release: "1", Now: relClock}); !errors.Is(err, policy.ErrNoPolicy) {
		t.Errorf("plan in an empty repository: %v, want ErrNoPolicy", err)
	}
}

// TestPlanAfterRebuild: a maintainer whose build diverged and who rebuilt
// and signed the agreed digest no longer blocks the release; the old
// signature stays in the lookaside but no build record names it.
func TestPlanAfterRebuild(t *testing.T) {
	t.Parallel()
	repo := relMemRepo(t, 2, "alice", "bob")
	good := relImage("core-multi", "2.0", "linux/amd64=a", "linux/arm64=a")
	bad := relImage("core-multi", "2.0", "linux/amd64=a", "linux/arm64=cloud")
	relSign(t, repo, "alice", "r1", good)
	relSign(t, repo, "bob", "r1", bad)
	if p := relPlan(t, repo, "r1"); p.Ready() || p.Blockers[0].Kind != BlockDivergent {
		t.Fatalf("divergent builds: blockers %+v", p.Blockers)
	}
	relSign(t, repo, "bob", "r1", good)
	p := relPlan(t, repo, "r1")
	if !p.Ready() {
		t.Fatalf("after bob's rebuild: blockers %+v", p.Blockers)
	}
	if got := p.Images[0].Platforms[1].Digest; got != good.Manifests[1].Digest {
		t.Errorf("released arm64 digest %s, want the agreed %s", got, good.Manifests[1].Digest)
	}
}

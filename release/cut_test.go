package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

// relReady is a repository where alice and bob (2 of 2) signed release r1:
// core-hello (amd64) and core-multi (amd64, arm64).
func relReady(t testing.TB, repo *gitstore.Repo) []buildout.Image {
	t.Helper()
	relInit(t, repo, 2, "alice", "bob")
	images := []buildout.Image{
		relImage("core-hello", "1.0", "linux/amd64=a"),
		relImage("core-multi", "2.0", "linux/amd64=a", "linux/arm64=a"),
	}
	relSign(t, repo, "alice", "r1", images...)
	relSign(t, repo, "bob", "r1", images...)
	return images
}

func relCut(t testing.TB, repo *gitstore.Repo, who, rel string) *CutResult {
	t.Helper()
	res, err := Cut(context.Background(), repo, CutOptions{Release: rel, Signer: signerFor(t, who), Now: relClock})
	if err != nil {
		t.Fatalf("cut %s: %v", rel, err)
	}
	return res
}

func TestCut(t *testing.T) {
	t.Parallel()
	repo := gitstore.NewMemory(true)
	images := relReady(t, repo)
	_, before, _ := repo.Head()
	res := relCut(t, repo, "alice", "r1")

	_, tip, _ := repo.Head()
	if !res.Committed || res.Commit != tip.String() || tip == before {
		t.Fatalf("cut committed %v as %s; branch at %s (was %s)", res.Committed, res.Commit, tip, before)
	}
	if got, ok := tagTarget(repo, "r1"); !ok || got != tip {
		t.Errorf("tag r1 points at %s (%v), want %s", got, ok, tip)
	}
	if res.Signer != testkeys.Fingerprint("alice") || res.Tag == "" || res.Branch != "main" {
		t.Errorf("result %+v", res)
	}

	snap, err := repo.Snapshot(tip)
	if err != nil {
		t.Fatal(err)
	}
	// digests.txt: one line per per-platform manifest, sorted by name then digest.
	list, err := snap.ReadFile("releases/r1/digests.txt")
	if err != nil {
		t.Fatal(err)
	}
	var wantList bytes.Buffer
	if err := buildout.WriteDigestList(&wantList, buildout.DigestEntries(images)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantList.String(), string(list)); diff != "" {
		t.Errorf("digests.txt (-want +got):\n%s", diff)
	}
	if n := strings.Count(string(list), " core-multi\n"); n != 2 {
		t.Errorf("core-multi has %d lines in digests.txt, want one per platform:\n%s", n, list)
	}
	data, err := snap.ReadFile("releases/r1/release.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		t.Fatalf("release.json does not parse: %v\n%s", err, data)
	}
	if diff := cmp.Diff(res.Manifest, m); diff != "" {
		t.Errorf("release.json (-result +file):\n%s", diff)
	}
	if m.Namespace != "stagex" || m.IdentityPrefix != "stagex" || m.Threshold != 2 || len(m.Images) != 2 || len(m.Images[1].Platforms) != 2 {
		t.Errorf("manifest %+v", m)
	}
	alice, bob := relKey(t, "alice"), relKey(t, "bob")
	want := []sigstore.Key{alice, bob}
	if bob.Fingerprint < alice.Fingerprint {
		want = []sigstore.Key{bob, alice}
	}
	if diff := cmp.Diff(want, m.Images[1].Platforms[1].Signers); diff != "" {
		t.Errorf("signers (-want +got):\n%s", diff)
	}

	// The commit is signed by alice and carries only the two files.
	c, err := repo.ReadCommit(tip)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Signature) == 0 || c.Author.Name != "Alice Builder" || !strings.HasPrefix(c.Message, "release r1: 2 image(s), 3 platform manifest(s)") {
		t.Errorf("commit by %q, signed %v, message %q", c.Author.Name, len(c.Signature) > 0, c.Message)
	}
	prev, _ := repo.Snapshot(before)
	diff, err := repo.Diff(prev.Tree(), snap.Tree())
	if err != nil {
		t.Fatal(err)
	}
	if len(diff) != 2 {
		t.Errorf("the release commit changes %d paths, want 2: %+v", len(diff), diff)
	}

	// A plan now says it is cut.
	if p := relPlan(t, repo, "r1"); p.Tagged != tip.String() {
		t.Errorf("plan after cut: tagged %q, want %s", p.Tagged, tip)
	}
}

func TestCutRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, repo *gitstore.Repo)
		who   string
		want  error
	}{
		{
			name: "below quorum",
			setup: func(t *testing.T, repo *gitstore.Repo) {
				relInit(t, repo, 2, "alice", "bob")
				relSign(t, repo, "alice", "r1", relImage("core-hello", "1.0", "linux/amd64=a"))
			},
			who:  "alice",
			want: ErrNotReady,
		},
		{
			name: "divergent",
			setup: func(t *testing.T, repo *gitstore.Repo) {
				relInit(t, repo, 2, "alice", "bob")
				relSign(t, repo, "alice", "r1", relImage("core-hello", "1.0", "linux/amd64=a"))
				relSign(t, repo, "bob", "r1", relImage("core-hello", "1.0", "linux/amd64=b"))
			},
			who:  "alice",
			want: ErrNotReady,
		},
		{
			name:  "signer outside the keyring",
			setup: func(t *testing.T, repo *gitstore.Repo) { relReady(t, repo) },
			who:   "mallory",
			want:  ErrUntrustedSigner,
		},
		{
			name: "tag exists",
			setup: func(t *testing.T, repo *gitstore.Repo) {
				relReady(t, repo)
				_, tip, _ := repo.Head()
				if _, err := repo.CreateTag(gitstore.TagRequest{Name: "r1", Target: tip, Message: "someone else's r1",
					Tagger: authorOf("x <x@example.invalid>", relNow)}); err != nil {
					t.Fatal(err)
				}
			},
			who:  "alice",
			want: gitstore.ErrTagExists,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			repo := gitstore.NewMemory(true)
			tt.setup(t, repo)
			_, before, _ := repo.Head()
			tagBefore, hadTag := tagTarget(repo, "r1")
			_, err := Cut(context.Background(), repo, CutOptions{Release: "r1", Signer: signerFor(t, tt.who), Now: relClock})
			if !errors.Is(err, tt.want) {
				t.Fatalf("cut: %v, want %v", err, tt.want)
			}
			_, after, _ := repo.Head()
			tagAfter, hasTag := tagTarget(repo, "r1")
			if after != before || hasTag != hadTag || tagAfter != tagBefore {
				t.Errorf("a refused cut moved the branch (%s -> %s) or the tag (%s -> %s)", before, after, tagBefore, tagAfter)
			}
			var nr *NotReadyError
			if errors.As(err, &nr) && (nr.Plan.Ready() || !strings.Contains(err.Error(), "core-hello")) {
				t.Errorf("not-ready error %q does not name the image", err)
			}
		})
	}
}

// TestCutNeverMovesTag: cutting again refuses, even after new signatures.
func TestCutNeverMovesTag(t *testing.T) {
	t.Parallel()
	repo := gitstore.NewMemory(true)
	relInit(t, repo, 1, "alice", "bob")
	relSign(t, repo, "alice", "r1", relImage("core-hello", "1.0", "linux/amd64=a"))
	first := relCut(t, repo, "alice", "r1")
	relSign(t, repo, "bob", "r1", relImage("core-hello", "1.0", "linux/amd64=a"))
	_, err := Cut(context.Background(), repo, CutOptions{Release: "r1", Signer: signerFor(t, "bob"), Now: relClock})
	if !errors.Is(err, gitstore.ErrTagExists) {
		t.Fatalf("second cut: %v, want ErrTagExists", err)
	}
	if got, _ := tagTarget(repo, "r1"); got.String() != first.Commit {
		t.Errorf("tag moved to %s, want %s", got, first.Commit)
	}
}

// TestCutResumesAfterCommit: when a run committed the manifest but made no
// tag, the next run tags that commit and commits nothing.
func TestCutResumesAfterCommit(t *testing.T) {
	t.Parallel()
	repo := gitstore.NewMemory(true)
	relReady(t, repo)
	st, err := policy.LoadHead(repo)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := planAt(context.Background(), st, "r1", relClock)
	if err != nil {
		t.Fatal(err)
	}
	m := newManifest(plan, st.Policy)
	list, err := m.DigestList()
	if err != nil {
		t.Fatal(err)
	}
	done := relCommit(t, repo, "an interrupted cut",
		gitstore.Change{Path: "releases/r1/digests.txt", Data: list},
		gitstore.Change{Path: "releases/r1/release.json", Data: m.Marshal()})

	res := relCut(t, repo, "bob", "r1")
	if res.Committed || res.Commit != done.String() {
		t.Errorf("resumed cut committed %v at %s, want the existing %s", res.Committed, res.Commit, done)
	}
	if got, _ := tagTarget(repo, "r1"); got != done {
		t.Errorf("tag at %s, want %s", got, done)
	}
	if _, tip, _ := repo.Head(); tip != done {
		t.Errorf("branch moved to %s", tip)
	}
}

// TestCutTagMessage: the tag lists images, versions, platforms and signers.
func TestCutTagMessage(t *testing.T) {
	t.Parallel()
	m := &Manifest{Version: 1, Release: "2026.11.0", Namespace: "stagex", IdentityPrefix: "stagex", Threshold: 2,
		Images: []ReleasedImage{{Name: "core-multi", Tag: "2.0", Reference: "stagex/core-multi:2.0", Platforms: []ReleasedPlatform{
			{Platform: "linux/amd64", Digest: relDigest("1"), Signers: []sigstore.Key{{Fingerprint: "AA", Name: "Alice Builder <a@x>"}, {Fingerprint: "BB", Name: "Bob (cloud) <b@x>"}}},
		}}}}
	got := tagMessage(m)
	for _, want := range []string{
		"release 2026.11.0\n\n1 image(s), 1 platform manifest(s), each signed by at least 2 maintainer key(s).\n",
		"\ncore-multi 2.0\n  linux/amd64 " + relDigest("1") + " signed by Alice Builder, Bob\n",
		"\nSigners:\n  AA Alice Builder <a@x>\n  BB Bob (cloud) <b@x>\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("tag message lacks %q:\n%s", want, got)
		}
	}
}

func TestParseManifest(t *testing.T) {
	t.Parallel()
	good := func() *Manifest {
		return &Manifest{Version: 1, Release: "2026.11.0", Namespace: "stagex", IdentityPrefix: "stagex", Threshold: 1,
			Images: []ReleasedImage{{Name: "core-a", Tag: "1.0", Reference: "stagex/core-a:1.0", Platforms: []ReleasedPlatform{
				{Platform: "linux/amd64", Digest: relDigest("a"), Signers: []sigstore.Key{{Fingerprint: testkeys.Fingerprint("alice"), Name: "Alice"}}},
				{Platform: "linux/arm64/v8", Digest: relDigest("b"), Signers: []sigstore.Key{{Fingerprint: testkeys.Fingerprint("alice"), Name: "Alice"}}},
			}}}}
	}
	m, err := ParseManifest(good().Marshal())
	if err != nil {
		t.Fatalf("a good manifest: %v", err)
	}
	if diff := cmp.Diff(good(), m); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	tests := []struct {
		name   string
		edit   func(m *Manifest)
		raw    string
		reason string
	}{
		{name: "version", edit: func(m *Manifest) { m.Version = 2 }, reason: "tally_release 2"},
		{name: "release", edit: func(m *Manifest) { m.Release = "../x" }, reason: "release"},
		{name: "namespace", edit: func(m *Manifest) { m.Namespace = "Stagex" }, reason: "namespace"},
		{name: "threshold", edit: func(m *Manifest) { m.Threshold = 0 }, reason: "threshold"},
		{name: "no images", edit: func(m *Manifest) { m.Images = nil }, reason: "no images"},
		{name: "name", edit: func(m *Manifest) { m.Images[0].Name = "Core" }, reason: "name"},
		{name: "tag", edit: func(m *Manifest) { m.Images[0].Tag = "-1" }, reason: "tag"},
		{name: "reference", edit: func(m *Manifest) { m.Images[0].Reference = "evil/core-a:1.0" }, reason: "reference"},
		{name: "unsorted images", edit: func(m *Manifest) { m.Images = append(m.Images, m.Images[0]) }, reason: "sorted"},
		{name: "no platforms", edit: func(m *Manifest) { m.Images[0].Platforms = nil }, reason: "no platforms"},
		{name: "platform", edit: func(m *Manifest) { m.Images[0].Platforms[0].Platform = "amd64" }, reason: "os/arch"},
		{name: "unsorted platforms", edit: func(m *Manifest) {
			p := m.Images[0].Platforms
			p[0], p[1] = p[1], p[0]
		}, reason: "sorted"},
		{name: "digest", edit: func(m *Manifest) { m.Images[0].Platforms[0].Digest = "sha256:AB" }, reason: "digest"},
		{name: "digest twice", edit: func(m *Manifest) { m.Images[0].Platforms[1].Digest = m.Images[0].Platforms[0].Digest }, reason: "two platforms"},
		{name: "too few signers", edit: func(m *Manifest) { m.Threshold = 2 }, reason: "below the threshold"},
		{name: "signer", edit: func(m *Manifest) { m.Images[0].Platforms[0].Signers[0].Fingerprint = "abc" }, reason: "fingerprint"},
		{name: "signer twice", edit: func(m *Manifest) {
			p := &m.Images[0].Platforms[0]
			p.Signers = append(p.Signers, p.Signers[0])
		}, reason: "each once"},
		{name: "unknown field", raw: `{"tally_release":1,"extra":1}`, reason: "unknown field"},
		{name: "trailing data", raw: string(good().Marshal()) + "{}", reason: "after the JSON"},
		{name: "not json", raw: "release 1", reason: "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := []byte(tt.raw)
			if tt.edit != nil {
				m := good()
				tt.edit(m)
				data = m.Marshal()
			}
			_, err := ParseManifest(data)
			if !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("ParseManifest: %v, want ErrBadManifest saying %q", err, tt.reason)
			}
		})
	}
}

// FuzzParseManifest: what parses re-encodes to bytes that parse to the same
// manifest, and encoding is stable.
func FuzzParseManifest(f *testing.F) {
	m := &Manifest{Version: 1, Release: "r1", Namespace: "stagex", IdentityPrefix: "ghcr.io/stagex", Threshold: 1,
		Images: []ReleasedImage{{Name: "a", Tag: "1", Reference: "ghcr.io/stagex/a:1", Platforms: []ReleasedPlatform{
			{Platform: "linux/amd64", Digest: relDigest("a"), Signers: []sigstore.Key{{Fingerprint: testkeys.Fingerprint("bob"), Name: "Bob"}}}}}}}
	f.Add(m.Marshal())
	f.Add([]byte(`{"tally_release":1}`))
	f.Add([]byte(`{"tally_release":1,"release":"x","namespace":"a","identity_prefix":"a","threshold":1,"images":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if !errors.Is(err, ErrBadManifest) {
				t.Fatalf("error %v does not wrap ErrBadManifest", err)
			}
			return
		}
		enc := m.Marshal()
		again, err := ParseManifest(enc)
		if err != nil {
			t.Fatalf("re-encoded manifest does not parse: %v\n%s", err, enc)
		}
		if diff := cmp.Diff(m, again); diff != "" {
			t.Fatalf("round trip changed the manifest:\n%s", diff)
		}
		if !bytes.Equal(enc, again.Marshal()) {
			t.Fatalf("encoding is not stable")
		}
		var generic map[string]any
		if err := json.Unmarshal(enc, &generic); err != nil {
			t.Fatalf("encoding is not JSON: %v", err)
		}
	})
}

// TestInteropCutVerifyTag: git verify-tag and verify-commit accept what cut
// makes, with a key file and with gpg; git fsck finds nothing wrong.
func TestInteropCutVerifyTag(t *testing.T) {
	t.Parallel()
	interop.Require(t, "git", "gpg")
	for _, viaGPG := range []bool{false, true} {
		t.Run(fmt.Sprintf("gpg=%v", viaGPG), func(t *testing.T) {
			dir := t.TempDir()
			repo, err := gitstore.Init(filepath.Join(dir, "sigs"), false, "main")
			if err != nil {
				t.Fatal(err)
			}
			defer repo.Close()
			relReady(t, repo)
			var signer sigstore.Signer = signerFor(t, "alice")
			if viaGPG {
				home := interop.GPGHome(t, testkeys.Secret("alice"))
				g, err := sigstore.NewGPGSigner(sigstore.GPGOptions{Home: home, LocalUser: testkeys.Fingerprint("alice")})
				if err != nil {
					t.Fatal(err)
				}
				signer = g
			}
			res, err := Cut(context.Background(), repo, CutOptions{Release: "r1", Signer: signer, Now: relClock})
			if err != nil {
				t.Fatal(err)
			}
			env := []string{"GNUPGHOME=" + interop.GPGHome(t, testkeys.Public("alice"))}
			work := filepath.Join(dir, "sigs")
			interop.Git(t, work, env, "verify-tag", "r1")
			if _, err := interop.GitErr(t, work, env, "verify-commit", res.Commit); err != nil {
				t.Errorf("git verify-commit: %v", err)
			}
			if got := strings.TrimSpace(interop.Git(t, work, env, "rev-parse", "r1^{commit}")); got != res.Commit {
				t.Errorf("git: the tag points at %s, want %s", got, res.Commit)
			}
			msg := interop.Git(t, work, env, "tag", "-l", "--format=%(contents)", "r1")
			if !strings.Contains(msg, "core-multi 2.0\n  linux/amd64 sha256:") || !strings.Contains(msg, testkeys.Fingerprint("bob")) {
				t.Errorf("tag message:\n%s", msg)
			}
			interop.Git(t, work, env, "fsck", "--strict", "--no-progress")
			if st := interop.Git(t, work, env, "status", "--porcelain"); st != "" {
				t.Errorf("git status after cut:\n%s", st)
			}
			if _, err := os.Stat(filepath.Join(work, "releases", "r1", "digests.txt")); err != nil {
				t.Errorf("the checkout lacks the digest list: %v", err)
			}
			// Someone else's key does not verify the tag.
			other := []string{"GNUPGHOME=" + interop.GPGHome(t, testkeys.Public("bob"))}
			if _, err := interop.GitErr(t, work, other, "verify-tag", "r1"); err == nil {
				t.Errorf("git verify-tag accepted the tag with only bob's key")
			}
		})
	}
}

package release

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/sample"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// judgeAt judges the signature file at p of the repository's HEAD with the
// one judgement every command uses, and returns the signer.
func judgeAt(t *testing.T, repo *gitstore.Repo, p string) string {
	t.Helper()
	st, err := policy.LoadHead(repo)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := st.Snap.ReadFile(p)
	if err != nil {
		t.Fatalf("reading %s: %v", p, err)
	}
	loc, err := sigstore.ParseLocation(p)
	if err != nil {
		t.Fatal(err)
	}
	v := sigstore.Judge(loc, st.Policy.Repository(strings.TrimPrefix(loc.Repository, "stagex/")), blob, st.Keys)
	if !v.OK() {
		t.Fatalf("%s: %s: %s", p, v.Problem, v.Message)
	}
	return v.Signature.Signer
}

func paths(items []SignedImage) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Path
	}
	slices.Sort(out)
	return out
}

func TestSignNumbersIdempotenceAndRecords(t *testing.T) {
	t.Parallel()
	for _, bare := range []bool{false, true} {
		t.Run(fmt.Sprintf("bare=%v", bare), func(t *testing.T) {
			t.Parallel()
			repo := gitstore.NewMemory(!bare)
			signInitRepo(t, repo, 2, "alice", "bob", "carol")
			imgs := signSampleImages(t, sample.Spec{Name: "core-hello", Tag: "1.0"},
				sample.Spec{Name: "core-multi", Tag: "2.0", Platforms: []string{"linux/amd64", "linux/arm64"}},
				sample.Spec{Name: "core-flat", Tag: "3.0", Flat: true})
			alice, bob := testkeys.Fingerprint("alice"), testkeys.Fingerprint("bob")

			res := signMust(t, repo, signOpts(t, "alice", imgs))
			if res.Images != 3 || res.Platforms != 4 || len(res.Signed) != 4 || len(res.Skipped) != 0 {
				t.Fatalf("first sign: %d images, %d platforms, %d signed, %d skipped", res.Images, res.Platforms, len(res.Signed), len(res.Skipped))
			}
			for _, s := range res.Signed {
				if !strings.HasSuffix(s.Path, "/signature-1") {
					t.Errorf("first signature of %s at %s", s.Reference, s.Path)
				}
				if got := judgeAt(t, repo, s.Path); got != alice {
					t.Errorf("%s signed by %s", s.Path, got)
				}
			}
			first := signHead(t, repo)
			if res.Commit != first.String() || res.Branch != "main" {
				t.Errorf("result names commit %s on %s, HEAD is %s", res.Commit, res.Branch, first)
			}

			// The commit is signed by alice's key, as git verify-commit checks.
			info, err := repo.ReadCommit(first)
			if err != nil {
				t.Fatal(err)
			}
			if info.Author.Name != "Alice Builder" || !strings.HasPrefix(info.Message, "sign 2026.11.0: 4 new signature(s) by Alice Builder\n") {
				t.Errorf("commit by %q: %q", info.Author.Name, info.Message)
			}
			for _, s := range res.Signed {
				if !strings.Contains(info.Message, s.Reference+" "+s.Platform+" "+s.Digest) {
					t.Errorf("commit message does not list %s %s", s.Reference, s.Platform)
				}
			}
			checkCommitSignature(t, repo, first, "alice")

			// A rerun adds nothing and makes no commit.
			again := signMust(t, repo, signOpts(t, "alice", imgs))
			if len(again.Signed) != 0 || len(again.Skipped) != 4 || again.Commit != "" || signHead(t, repo) != first {
				t.Errorf("rerun: %d signed, %d skipped, commit %q", len(again.Signed), len(again.Skipped), again.Commit)
			}
			if diff := cmp.Diff(paths(res.Signed), paths(again.Skipped)); diff != "" {
				t.Errorf("rerun skips other files (-signed +skipped):\n%s", diff)
			}

			// Bob gets signature-2 everywhere.
			res = signMust(t, repo, signOpts(t, "bob", imgs))
			for _, s := range res.Signed {
				if !strings.HasSuffix(s.Path, "/signature-2") || judgeAt(t, repo, s.Path) != bob {
					t.Errorf("bob's signature of %s at %s", s.Reference, s.Path)
				}
			}

			// The build records say what each built.
			st, err := policy.LoadHead(repo)
			if err != nil {
				t.Fatal(err)
			}
			data, err := st.Snap.ReadFile(policy.BuildRecordPath("2026.11.0", alice))
			if err != nil {
				t.Fatal(err)
			}
			rec, err := record.ParseBuildRecord(data)
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.Runs) != 1 || len(rec.Built) != 4 {
				t.Errorf("alice's record: %d runs, %d built; want 1 and 4 (the rerun built nothing new)", len(rec.Runs), len(rec.Built))
			}
			for _, img := range imgs {
				for _, m := range img.Manifests {
					if !rec.Has(record.Built{Name: img.Name, Tag: img.Tag, Platform: m.Platform, Digest: m.Digest}) {
						t.Errorf("alice's record lacks %s %s", img.Name, m.Platform)
					}
				}
			}
		})
	}
}

// checkCommitSignature verifies the commit's gpgsig header over the
// commit without it, as git verify-commit does.
func checkCommitSignature(t *testing.T, repo *gitstore.Repo, commit plumbing.Hash, who string) {
	t.Helper()
	info, err := repo.ReadCommit(commit)
	if err != nil {
		t.Fatal(err)
	}
	if info.Signature == nil {
		t.Fatalf("commit %s is not signed", commit)
	}
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(testkeys.Public(who)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openpgp.CheckArmoredDetachedSignature(ring, bytes.NewReader(info.Payload), bytes.NewReader(info.Signature), nil); err != nil {
		t.Errorf("commit %s: signature does not verify with %s's key: %v", commit, who, err)
	}
}

func TestSignCorruptAndForeignFilesKeepTheirNumbers(t *testing.T) {
	t.Parallel()
	repo := gitstore.NewMemory(true)
	signInitRepo(t, repo, 1, "alice", "bob", "carol")
	imgs := signSampleImages(t, sample.Spec{Name: "core-hello", Tag: "1.0"}, sample.Spec{Name: "core-other", Tag: "1.0"})
	hello := "stagex/core-hello@sha256=" + strings.TrimPrefix(imgs[0].Manifests[0].Digest, "sha256:")
	other := "stagex/core-other@sha256=" + strings.TrimPrefix(imgs[1].Manifests[0].Digest, "sha256:")

	// core-hello: signature-1 is garbage, signature-2 carol's, signature-3
	// missing, signature-4 an armored file; a stray README too.
	carol := signMust(t, repo, signOpts(t, "carol", imgs[:1]))
	carolBlob := readHead(t, repo, carol.Signed[0].Path) // at signature-1, overwritten below
	signCommitDirect(t, repo, "damage",
		gitstore.Change{Path: hello + "/signature-1", Data: []byte("\x00garbage, not OpenPGP")},
		gitstore.Change{Path: hello + "/signature-2", Data: carolBlob},
		gitstore.Change{Path: hello + "/signature-4", Data: []byte("-----BEGIN PGP MESSAGE-----\n\n-----END PGP MESSAGE-----\n")},
		gitstore.Change{Path: hello + "/README", Data: []byte("not a signature")},
		// core-other: alice's own signature claiming another digest.
		gitstore.Change{Path: other + "/signature-1", Data: mustSignPayload(t, "alice", sigstore.Payload{Reference: "stagex/core-other:1.0", Digest: imgs[0].Manifests[0].Digest})},
	)

	res := signMust(t, repo, signOpts(t, "alice", imgs))
	want := []string{hello + "/signature-3", other + "/signature-2"}
	if diff := cmp.Diff(want, paths(res.Signed)); diff != "" {
		t.Errorf("new signatures (-want +got):\n%s", diff)
	}
	for _, p := range want {
		if judgeAt(t, repo, p) != testkeys.Fingerprint("alice") {
			t.Errorf("%s is not alice's", p)
		}
	}
	if got := readHead(t, repo, hello+"/signature-1"); string(got) != "\x00garbage, not OpenPGP" {
		t.Error("the corrupt file was rewritten")
	}
}

func TestSignWarnsWhenTheDigestWasSignedUnderAnotherTag(t *testing.T) {
	t.Parallel()
	repo := gitstore.NewMemory(true)
	signInitRepo(t, repo, 1, "alice")
	imgs := signSampleImages(t, sample.Spec{Name: "core-hello", Tag: "1.0"})
	signMust(t, repo, signOpts(t, "alice", imgs))

	// The same bytes released again as 1.1: the key signed this digest
	// already, so there is nothing to add, but the new identity lacks a
	// signature and the maintainer must hear it.
	imgs[0].Tag = "1.1"
	res := signMust(t, repo, signOpts(t, "alice", imgs))
	if len(res.Signed) != 0 || len(res.Skipped) != 1 {
		t.Fatalf("%d signed, %d skipped; want 0 and 1", len(res.Signed), len(res.Skipped))
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "as stagex/core-hello:1.0, not as stagex/core-hello:1.1") {
		t.Errorf("warnings %q", res.Warnings)
	}
	if res.Commit == "" {
		t.Error("the build record of the 1.1 build was not committed")
	}
}

func TestSignProgressCountsEverySignature(t *testing.T) {
	t.Parallel()
	repo := gitstore.NewMemory(false)
	signInitRepo(t, repo, 1, "bob")
	imgs := signSampleImages(t, sample.Many(25, "p")...)
	var (
		mu    sync.Mutex
		seen  []int
		total = -1
	)
	opts := signOpts(t, "bob", imgs)
	opts.Progress = func(done, n int) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, done)
		if total != -1 && total != n {
			t.Errorf("total changed from %d to %d", total, n)
		}
		total = n
	}
	signMust(t, repo, opts)
	want := make([]int, 25)
	for i := range want {
		want[i] = i + 1
	}
	if diff := cmp.Diff(want, seen); diff != "" || total != 25 {
		t.Errorf("progress calls (-want +got), total %d:\n%s", total, diff)
	}
}

func readHead(t *testing.T, repo *gitstore.Repo, p string) []byte {
	t.Helper()
	st, err := policy.LoadHead(repo)
	if err != nil {
		t.Fatal(err)
	}
	data, err := st.Snap.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustSignPayload(t *testing.T, who string, p sigstore.Payload) []byte {
	t.Helper()
	data, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	blob, err := signerFor(t, who).SignMessage(data)
	if err != nil {
		t.Fatal(err)
	}
	return blob
}

// TestSignLeavesUnrelatedWorkAlone: sign looks only at the paths it writes,
// so uncommitted work elsewhere in the checkout neither stops it nor is
// touched, and the files it wrote are checked out and in the index.
func TestSignLeavesUnrelatedWorkAlone(t *testing.T) {
	t.Parallel()
	repo := signDiskRepo(t)
	signInitRepo(t, repo, 1, "alice")
	signCommitDirect(t, repo, "notes", gitstore.Change{Path: "NOTES", Data: []byte("committed\n")})
	wt := repo.WorkDir()
	mustWrite := func(p, data string) {
		t.Helper()
		full := filepath.Join(wt, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite("NOTES", "edited, not committed\n")
	mustWrite("scratch/todo.txt", "untracked\n")
	mustWrite("stagex/core-other@sha256="+strings.Repeat("0", 64)+"/signature-1", "untracked junk\n")

	res := signMust(t, repo, signOpts(t, "alice", signSampleImages(t, sample.Spec{Name: "core-hello", Tag: "1.0"})))
	for p, want := range map[string]string{
		"NOTES":            "edited, not committed\n",
		"scratch/todo.txt": "untracked\n",
		"stagex/core-other@sha256=" + strings.Repeat("0", 64) + "/signature-1": "untracked junk\n",
	} {
		got, err := os.ReadFile(filepath.Join(wt, filepath.FromSlash(p)))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q untouched", p, got, err, want)
		}
	}
	for _, s := range res.Signed {
		got, err := os.ReadFile(filepath.Join(wt, filepath.FromSlash(s.Path)))
		if err != nil || !bytes.Equal(got, readHead(t, repo, s.Path)) {
			t.Errorf("%s is not checked out as committed: %v", s.Path, err)
		}
	}
	// The checkout is clean where sign wrote: a second run's check passes.
	if err := repo.CheckPaths(paths(res.Signed)); err != nil {
		t.Errorf("after sign: %v", err)
	}
}

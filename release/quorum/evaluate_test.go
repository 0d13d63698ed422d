package quorum

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// evalVariety commits files of every kind the cache must carry: good
// signatures by a primary key, a subkey and an expiring key, an outsider, a
// legacy payload, garbage, a gap, a stray file and build records. It
// returns the clock to evaluate at and the number of files whose blob a
// cold run verifies.
func evalVariety(t *testing.T, r *fxRepo, k *fxKey, kc time.Time) (time.Time, int) {
	t.Helper()
	const rel = "2026.11.0"
	a, b := fxDigest("a"), fxDigest("b")
	legacy, err := signerFor(t, "bob").SignMessage([]byte(`[{"critical":{"identity":{"docker-reference":"stagex/core-b:2.0"},"image":{"docker-manifest-digest":"` +
		strings.TrimPrefix(b, "sha256:") + `"},"type":"pgp container image signature"},"optional":{}}]`))
	if err != nil {
		t.Fatal(err)
	}
	r.commit(kc.Add(time.Hour),
		r.record(rel, testkeys.Fingerprint("alice"), kc, record.Built{Name: "core-a", Tag: "1.0", Platform: "linux/amd64", Digest: a}),
		file(fxPath("core-a", a, 1), fxSign(t, signerFor(t, "alice"), "core-a", "1.0", a)),
		file(fxPath("core-a", a, 2), fxSign(t, signerFor(t, "dave"), "core-a", "1.0", a)),
		file(fxPath("core-a", a, 3), fxSign(t, k.signer, "core-a", "1.0", a)),
		file(fxPath("core-a", a, 4), fxSign(t, signerFor(t, "mallory"), "core-a", "1.0", a)),
		file(fxPath("core-b", b, 1), legacy),
		file(fxPath("core-b", b, 2), []byte("garbage\n")),
		file(fxPath("core-b", b, 4), fxSign(t, signerFor(t, "alice"), "core-b", "2.0", b)),
		file("stagex/README", []byte("not a signature\n")),
		file(policy.BuildsDir+"/"+rel+"/notes.txt", []byte("not a record\n")),
	)
	return kc.Add(72 * time.Hour), 7
}

// evalCmp compares evaluations: everything but the trust root object and
// the count of fresh verifications.
var evalCmp = cmp.Options{
	cmpopts.IgnoreUnexported(JudgedFile{}),
	cmpopts.IgnoreFields(Evaluation{}, "Keys", "Verified"),
}

func TestEvaluateCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	repo, err := gitstore.Init(dir, true, "main")
	if err != nil {
		t.Fatal(err)
	}
	kc := time.Now().Add(-time.Hour).Truncate(time.Second)
	k := newFxKey(t, "erin", kc, 48*time.Hour)
	r := newFxRepoOn(t, repo, 2, append(fxPublic("alice", "bob", "dave"), k.public(t))...)
	now, fresh := evalVariety(t, r, k, kc)
	ctx := context.Background()

	run := func(t *testing.T, repo *gitstore.Repo, keys *sigstore.Keyring) (*Evaluation, *VerifyCache) {
		t.Helper()
		st, err := policy.LoadHead(repo)
		if err != nil {
			t.Fatal(err)
		}
		if keys == nil {
			keys = st.Keys
		}
		cache := OpenVerifyCache(repo, keys)
		ev, err := Evaluate(ctx, st, EvaluateOptions{Keys: keys, Cache: cache, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if err := cache.Save(); err != nil {
			t.Fatal(err)
		}
		return ev, cache
	}

	cold, _ := run(t, repo, nil)
	if cold.Verified != fresh {
		t.Errorf("cold run verified %d signatures, want %d", cold.Verified, fresh)
	}
	var entered int
	for _, f := range cold.Files {
		if !f.Entered.IsZero() {
			entered++
		}
	}
	if entered != 1 {
		t.Errorf("%d files have an entry time, want 1 (the expired key's)", entered)
	}

	// A second process: nothing is verified again, and nothing differs.
	reopened, err := gitstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	warm, _ := run(t, reopened, nil)
	if warm.Verified != 0 {
		t.Errorf("warm run verified %d signatures, want 0", warm.Verified)
	}
	if diff := cmp.Diff(cold, warm, evalCmp); diff != "" {
		t.Errorf("warm evaluation differs from cold (-cold +warm):\n%s", diff)
	}
	if diff := cmp.Diff(cold.Tally(Scope{}), warm.Tally(Scope{}), cmpopts.IgnoreFields(Report{}, "Verified")); diff != "" {
		t.Errorf("warm report differs (-cold +warm):\n%s", diff)
	}

	// One new signature: one verification.
	c := fxDigest("c")
	r.commit(kc.Add(2*time.Hour), file(fxPath("core-c", c, 1), fxSign(t, signerFor(t, "bob"), "core-c", "3.0", c)))
	incr, _ := run(t, reopened, nil)
	if incr.Verified != 1 {
		t.Errorf("after one new signature %d were verified, want 1", incr.Verified)
	}

	// Another keyring does not use this cache.
	narrow, err := sigstore.ReadKeyring(fxKeyring(t, fxPublic("alice", "bob")...))
	if err != nil {
		t.Fatal(err)
	}
	st, err := policy.LoadHead(reopened)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Evaluate(ctx, st, EvaluateOptions{Keys: narrow, Cache: OpenVerifyCache(reopened, st.Keys), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if other.Verified != fresh+1 {
		t.Errorf("another keyring reused the cache: %d verified, want %d", other.Verified, fresh+1)
	}

	// A damaged cache file is ignored and rebuilt.
	files, _ := filepath.Glob(filepath.Join(dir, "tally", "verify-*.cache"))
	if len(files) != 1 {
		t.Fatalf("cache files: %v", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(files[0], data, 0o644); err != nil {
		t.Fatal(err)
	}
	rebuilt, _ := run(t, reopened, nil)
	if rebuilt.Verified != fresh+1 {
		t.Errorf("a damaged cache was used: %d verified, want %d", rebuilt.Verified, fresh+1)
	}
	if diff := cmp.Diff(incr, rebuilt, evalCmp); diff != "" {
		t.Errorf("rebuilt evaluation differs (-before +after):\n%s", diff)
	}

	// A new identity prefix changes every verdict; the cached Verify
	// outcomes still serve.
	p := st.Policy
	p.IdentityPrefix = "quay.io/stagex"
	r.commit(kc.Add(3*time.Hour), file(policy.PolicyFile, p.Marshal()))
	moved, _ := run(t, reopened, nil)
	if moved.Verified != 0 {
		t.Errorf("a new identity prefix re-verified %d signatures", moved.Verified)
	}
	for _, f := range moved.Files {
		if f.Verdict.OK() {
			t.Errorf("%s is still judged good under another identity prefix", f.Path)
		}
	}
}

func TestEvaluateScopes(t *testing.T) {
	t.Parallel()
	const rel, old = "2026.11.0", "2026.10.0"
	fpr := testkeys.Fingerprint
	a1, a0, b, orphan, c := fxDigest("a1"), fxDigest("a0"), fxDigest("b"), fxDigest("orphan"), fxDigest("c")
	r := newFxRepo(t, 2, fxPublic("alice", "bob")...)
	at := fxEpoch.Add(time.Hour)
	sign := func(who, name, tag, d string, n int) gitstoreChange {
		return file(fxPath(name, d, n), fxSign(t, signerFor(t, who), name, tag, d))
	}
	bA := func(d string) record.Built {
		return record.Built{Name: "core-a", Tag: "1.0", Platform: "linux/amd64", Digest: d}
	}
	bB := record.Built{Name: "core-b", Tag: "2.0", Platform: "linux/amd64", Digest: b}
	r.commit(at,
		// release 2026.10.0 built core-a:1.0 as a0; release 2026.11.0 rebuilt
		// it as a1 (same tag, other toolchain) and added core-b.
		r.record(old, fpr("alice"), at, bA(a0)), r.record(old, fpr("bob"), at, bA(a0)),
		r.record(rel, fpr("alice"), at, bA(a1), bB), r.record(rel, fpr("bob"), at, bA(a1), bB),
		sign("alice", "core-a", "1.0", a0, 1), sign("bob", "core-a", "1.0", a0, 2),
		sign("alice", "core-a", "1.0", a1, 1), sign("bob", "core-a", "1.0", a1, 2),
		sign("alice", "core-b", "2.0", b, 1), sign("bob", "core-b", "2.0", b, 2),
		// a leftover of a rebuild: signed, recorded by nobody any more
		sign("alice", "core-a", "1.0", orphan, 1),
		// an image no build record knows, signed by both
		sign("alice", "core-c", "3.0", c, 1), sign("bob", "core-c", "3.0", c, 2),
		// an invalid (truncated) file in core-c and a stray file
		file(fxPath("core-c", c, 3), fxSign(t, signerFor(t, "bob"), "core-c", "3.0", c)[:40]),
		file("stagex/core-c/notes", []byte("stray")),
	)
	now := time.Now()
	type img struct {
		ref, rel           string
		quorum, superseded bool
	}
	tests := []struct {
		name     string
		scope    Scope
		images   []img
		problems []string
		met      bool
	}{
		{
			name:  "whole repository",
			scope: Scope{},
			images: []img{
				{"stagex/core-a:1.0", "", false, true},
				{"stagex/core-a:1.0", old, true, false},
				{"stagex/core-a:1.0", rel, true, false},
				{"stagex/core-b:2.0", rel, true, false},
				{"stagex/core-c:3.0", "", true, false},
			},
			problems: []string{"malformed-path stagex/core-c/notes", "truncated " + fxPath("core-c", c, 3)},
			met:      true,
		},
		{
			name:  "one release",
			scope: Scope{Release: rel},
			images: []img{
				{"stagex/core-a:1.0", rel, true, false},
				{"stagex/core-b:2.0", rel, true, false},
			},
			met: true,
		},
		{
			name:  "one image in every release",
			scope: Scope{Names: []string{"core-a"}},
			images: []img{
				{"stagex/core-a:1.0", "", false, true},
				{"stagex/core-a:1.0", old, true, false},
				{"stagex/core-a:1.0", rel, true, false},
			},
			met: true,
		},
		{
			name:  "an image without build records",
			scope: Scope{Names: []string{"core-c"}},
			images: []img{
				{"stagex/core-c:3.0", "", true, false},
			},
			problems: []string{"truncated " + fxPath("core-c", c, 3)},
			met:      true,
		},
		{
			name:  "an image of a release that does not have it",
			scope: Scope{Release: rel, Names: []string{"core-c"}},
			met:   false,
		},
		{
			name:  "a release nobody recorded",
			scope: Scope{Release: "2099.1.0"},
			met:   false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, scoped := range []bool{false, true} {
				opts := EvaluateOptions{}
				if scoped {
					opts.Scope = tt.scope
				}
				rep := r.mustEvaluate(now, opts).Tally(tt.scope)
				var got []img
				for _, i := range rep.Images {
					got = append(got, img{i.Reference, i.Release, i.Quorum, i.Superseded})
				}
				if diff := cmp.Diff(tt.images, got, cmp.AllowUnexported(img{})); diff != "" {
					t.Errorf("evaluated scoped=%v: images (-want +got):\n%s", scoped, diff)
				}
				if diff := cmp.Diff(tt.problems, fxProblems(rep)); diff != "" {
					t.Errorf("evaluated scoped=%v: problems (-want +got):\n%s", scoped, diff)
				}
				if rep.QuorumMet() != tt.met {
					t.Errorf("evaluated scoped=%v: QuorumMet = %v", scoped, rep.QuorumMet())
				}
			}
		})
	}

	// The release scope judges only that release's directories.
	ev := r.mustEvaluate(now, EvaluateOptions{Scope: Scope{Release: rel}})
	for _, f := range ev.Files {
		if !strings.Contains(f.Path, strings.TrimPrefix(a1, "sha256:")) && !strings.Contains(f.Path, strings.TrimPrefix(b, "sha256:")) {
			t.Errorf("release scope judged %s", f.Path)
		}
	}
}

// TestEvaluateAnyCommit: a bare repository, an older commit, and a
// namespace that does not exist yet all evaluate without a checkout.
func TestEvaluateAnyCommit(t *testing.T) {
	t.Parallel()
	repo, err := gitstore.Init(t.TempDir(), true, "main")
	if err != nil {
		t.Fatal(err)
	}
	r := newFxRepoOn(t, repo, 1, fxPublic("alice")...)
	empty := r.tip
	d := fxDigest("a")
	r.commit(fxEpoch.Add(time.Hour), file(fxPath("core-a", d, 1), fxSign(t, signerFor(t, "alice"), "core-a", "1.0", d)))

	ev := r.mustEvaluate(time.Now(), EvaluateOptions{})
	if len(ev.Files) != 1 || !ev.Files[0].Counts || !ev.Tally(Scope{}).QuorumMet() {
		t.Errorf("bare repository: %+v", ev.Files)
	}
	st, err := policy.LoadCommit(repo, empty)
	if err != nil {
		t.Fatal(err)
	}
	past, err := Evaluate(context.Background(), st, EvaluateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep := past.Tally(Scope{})
	if len(past.Files) != 0 || len(rep.Images) != 0 || rep.QuorumMet() || rep.Invalid() {
		t.Errorf("commit before any signature: files %v, report %+v", past.Files, rep)
	}
}

// TestEvaluateStrayFiles: whatever sits in the lookaside tree is judged; a
// path that is not a signature location is invalid, never skipped.
func TestEvaluateStrayFiles(t *testing.T) {
	t.Parallel()
	d := fxDigest("a")
	dir := strings.TrimSuffix(fxPath("core-a", d, 1), "/signature-1")
	r := newFxRepo(t, 1, fxPublic("alice")...)
	good := fxSign(t, signerFor(t, "alice"), "core-a", "1.0", d)
	r.commit(fxEpoch.Add(time.Hour),
		file(dir+"/signature-1", good),
		file(dir+"/signature-01", good),
		file(dir+"/sub/signature-2", good),
		file("stagex/core-b@sha256=abc/signature-1", good),
		file("stagex/Core-A@sha256="+strings.TrimPrefix(d, "sha256:")+"/signature-1", good),
		file("stagex/top-level-file", good),
	)
	ev := r.mustEvaluate(time.Now(), EvaluateOptions{})
	var bad []string
	for _, f := range ev.Files {
		if f.Verdict.Problem == sigstore.KindMalformedPath {
			bad = append(bad, strings.TrimPrefix(f.Path, "stagex/"))
			if f.Counts || f.Name != "" {
				t.Errorf("%s: counts %v, name %q", f.Path, f.Counts, f.Name)
			}
		}
	}
	want := []string{
		"Core-A@sha256=" + strings.TrimPrefix(d, "sha256:") + "/signature-1",
		"core-a@sha256=" + strings.TrimPrefix(d, "sha256:") + "/signature-01",
		"core-a@sha256=" + strings.TrimPrefix(d, "sha256:") + "/sub/signature-2",
		"core-b@sha256=abc/signature-1",
		"top-level-file",
	}
	slices.Sort(bad)
	if diff := cmp.Diff(want, bad); diff != "" {
		t.Errorf("malformed paths (-want +got):\n%s", diff)
	}
	rep := ev.Tally(Scope{})
	if !rep.Invalid() || !rep.QuorumMet() {
		t.Errorf("invalid %v, met %v: want both", rep.Invalid(), rep.QuorumMet())
	}
}

// TestPruneCacheFiles: a git directory keeps the most recently written cache
// files only; a keyring that changed leaves no file behind for good.
func TestPruneCacheFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour)
	for i := range maxCacheFiles + 2 {
		f := filepath.Join(dir, fmt.Sprintf("verify-%d.cache", i))
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		when := base.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(f, when, when); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "other"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pruneCacheFiles(dir)
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	var names []string
	for _, f := range left {
		names = append(names, filepath.Base(f))
	}
	want := []string{"other", "verify-2.cache", "verify-3.cache", "verify-4.cache", "verify-5.cache"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("files left (-want +got):\n%s", diff)
	}
}

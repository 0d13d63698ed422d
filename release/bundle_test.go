package release

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/quorum"
	"github.com/tally-sig/tally/sigstore"
)

func mustBundle(t testing.TB, repo *gitstore.Repo, rel string) (string, *BundleResult) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "r.bundle")
	res, err := CreateBundle(context.Background(), repo, file, BundleOptions{Release: rel, Now: relClock})
	if err != nil {
		t.Fatalf("bundle %s: %v", rel, err)
	}
	return file, res
}

func mustOpenBundle(t testing.TB, file string) *Bundle {
	t.Helper()
	b, err := OpenBundle(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerifyBundleSameJudgement: verifying the bundle gives exactly the
// result of verifying the repository it came from, release by release,
// with the repository's trust root and with a consumer's own.
func TestVerifyBundleSameJudgement(t *testing.T) {
	t.Parallel()
	f := relPublishFixture(t, false)
	file, res := mustBundle(t, f.repo, "r1")
	_, tip, _ := f.repo.Head()
	if res.Commit != tip.String() || res.Tagged != tip.String() || res.Branch != "main" || res.Size == 0 {
		t.Errorf("result %+v", res)
	}
	b := mustOpenBundle(t, file)
	if diff := cmp.Diff([]string{"r1"}, b.Releases); diff != "" {
		t.Errorf("releases (-want +got):\n%s", diff)
	}
	aliceOnly, err := sigstore.ReadKeyring(testkeys.Public("alice"))
	if err != nil {
		t.Fatal(err)
	}
	aliceCarol, err := sigstore.ReadKeyring(append(testkeys.Public("alice"), testkeys.Public("carol")...))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts VerifyOptions
		want Outcome
	}{
		{"release", VerifyOptions{}, OutcomeOK},
		{"named", VerifyOptions{CheckOptions: CheckOptions{Scope: quorum.Scope{Names: []string{"core-multi"}}}}, OutcomeOK},
		{"local build", VerifyOptions{Local: []buildout.Image{f.images["core-hello"], f.images["core-flat"]}}, OutcomeOK},
		{"own keyring, 1 of 1", VerifyOptions{CheckOptions: CheckOptions{Keys: aliceOnly, Threshold: 1}}, OutcomeOK},
		{"own keyring, 2 of alice and carol", VerifyOptions{CheckOptions: CheckOptions{Threshold: 2, Keys: aliceCarol}}, OutcomeNoQuorum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Now = relClock
			got, err := VerifyBundle(context.Background(), b, opts)
			if err != nil {
				t.Fatal(err)
			}
			opts.Scope.Release = "r1"
			want, err := Verify(context.Background(), f.repo, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got.Outcome != tc.want {
				t.Errorf("outcome %s, want %s", got.Outcome, tc.want)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("bundle and repository disagree (-repository +bundle):\n%s", diff)
			}
		})
	}
}

// TestVerifyBundleMismatch: a local build that differs from the release is
// exit 3 from a bundle too.
func TestVerifyBundleMismatch(t *testing.T) {
	t.Parallel()
	repo := gitstore.NewMemory(true)
	relReady(t, repo)
	relCut(t, repo, "alice", "r1")
	file, _ := mustBundle(t, repo, "r1")
	b := mustOpenBundle(t, file)
	other := relImage("core-hello", "1.0", "linux/amd64=b")
	res, err := VerifyBundle(context.Background(), b, VerifyOptions{Local: []buildout.Image{other}, CheckOptions: CheckOptions{Now: relClock}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeMismatch {
		t.Fatalf("outcome %s, want mismatch; comparisons %+v", res.Outcome, res.Comparisons)
	}
}

func TestBundleRefusals(t *testing.T) {
	t.Parallel()
	repo := gitstore.NewMemory(true)
	relReady(t, repo)
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := CreateBundle(ctx, repo, filepath.Join(dir, "x"), BundleOptions{Release: "r1", Now: relClock}); !errors.Is(err, ErrNotCut) {
		t.Errorf("bundle of an uncut release: err = %v, want ErrNotCut", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("a refused bundle left a file")
	}
	relCut(t, repo, "alice", "r1")
	file, _ := mustBundle(t, repo, "r1")
	b := mustOpenBundle(t, file)
	if _, err := VerifyBundle(ctx, b, VerifyOptions{CheckOptions: CheckOptions{Scope: quorum.Scope{Release: "r2"}}}); !errors.Is(err, ErrBundleRelease) {
		t.Errorf("a release the bundle does not hold: err = %v", err)
	}
	if _, err := VerifyBundle(ctx, b, VerifyOptions{Registry: []string{"docker://example.org/stagex/core-hello:1.0"}}); !errors.Is(err, ErrBadBundleOptions) {
		t.Errorf("registry images with a bundle: err = %v", err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{data[:len(data)-1], data[:len(data)/2], append(data[:len(data):len(data)], 'x'), nil} {
		p := filepath.Join(t.TempDir(), "bad.bundle")
		if err := os.WriteFile(p, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenBundle(p); !errors.Is(err, ErrBadBundle) {
			t.Errorf("a %d-byte damaged bundle: err = %v, want ErrBadBundle", len(bad), err)
		}
	}
	if _, err := OpenBundle(filepath.Join(dir, "missing")); err == nil || errors.Is(err, ErrBadBundle) {
		t.Errorf("a missing file: err = %v", err)
	}
}

// TestExtractBundle: the lookaside files of the bundle's tip, byte for byte,
// and nothing else; a directory that is not empty is refused untouched.
func TestExtractBundle(t *testing.T) {
	t.Parallel()
	repo := gitstore.NewMemory(true)
	relReady(t, repo)
	relCut(t, repo, "alice", "r1")
	file, _ := mustBundle(t, repo, "r1")
	b := mustOpenBundle(t, file)
	dir := filepath.Join(t.TempDir(), "sigs")
	res, err := ExtractBundle(b, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := policy.LoadHead(repo)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	if err := st.Snap.Walk("", func(p string, e gitstore.Entry) error {
		if !e.IsDir() && policy.ClassifyPath(st.Policy, p).Class == policy.ClassLookaside {
			data, err := st.Snap.ReadFile(p)
			want[p] = data
			return err
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	if err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		got[filepath.ToSlash(rel)] = data
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(want) != 6 || res.Files != len(want) || res.Release != "r1" || res.Lookaside != "file://"+dir {
		t.Errorf("result %+v, %d lookaside files in the repository", res, len(want))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("extracted files (-repository +extracted):\n%s", diff)
	}
	if _, err := ExtractBundle(b, "", dir); !errors.Is(err, ErrExtractTarget) {
		t.Errorf("extracting into a full directory: err = %v", err)
	}
	if _, err := ExtractBundle(b, "r9", filepath.Join(t.TempDir(), "x")); !errors.Is(err, ErrBundleRelease) {
		t.Errorf("a release the bundle does not hold: err = %v", err)
	}
}

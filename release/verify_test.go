package release

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/sample"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/quorum"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/release/registry"
)

// vfRepo is a signatures repository in memory (threshold 2 of alice, bob,
// carol) where each of signers signed the build in out for release 1.0.
func vfRepo(t *testing.T, out string, signers ...string) *gitstore.Repo {
	t.Helper()
	repo := gitstore.NewMemory(false)
	var keys []PublicKey
	for _, n := range []string{"alice", "bob", "carol"} {
		keys = append(keys, PublicKey{Source: n, Data: testkeys.Public(n)})
	}
	ctx := context.Background()
	if _, err := Init(ctx, repo, InitOptions{Namespace: "stagex", Threshold: 2, Keys: keys}); err != nil {
		t.Fatal(err)
	}
	images, err := buildout.Read(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range signers {
		if _, err := Sign(ctx, repo, SignOptions{Release: "1.0", Images: images, Signer: signerFor(t, who),
			Run: record.Run{Source: "unknown", Dirty: "unknown", Platform: "linux/amd64", CPUVendor: "unknown", CPUModel: "unknown", Tally: "test"}}); err != nil {
			t.Fatalf("%s signs: %v", who, err)
		}
	}
	return repo
}

// vfWrite writes sample layouts and returns them as buildout reads them.
func vfWrite(t *testing.T, dir string, specs ...sample.Spec) []buildout.Image {
	t.Helper()
	if _, err := sample.Write(dir, specs...); err != nil {
		t.Fatal(err)
	}
	images, err := buildout.Read(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return images
}

func vfStates(res *VerifyResult) map[string]string {
	out := map[string]string{}
	for _, c := range res.Comparisons {
		out[c.Source+" "+c.Name+":"+c.Tag+" "+c.Platform] = c.State
	}
	return out
}

func TestVerifyLocal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	specs := []sample.Spec{{Name: "core-hello", Tag: "1.0"}, {Name: "core-multi", Tag: "2.0", Platforms: []string{"linux/amd64", "linux/arm64"}}}
	out := vfWrite(t, filepath.Join(dir, "out"), specs...)
	repo := vfRepo(t, filepath.Join(dir, "out"), "alice", "bob")
	diverged := vfWrite(t, filepath.Join(dir, "other"), sample.Spec{Name: "core-multi", Tag: "2.0", Seed: "cloud", Platforms: []string{"linux/amd64", "linux/arm64"}})
	unsigned := vfWrite(t, filepath.Join(dir, "new"), sample.Spec{Name: "core-new", Tag: "0.1"})
	ctx := context.Background()

	tests := []struct {
		name    string
		opts    VerifyOptions
		outcome Outcome
		states  map[string]string
		images  int
	}{
		{"my build matches", VerifyOptions{Local: out}, OutcomeOK,
			map[string]string{"local core-hello:1.0 linux/amd64": CompareMatch, "local core-multi:2.0 linux/amd64": CompareMatch, "local core-multi:2.0 linux/arm64": CompareMatch}, 2},
		{"my build differs", VerifyOptions{Local: diverged}, OutcomeMismatch,
			map[string]string{"local core-multi:2.0 linux/amd64": CompareDiffers, "local core-multi:2.0 linux/arm64": CompareDiffers}, 1},
		{"nothing met quorum to compare with", VerifyOptions{Local: unsigned}, OutcomeNoQuorum,
			map[string]string{"local core-new:0.1 linux/amd64": CompareNoQuorum}, 0},
		{"names keep their scope", VerifyOptions{CheckOptions: CheckOptions{Scope: quorum.Scope{Names: []string{"core-hello"}}}, Local: out[:1]}, OutcomeOK,
			map[string]string{"local core-hello:1.0 linux/amd64": CompareMatch}, 1},
		{"a threshold nobody met", VerifyOptions{CheckOptions: CheckOptions{Threshold: 3}, Local: out}, OutcomeNoQuorum,
			map[string]string{"local core-hello:1.0 linux/amd64": CompareNoQuorum, "local core-multi:2.0 linux/amd64": CompareNoQuorum, "local core-multi:2.0 linux/arm64": CompareNoQuorum}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Verify(ctx, repo, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tt.outcome {
				t.Errorf("outcome %s, want %s", res.Outcome, tt.outcome)
			}
			if diff := cmp.Diff(tt.states, vfStates(res)); diff != "" {
				t.Errorf("comparisons (-want +got):\n%s", diff)
			}
			if len(res.Images) != tt.images {
				t.Errorf("%d images in scope, want %d: %+v", len(res.Images), tt.images, res.Images)
			}
			for _, c := range res.Comparisons {
				if c.State == CompareDiffers && (len(c.Quorum) != 1 || c.Quorum[0] == c.Digest) {
					t.Errorf("a differing digest names what met quorum as %v", c.Quorum)
				}
			}
		})
	}
}

// TestOutcomeOrder: invalid wins over mismatch, which wins over no quorum.
func TestOutcomeOrder(t *testing.T) {
	t.Parallel()
	invalid := []quorum.Problem{{Severity: "invalid"}}
	met := []quorum.ImageStatus{{Quorum: true}}
	unmet := []quorum.ImageStatus{{Quorum: false}}
	differs := []Comparison{{State: CompareDiffers}}
	tests := []struct {
		name string
		res  VerifyResult
		want Outcome
	}{
		{"all good", VerifyResult{Report: &quorum.Report{Images: met}}, OutcomeOK},
		{"no images", VerifyResult{Report: &quorum.Report{}}, OutcomeNoQuorum},
		{"a warning is no failure", VerifyResult{Report: &quorum.Report{Images: met, Problems: []quorum.Problem{{Severity: "warning"}}}}, OutcomeOK},
		{"divergent", VerifyResult{Report: &quorum.Report{Images: []quorum.ImageStatus{{Quorum: true, Divergent: true}}}}, OutcomeNoQuorum},
		{"superseded images do not decide", VerifyResult{Report: &quorum.Report{Images: append([]quorum.ImageStatus{{Superseded: true}}, met...)}}, OutcomeOK},
		{"nothing to compare with", VerifyResult{Report: &quorum.Report{Images: met}, Comparisons: []Comparison{{State: CompareNoQuorum}}}, OutcomeNoQuorum},
		{"mismatch beats no quorum", VerifyResult{Report: &quorum.Report{Images: unmet}, Comparisons: differs}, OutcomeMismatch},
		{"invalid beats no quorum", VerifyResult{Report: &quorum.Report{Images: unmet, Problems: invalid}}, OutcomeInvalid},
		{"invalid beats mismatch", VerifyResult{Report: &quorum.Report{Images: met, Problems: invalid}, Comparisons: differs}, OutcomeInvalid},
	}
	for _, tt := range tests {
		if got := tt.res.outcome(); got != tt.want {
			t.Errorf("%s: outcome %s, want %s", tt.name, got, tt.want)
		}
	}
}

// vfPush pushes the layout dir to ref with manifest bytes unchanged.
func vfPush(t *testing.T, dir, ref string) {
	t.Helper()
	if err := sample.Push(dir, ref); err != nil {
		t.Fatal(err)
	}
}

// TestInteropVerifyRegistry checks what a real docker-registry serves:
// nested, multi-platform and flat images, by tag and by digest; a tag
// moved to another build; a missing image; a registry that is down.
func TestInteropVerifyRegistry(t *testing.T) {
	reg := interop.StartRegistry(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	images := vfWrite(t, out, sample.Spec{Name: "core-hello", Tag: "1.0"},
		sample.Spec{Name: "core-multi", Tag: "2.0", Platforms: []string{"linux/amd64", "linux/arm64/v8"}},
		sample.Spec{Name: "core-flat", Tag: "3.0", Flat: true, Platforms: []string{"linux/arm64"}})
	vfWrite(t, filepath.Join(dir, "other"), sample.Spec{Name: "core-multi", Tag: "2.0", Seed: "cloud", Platforms: []string{"linux/amd64", "linux/arm64/v8"}})
	repo := vfRepo(t, out, "alice", "bob")
	for _, img := range images {
		vfPush(t, img.Dir, reg.Addr+"/stagex/"+img.Name+":"+img.Tag)
	}
	ctx := context.Background()
	verify := func(refs ...string) (*VerifyResult, error) {
		return Verify(ctx, repo, VerifyOptions{Registry: refs})
	}
	docker := func(s string) string { return "docker://" + reg.Addr + "/stagex/" + s }

	res, err := verify(docker("core-hello:1.0"), docker("core-multi:2.0"), docker("core-flat:3.0"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"registry core-hello:1.0 linux/amd64":    CompareMatch,
		"registry core-multi:2.0 linux/amd64":    CompareMatch,
		"registry core-multi:2.0 linux/arm64/v8": CompareMatch,
		"registry core-flat:3.0 linux/arm64":     CompareMatch,
	}
	if diff := cmp.Diff(want, vfStates(res)); diff != "" || res.Outcome != OutcomeOK {
		t.Errorf("outcome %s; comparisons (-want +got):\n%s", res.Outcome, diff)
	}
	var helloDigest string
	for _, c := range res.Comparisons {
		if c.Name == "core-hello" {
			helloDigest = c.Digest
		}
		if !builtAs(images, c.Name, c.Platform, c.Digest) {
			t.Errorf("the registry served %s %s %s, not a digest of the build", c.Name, c.Platform, c.Digest)
		}
	}

	// By digest.
	res, err = verify(docker("core-hello@" + helloDigest))
	if err != nil || res.Outcome != OutcomeOK {
		t.Errorf("by digest: %v, %+v", err, res)
	}

	// The tag moved to a build the maintainers did not sign: exit 3's case.
	vfPush(t, filepath.Join(dir, "other", "core-multi"), reg.Addr+"/stagex/core-multi:2.0")
	res, err = verify(docker("core-multi:2.0"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeMismatch {
		t.Errorf("a moved tag: outcome %s, comparisons %+v", res.Outcome, res.Comparisons)
	}

	if _, err := verify(docker("core-nothere:1.0")); !errors.Is(err, registry.ErrImageNotFound) {
		t.Errorf("a missing image: %v", err)
	}
	reg.Stop()
	start := time.Now()
	if _, err := verify(docker("core-hello:1.0")); !errors.Is(err, registry.ErrRegistryUnavailable) {
		t.Errorf("a registry that is down: %v", err)
	}
	t.Logf("a registry that is down failed after %v", time.Since(start))
}

// builtAs reports whether the build has image name with digest for platform.
func builtAs(images []buildout.Image, name, platform, digest string) bool {
	for _, img := range images {
		if img.Name == name && slices.ContainsFunc(img.Manifests, func(m buildout.Manifest) bool {
			return m.Digest == digest && m.Platform == platform
		}) {
			return true
		}
	}
	return false
}

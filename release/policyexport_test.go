package release

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/sample"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/registry"
	"github.com/tally-sig/tally/sigstore"
)

// relPolicyDoc is policy.json as tally writes it, decoded.
type relPolicyDoc struct {
	Default    []policyRequirement                       `json:"default"`
	Transports map[string]map[string][]policyRequirement `json:"transports"`
}

func relExport(t testing.TB, repo *gitstore.Repo, opts PolicyOptions) (*ConsumerPolicy, relPolicyDoc) {
	t.Helper()
	opts.Now = relClock
	c, err := ExportPolicy(context.Background(), repo, opts)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	var doc relPolicyDoc
	dec := json.NewDecoder(strings.NewReader(string(c.PolicyJSON)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("policy.json: %v\n%s", err, c.PolicyJSON)
	}
	return c, doc
}

// relKeysOf returns the fingerprints of the keys in each signedBy.
func relKeysOf(t testing.TB, reqs []policyRequirement) [][]string {
	t.Helper()
	var out [][]string
	for _, r := range reqs {
		if r.Type != "signedBy" {
			out = append(out, []string{r.Type})
			continue
		}
		if r.KeyType != "GPGKeys" {
			t.Errorf("keyType %q", r.KeyType)
		}
		kr, err := sigstore.ReadKeyring(r.KeyData)
		if err != nil {
			t.Fatalf("keyData: %v", err)
		}
		var fprs []string
		for _, k := range kr.Keys() {
			fprs = append(fprs, k.Fingerprint)
		}
		out = append(out, fprs)
	}
	return out
}

func TestExportPolicy(t *testing.T) {
	t.Parallel()
	repo := gitstore.NewMemory(true)
	relInit(t, repo, 2, "alice", "bob", "carol")
	hello := relImage("core-hello", "1.0", "linux/amd64=a")
	multi := relImage("core-multi", "2.0", "linux/amd64=a", "linux/arm64=a")
	relSign(t, repo, "alice", "r1", hello, multi)
	relSign(t, repo, "bob", "r1", multi)
	relSign(t, repo, "carol", "r1", hello, multi)
	relCut(t, repo, "alice", "r1")
	fpr := func(n string) string { return testkeys.Fingerprint(n) }
	first2 := func(a, b, c string) []string {
		fs := []string{fpr(a), fpr(b), fpr(c)}
		for i := range fs {
			for j := i + 1; j < len(fs); j++ {
				if fs[j] < fs[i] {
					fs[i], fs[j] = fs[j], fs[i]
				}
			}
		}
		return fs[:2]
	}
	remap := &policyIdentity{Type: "remapIdentity", Prefix: "127.0.0.1:5000/stagex", SignedPrefix: "docker.io/stagex"}

	t.Run("quorum", func(t *testing.T) {
		t.Parallel()
		c, doc := relExport(t, repo, PolicyOptions{Registry: "127.0.0.1:5000/stagex", Lookaside: "https://sigs.example.org/", Release: "r1"})
		if c.Require != RequireQuorum || c.Identity != "remapIdentity" || c.Lookaside != "https://sigs.example.org" {
			t.Errorf("policy %+v", c)
		}
		if len(doc.Default) != 1 || doc.Default[0].Type != "reject" {
			t.Errorf("default %+v, want reject", doc.Default)
		}
		scopes := doc.Transports["docker"]
		// core-hello: alice and carol signed it; core-multi: all three, pin the first two.
		helloKeys := []string{fpr("alice"), fpr("carol")}
		if helloKeys[1] < helloKeys[0] {
			helloKeys[0], helloKeys[1] = helloKeys[1], helloKeys[0]
		}
		want := map[string][][]string{
			"127.0.0.1:5000/stagex":            {{"reject"}},
			"127.0.0.1:5000/stagex/core-hello": {{helloKeys[0]}, {helloKeys[1]}},
			"127.0.0.1:5000/stagex/core-multi": {{first2("alice", "bob", "carol")[0]}, {first2("alice", "bob", "carol")[1]}},
		}
		got := map[string][][]string{}
		for scope, reqs := range scopes {
			got[scope] = relKeysOf(t, reqs)
			for _, r := range reqs {
				if r.Type == "signedBy" && !cmp.Equal(r.SignedIdentity, remap) {
					t.Errorf("%s: signedIdentity %+v, want %+v", scope, r.SignedIdentity, remap)
				}
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("scopes (-want +got):\n%s", diff)
		}
		wantYAML := "docker:\n  \"127.0.0.1:5000/stagex\":\n    lookaside: \"https://sigs.example.org\"\n"
		if c.RegistriesFile != "stagex.yaml" || !strings.HasSuffix(string(c.RegistriesYAML), wantYAML) {
			t.Errorf("registries.d/%s:\n%s", c.RegistriesFile, c.RegistriesYAML)
		}
		notes := strings.Join(c.Notes, "\n")
		for _, say := range []string{"cannot say \"any 2 of these 3 maintainers\"", "remapIdentity", ":latest", "merge its transports.docker"} {
			if !strings.Contains(notes, say) {
				t.Errorf("notes do not say %q:\n%s", say, notes)
			}
		}
		dir := filepath.Join(t.TempDir(), "policy")
		if err := c.WriteDir(dir); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"policy.json", "registries.d/stagex.yaml"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("all", func(t *testing.T) {
		t.Parallel()
		c, doc := relExport(t, repo, PolicyOptions{Registry: "docker.io/stagex", Lookaside: "file:///srv/sigs", Require: RequireAll})
		if c.Identity != "matchRepoDigestOrExact" {
			t.Errorf("identity %s for the signed registry itself", c.Identity)
		}
		got := relKeysOf(t, doc.Transports["docker"]["docker.io/stagex"])
		if len(got) != 3 || len(doc.Transports["docker"]) != 1 {
			t.Errorf("all: %v", doc.Transports)
		}
		for _, r := range doc.Transports["docker"]["docker.io/stagex"] {
			if r.SignedIdentity != nil {
				t.Errorf("signedIdentity %+v, want the default", r.SignedIdentity)
			}
		}
		if !strings.Contains(strings.Join(c.Notes, "\n"), "stricter than the repository's quorum of 2 of 3") {
			t.Errorf("notes: %v", c.Notes)
		}
	})
	t.Run("any", func(t *testing.T) {
		t.Parallel()
		c, doc := relExport(t, repo, PolicyOptions{Registry: "stagex", Lookaside: "http://127.0.0.1:8080", Require: RequireAny})
		got := relKeysOf(t, doc.Transports["docker"]["docker.io/stagex"])
		if len(got) != 1 || len(got[0]) != 3 {
			t.Errorf("any: one signedBy with three keys, got %v", got)
		}
		if !strings.Contains(strings.Join(c.Notes, "\n"), "WEAKER") {
			t.Errorf("notes: %v", c.Notes)
		}
	})
	t.Run("another namespace path", func(t *testing.T) {
		t.Parallel()
		c, _ := relExport(t, repo, PolicyOptions{Registry: "ghcr.io/org/mirror", Lookaside: "https://x.example", Require: RequireAny})
		if !strings.Contains(strings.Join(c.Notes, "\n"), "under stagex/, not org/mirror/") {
			t.Errorf("notes: %v", c.Notes)
		}
	})
}

func TestExportPolicyRefusals(t *testing.T) {
	t.Parallel()
	repo := gitstore.NewMemory(true)
	relInit(t, repo, 2, "alice", "bob", "carol")
	// No two keys signed both platforms of core-multi.
	relSign(t, repo, "alice", "r1", relImage("core-multi", "2.0", "linux/amd64=a"))
	relSign(t, repo, "bob", "r1", relImage("core-multi", "2.0", "linux/amd64=a", "linux/arm64=a"))
	relSign(t, repo, "carol", "r1", relImage("core-multi", "2.0", "linux/arm64=a"))
	relSign(t, repo, "alice", "low", relImage("core-hello", "1.0", "linux/amd64=a"))
	good := PolicyOptions{Registry: "127.0.0.1:5000/stagex", Lookaside: "https://sigs.example.org", Release: "r1", Require: RequireAll}
	tests := []struct {
		name string
		edit func(o *PolicyOptions)
		want error
		say  string
	}{
		{"unknown requirement", func(o *PolicyOptions) { o.Require = "most" }, ErrBadPolicyOptions, "want quorum, all or any"},
		{"quorum without release", func(o *PolicyOptions) { o.Require, o.Release = RequireQuorum, "" }, ErrBadPolicyOptions, "name the release"},
		{"registry without namespace", func(o *PolicyOptions) { o.Registry = "127.0.0.1:5000" }, ErrBadPolicyOptions, "REGISTRY/NAMESPACE"},
		{"registry with tag", func(o *PolicyOptions) { o.Registry = "ghcr.io/stagex:1" }, ErrBadPolicyOptions, "REGISTRY/NAMESPACE"},
		{"ftp lookaside", func(o *PolicyOptions) { o.Lookaside = "ftp://x/y" }, ErrBadPolicyOptions, "https://"},
		{"relative file lookaside", func(o *PolicyOptions) { o.Lookaside = "file://sigs" }, ErrBadPolicyOptions, "file:///absolute"},
		{"lookaside with query", func(o *PolicyOptions) { o.Lookaside = "https://x/?a=1" }, ErrBadPolicyOptions, "no query"},
		{"not ready", func(o *PolicyOptions) { o.Release = "low" }, ErrNotReady, "core-hello"},
		{"inexpressible quorum", func(o *PolicyOptions) { o.Require = RequireQuorum }, ErrInexpressible, "only 1 key(s) signed all its platforms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := good
			tt.edit(&opts)
			opts.Now = relClock
			_, err := ExportPolicy(context.Background(), repo, opts)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.say) {
				t.Errorf("export: %v, want %v saying %q", err, tt.want, tt.say)
			}
		})
	}
}

// TestInteropPolicySkopeo: the whole consumer story with stock tools. A
// release is cut, published to a real docker-registry, and the exported
// policy makes stock skopeo accept every released image (both platforms of
// the multi-platform one) read from the repository's checkout as a file://
// lookaside, and refuse an unsigned image pushed to the same namespace, an
// unsigned tag of a released repository, and the :latest tag no signature
// names.
func TestInteropPolicySkopeo(t *testing.T) {
	t.Parallel()
	interop.Require(t, "git", "skopeo", "docker-registry")
	reg := interop.StartRegistry(t)
	base := reg.Addr + "/stagex"
	f := relPublishFixture(t, true)
	if _, err := f.publish(t, PublishOptions{To: base, SkipGit: true}); err != nil {
		t.Fatal(err)
	}
	// Unsigned images in the same namespace.
	evilOut := filepath.Join(f.dir, "evil")
	if _, err := sample.Write(evilOut, sample.Spec{Name: "core-evil", Tag: "1.0", Seed: "evil"}); err != nil {
		t.Fatal(err)
	}
	root, err := registry.LayoutRoot(filepath.Join(evilOut, "core-evil"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{base + "/core-evil:1.0", base + "/core-hello:evil"} {
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Push(r, root.Taggable); err != nil {
			t.Fatal(err)
		}
	}

	lookaside := "file://" + filepath.Join(f.dir, "sigs")
	copyWith := func(t *testing.T, pol *ConsumerPolicy, ref string, arch string) error {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "p")
		if err := pol.WriteDir(dir); err != nil {
			t.Fatal(err)
		}
		args := []string{"--policy", filepath.Join(dir, "policy.json"), "--registries.d", filepath.Join(dir, "registries.d")}
		if arch != "" {
			args = append(args, "--override-arch", arch)
		}
		args = append(args, "copy", "--src-tls-verify=false", "docker://"+ref, "dir:"+filepath.Join(t.TempDir(), "img"))
		_, err := interop.RunErr(t, "", nil, "skopeo", args...)
		return err
	}
	for _, require := range []string{RequireQuorum, RequireAll, RequireAny} {
		t.Run(require, func(t *testing.T) {
			pol, _ := relExport(t, f.repo, PolicyOptions{Registry: base, Lookaside: lookaside, Require: require, Release: "r1"})
			for _, ok := range []struct{ ref, arch string }{
				{base + "/core-hello:1.0", ""},
				{base + "/core-multi:2.0", "amd64"},
				{base + "/core-multi:2.0", "arm64"},
				{base + "/core-flat:3.0", "arm64"},
			} {
				if err := copyWith(t, pol, ok.ref, ok.arch); err != nil {
					t.Errorf("skopeo refused the released %s (%s): %v", ok.ref, ok.arch, err)
				}
			}
			for _, bad := range []string{base + "/core-evil:1.0", base + "/core-hello:evil", base + "/core-multi:latest"} {
				err := copyWith(t, pol, bad, "")
				if err == nil {
					t.Errorf("skopeo accepted %s", bad)
					continue
				}
				if msg := err.Error(); !strings.Contains(msg, "ignature") && !strings.Contains(msg, "rejected") {
					t.Errorf("%s refused for another reason than the policy: %v", bad, err)
				}
			}
		})
	}
}

package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/sample"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/registry"
)

// relPub is a cut release r1 of three sample images that alice and bob
// (2 of 2) signed: core-hello (one platform, BuildKit's nested index),
// core-multi (amd64 and arm64, nested) and core-flat (amd64 and arm64, a
// flat layout), with the build output they signed.
type relPub struct {
	dir    string
	repo   *gitstore.Repo
	out    string
	images map[string]buildout.Image
}

var relPubSpecs = []sample.Spec{
	{Name: "core-hello", Tag: "1.0"},
	{Name: "core-multi", Tag: "2.0", Platforms: []string{"linux/amd64", "linux/arm64"}},
	{Name: "core-flat", Tag: "3.0", Platforms: []string{"linux/amd64", "linux/arm64"}, Flat: true},
}

func relPublishFixture(t testing.TB, disk bool) *relPub {
	t.Helper()
	f := &relPub{dir: t.TempDir(), images: map[string]buildout.Image{}}
	f.out = filepath.Join(f.dir, "out")
	if _, err := sample.Write(f.out, relPubSpecs...); err != nil {
		t.Fatal(err)
	}
	images, err := buildout.Read(f.out, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range images {
		f.images[img.Name] = img
	}
	if disk {
		if f.repo, err = gitstore.Init(filepath.Join(f.dir, "sigs"), false, "main"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.repo.Close() })
	} else {
		f.repo = gitstore.NewMemory(true)
	}
	relInit(t, f.repo, 2, "alice", "bob")
	relSign(t, f.repo, "alice", "r1", images...)
	relSign(t, f.repo, "bob", "r1", images...)
	relCut(t, f.repo, "alice", "r1")
	return f
}

// topDigest is the digest index.json of a sample layout lists first.
func (f *relPub) topDigest(t testing.TB, name string) string {
	t.Helper()
	ii, err := layout.ImageIndexFromPath(filepath.Join(f.out, name))
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return im.Manifests[0].Digest.String()
}

func (f *relPub) publish(t testing.TB, opts PublishOptions) (*PublishResult, error) {
	t.Helper()
	if opts.Release == "" {
		opts.Release = "r1"
	}
	if opts.OutDir == "" {
		opts.OutDir = f.out
	}
	opts.Now = relClock
	return Publish(context.Background(), f.repo, opts)
}

// relRegistry is go-containerregistry's in-memory registry behind a
// transport that counts what clients do.
type relRegistry struct {
	host string
	mu   sync.Mutex
	reqs map[string]int // method -> count
}

func newRelRegistry(t testing.TB) *relRegistry {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return &relRegistry{host: strings.TrimPrefix(srv.URL, "http://"), reqs: map[string]int{}}
}

func (r *relRegistry) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs[req.Method]++
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// writes counts the requests that change the registry.
func (r *relRegistry) writes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs[http.MethodPut] + r.reqs[http.MethodPost] + r.reqs[http.MethodPatch] + r.reqs[http.MethodDelete]
}

func (r *relRegistry) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.reqs {
		n += c
	}
	return n
}

// checkServed checks that every tag of every image is served with the
// layout's own root digest and that every released per-platform manifest
// is there; it returns the root digests.
func (f *relPub) checkServed(t *testing.T, base string, opts ...remote.Option) map[string]string {
	t.Helper()
	roots := map[string]string{}
	for _, spec := range relPubSpecs {
		img := f.images[spec.Name]
		repo, err := name.NewRepository(base + "/" + spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		var root string
		for _, tag := range []string{spec.Tag, "sxr1", "latest"} {
			d, err := remote.Head(repo.Tag(tag), opts...)
			if err != nil {
				t.Fatalf("%s:%s: %v", repo, tag, err)
			}
			if root == "" {
				root = d.Digest.String()
			}
			if d.Digest.String() != root || !d.MediaType.IsIndex() {
				t.Errorf("%s:%s is %s %s, want the index %s", repo, tag, d.MediaType, d.Digest, root)
			}
		}
		roots[spec.Name] = root
		if !spec.Flat && root != f.topDigest(t, spec.Name) {
			t.Errorf("%s: published %s, want the layout's own index %s", spec.Name, root, f.topDigest(t, spec.Name))
		}
		idx, err := remote.Index(repo.Tag(spec.Tag), opts...)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Index(idx); err != nil {
			t.Errorf("%s: %v", spec.Name, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		platforms := map[string]string{}
		for _, d := range im.Manifests {
			if d.Platform != nil && d.Annotations[registry.AttestationAnnotation] == "" {
				platforms[d.Digest.String()] = d.Platform.String()
			}
		}
		want := map[string]string{}
		for _, m := range img.Manifests {
			want[m.Digest] = m.Platform
			if _, err := remote.Head(repo.Digest(m.Digest), opts...); err != nil {
				t.Errorf("%s@%s (%s) is not served: %v", repo, m.Digest, m.Platform, err)
			}
		}
		if diff := cmp.Diff(want, platforms); diff != "" {
			t.Errorf("%s: the index's platforms (-want +got):\n%s", spec.Name, diff)
		}
	}
	return roots
}

func TestPublishRegistry(t *testing.T) {
	t.Parallel()
	f := relPublishFixture(t, false)
	reg := newRelRegistry(t)
	base := reg.host + "/stagex"
	var events []PublishProgress
	res, err := f.publish(t, PublishOptions{To: base, Transport: reg, SkipGit: true,
		Progress: func(p PublishProgress) { events = append(events, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 3 || len(res.Warnings) != 0 || res.Git != nil {
		t.Fatalf("result %+v", res)
	}
	for _, img := range res.Images {
		if !img.Uploaded || len(img.Tags) != 3 {
			t.Errorf("%s: uploaded %v, tags %+v", img.Name, img.Uploaded, img.Tags)
		}
		for _, tag := range img.Tags {
			if tag.State != TagCreated {
				t.Errorf("%s:%s %s, want created", img.Name, tag.Tag, tag.State)
			}
		}
	}
	done := 0
	for _, e := range events {
		if e.Done {
			done++
		}
	}
	if done != 3 || len(events) <= 3 {
		t.Errorf("progress: %d events, %d done, want upload events and 3 done", len(events), done)
	}
	roots := f.checkServed(t, base, remote.WithTransport(reg))
	for _, img := range res.Images {
		if roots[img.Name] != img.Digest {
			t.Errorf("%s: result says %s, registry has %s", img.Name, img.Digest, roots[img.Name])
		}
	}

	// Again: nothing is written.
	before := reg.writes()
	res, err = f.publish(t, PublishOptions{To: base, Transport: reg, SkipGit: true})
	if err != nil {
		t.Fatal(err)
	}
	if reg.writes() != before {
		t.Errorf("the second publish wrote %d time(s)", reg.writes()-before)
	}
	for _, img := range res.Images {
		for _, tag := range img.Tags {
			if img.Uploaded || tag.State != TagPresent {
				t.Errorf("second run: %s uploaded %v, :%s %s", img.Name, img.Uploaded, tag.Tag, tag.State)
			}
		}
	}
}

func TestPublishOCI(t *testing.T) {
	t.Parallel()
	f := relPublishFixture(t, false)
	dir := filepath.Join(f.dir, "mirror")
	res, err := f.publish(t, PublishOptions{To: "oci:" + dir, SkipGit: true, Tags: []string{"{version}", "sx{release}", "latest"}})
	if err != nil {
		t.Fatal(err)
	}
	ii, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string]string{}
	for _, d := range im.Manifests {
		entries[d.Annotations[registry.RefNameAnnotation]] = d.Digest.String()
	}
	want := map[string]string{}
	for _, img := range res.Images {
		if img.Repository != "oci:"+dir || !img.Uploaded {
			t.Errorf("%s: %+v", img.Name, img)
		}
		for _, tag := range []string{img.Version, "sxr1", "latest"} {
			want["stagex/"+img.Name+":"+tag] = img.Digest
		}
		if img.Name != "core-flat" && img.Digest != f.topDigest(t, img.Name) {
			t.Errorf("%s: published %s, want the layout's own index %s", img.Name, img.Digest, f.topDigest(t, img.Name))
		}
		idx, err := ii.ImageIndex(v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(img.Digest, "sha256:")})
		if err != nil {
			t.Fatalf("%s: %v", img.Name, err)
		}
		if err := validate.Index(idx); err != nil {
			t.Errorf("%s: %v", img.Name, err)
		}
		for _, m := range f.images[img.Name].Manifests {
			h, _ := v1.NewHash(m.Digest)
			if _, err := ii.Image(h); err != nil && img.Name != "core-flat" {
				// Nested layouts list images one level down; check the blob itself.
				if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", h.Hex)); err != nil {
					t.Errorf("%s: manifest %s missing: %v", img.Name, m.Digest, err)
				}
			}
		}
	}
	if diff := cmp.Diff(want, entries); diff != "" {
		t.Errorf("index.json entries (-want +got):\n%s", diff)
	}

	// Again: index.json is untouched and nothing is uploaded.
	before, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	res, err = f.publish(t, PublishOptions{To: "oci:" + dir, SkipGit: true})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	if string(before) != string(after) {
		t.Errorf("the second publish rewrote index.json")
	}
	for _, img := range res.Images {
		if img.Uploaded {
			t.Errorf("second run uploaded %s", img.Name)
		}
	}
}

// TestPublishMovesLatest: the next release's image takes :latest and
// leaves the older version's tags alone.
func TestPublishMovesLatest(t *testing.T) {
	t.Parallel()
	f := relPublishFixture(t, false)
	dir := filepath.Join(f.dir, "mirror")
	first, err := f.publish(t, PublishOptions{To: "oci:" + dir, SkipGit: true})
	if err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(f.dir, "out2")
	if _, err := sample.Write(out2, sample.Spec{Name: "core-hello", Tag: "1.1"}); err != nil {
		t.Fatal(err)
	}
	images, err := buildout.Read(out2, nil)
	if err != nil {
		t.Fatal(err)
	}
	relSign(t, f.repo, "alice", "r2", images...)
	relSign(t, f.repo, "bob", "r2", images...)
	relCut(t, f.repo, "bob", "r2")
	second, err := f.publish(t, PublishOptions{Release: "r2", OutDir: out2, To: "oci:" + dir, SkipGit: true})
	if err != nil {
		t.Fatal(err)
	}
	var old string
	for _, img := range first.Images {
		if img.Name == "core-hello" {
			old = img.Digest
		}
	}
	want := []PublishedTag{{Tag: "1.1", State: TagCreated}, {Tag: "sxr2", State: TagCreated}, {Tag: "latest", State: TagMoved, Previous: old}}
	if diff := cmp.Diff(want, second.Images[0].Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	tgt := &registry.OCITarget{Dir: dir, Namespace: "stagex"}
	if d, ok, _ := tgt.TagDigest(context.Background(), "core-hello", "1.0"); !ok || d != old {
		t.Errorf("core-hello:1.0 is %s (%v), want %s", d, ok, old)
	}
}

// TestPublishRefusesMismatch: a local build that differs from the release
// publishes nothing at all, not even the images that match.
func TestPublishRefusesMismatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		rebuild sample.Spec
		say     string
	}{
		{"another digest", sample.Spec{Name: "core-multi", Tag: "2.0", Seed: "evil", Platforms: []string{"linux/amd64", "linux/arm64"}}, "is not in the release"},
		{"a platform missing", sample.Spec{Name: "core-multi", Tag: "2.0", Platforms: []string{"linux/amd64"}}, "linux/arm64 manifest"},
		{"another version", sample.Spec{Name: "core-hello", Tag: "1.1"}, "version 1.1, the release has 1.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := relPublishFixture(t, false)
			if err := os.RemoveAll(filepath.Join(f.out, tt.rebuild.Name)); err != nil {
				t.Fatal(err)
			}
			if _, err := sample.Write(f.out, tt.rebuild); err != nil {
				t.Fatal(err)
			}
			reg := newRelRegistry(t)
			_, err := f.publish(t, PublishOptions{To: reg.host + "/stagex", Transport: reg, SkipGit: true})
			if !errors.Is(err, ErrPublishMismatch) || !strings.Contains(err.Error(), tt.say) {
				t.Fatalf("publish: %v, want ErrPublishMismatch saying %q", err, tt.say)
			}
			if reg.total() != 0 {
				t.Errorf("a refused publish talked to the registry %d time(s)", reg.total())
			}
			mirror := filepath.Join(f.dir, "mirror")
			if _, err := f.publish(t, PublishOptions{To: "oci:" + mirror, SkipGit: true}); !errors.Is(err, ErrPublishMismatch) {
				t.Fatalf("publish to oci: %v", err)
			}
			if _, err := os.Stat(mirror); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused publish created %s", mirror)
			}
		})
	}
}

func TestPublishRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(t *testing.T, f *relPub, opts *PublishOptions)
		want error
		say  string
	}{
		{"not cut", func(_ *testing.T, _ *relPub, o *PublishOptions) { o.Release = "r9" }, ErrNotCut, "no tag r9"},
		{"bad release", func(_ *testing.T, _ *relPub, o *PublishOptions) { o.Release = "../r1" }, nil, "release"},
		{"empty destination", func(_ *testing.T, _ *relPub, o *PublishOptions) { o.To = "" }, registry.ErrBadTarget, "REGISTRY/NAMESPACE"},
		{"oci without dir", func(_ *testing.T, _ *relPub, o *PublishOptions) { o.To = "oci:" }, registry.ErrBadTarget, "directory"},
		{"digest in destination", func(_ *testing.T, _ *relPub, o *PublishOptions) { o.To = "example.org/x@sha256:00" }, registry.ErrBadTarget, ""},
		{"bad tag", func(_ *testing.T, _ *relPub, o *PublishOptions) { o.Tags = []string{"v{version}!"} }, registry.ErrBadTarget, "not a valid image tag"},
		{"no tags", func(_ *testing.T, _ *relPub, o *PublishOptions) { o.Tags = []string{} }, registry.ErrBadTarget, "no tags"},
		{"no upstream", func(_ *testing.T, _ *relPub, o *PublishOptions) { o.SkipGit = false }, ErrNoUpstream, "main"},
		{"oci dir that is not a layout", func(t *testing.T, f *relPub, o *PublishOptions) {
			d := filepath.Join(f.dir, "junk")
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "x"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			o.To = "oci:" + d
		}, registry.ErrBadTarget, "neither an OCI image layout nor empty"},
		{"layout missing", func(t *testing.T, f *relPub, _ *PublishOptions) {
			if err := os.RemoveAll(filepath.Join(f.out, "core-flat")); err != nil {
				t.Fatal(err)
			}
		}, buildout.ErrNotLayout, "core-flat"},
		{"tag outside the branch", func(t *testing.T, f *relPub, o *PublishOptions) {
			_, tip, _ := f.repo.Head()
			c, err := f.repo.ReadCommit(tip)
			if err != nil {
				t.Fatal(err)
			}
			side, err := f.repo.Commit(gitstore.CommitRequest{Branch: "side", Message: "side",
				Author: c.Author, Changes: []gitstore.Change{{Path: "x", Data: []byte("x")}}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.repo.CreateTag(gitstore.TagRequest{Name: "side1", Target: side, Message: "x", Tagger: c.Author}); err != nil {
				t.Fatal(err)
			}
			o.Release = "side1"
		}, ErrNotOnBranch, "not in the history of main"},
		{"tampered manifest", func(t *testing.T, f *relPub, o *PublishOptions) {
			st, err := policy.LoadHead(f.repo)
			if err != nil {
				t.Fatal(err)
			}
			data, err := st.Snap.ReadFile("releases/r1/release.json")
			if err != nil {
				t.Fatal(err)
			}
			m, err := ParseManifest(data)
			if err != nil {
				t.Fatal(err)
			}
			m.Release = "t1"
			m.Images = m.Images[:1]
			list, _ := m.DigestList()
			h := relCommit(t, f.repo, "a release of one image",
				gitstore.Change{Path: "releases/t1/release.json", Data: m.Marshal()},
				gitstore.Change{Path: "releases/t1/digests.txt", Data: list})
			// Build records for t1: the same images as r1.
			for _, who := range []string{"alice", "bob"} {
				rec, _ := st.Snap.ReadFile(policy.BuildRecordPath("r1", relKey(t, who).Fingerprint))
				h = relCommit(t, f.repo, "records", gitstore.Change{Path: policy.BuildRecordPath("t1", relKey(t, who).Fingerprint), Data: rec})
			}
			if _, err := f.repo.CreateTag(gitstore.TagRequest{Name: "t1", Target: h, Message: "t1", Tagger: authorOf("x <x@x>", relNow)}); err != nil {
				t.Fatal(err)
			}
			o.Release = "t1"
		}, ErrBadManifest, "does not list the digests that met quorum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := relPublishFixture(t, false)
			opts := PublishOptions{To: "oci:" + filepath.Join(f.dir, "mirror"), SkipGit: true}
			tt.edit(t, f, &opts)
			_, err := f.publish(t, opts)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.say) {
				t.Fatalf("publish: %v, want %v saying %q", err, tt.want, tt.say)
			}
			if _, err := os.Stat(filepath.Join(f.dir, "mirror")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused publish created the mirror")
			}
		})
	}
}

func TestExpandTags(t *testing.T) {
	t.Parallel()
	got, err := expandTags(DefaultTags, "14.2.0", "2026.11.0")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"14.2.0", "sx2026.11.0", "latest"}, got); diff != "" {
		t.Errorf("default tags (-want +got):\n%s", diff)
	}
	if got, _ := expandTags([]string{"{version}", "latest", "{version}"}, "latest", "r"); len(got) != 1 {
		t.Errorf("duplicates kept: %v", got)
	}
	for _, bad := range []string{"", "-x", "a b", "{version}:1", strings.Repeat("a", 129)} {
		if _, err := expandTags([]string{bad}, "1", "r"); !errors.Is(err, registry.ErrBadTarget) {
			t.Errorf("tag %q: %v", bad, err)
		}
	}
}

// TestInteropPublishRegistry publishes to a real docker-registry, with the
// registry stopped halfway: the run fails with a temporary error and the
// next one finishes without uploading again what is there. The release is
// served with the exact signed digests (arm64 included), and the branch and
// tag reach the signatures repository's remote. A release below quorum
// cannot be cut, so nothing of it reaches the registry.
func TestInteropPublishRegistry(t *testing.T) {
	t.Parallel()
	interop.Require(t, "git", "docker-registry")
	reg := interop.StartRegistry(t)
	base := reg.Addr + "/stagex"

	// Below quorum: no cut, no publish, nothing in the registry.
	low := gitstore.NewMemory(true)
	relInit(t, low, 2, "alice", "bob")
	relSign(t, low, "alice", "r1", relImage("core-hello", "1.0", "linux/amd64=a"))
	if _, err := Cut(context.Background(), low, CutOptions{Release: "r1", Signer: signerFor(t, "alice"), Now: relClock}); !errors.Is(err, ErrNotReady) {
		t.Fatalf("cut below quorum: %v", err)
	}
	if _, err := Publish(context.Background(), low, PublishOptions{Release: "r1", OutDir: t.TempDir(), To: base, SkipGit: true, Now: relClock}); !errors.Is(err, ErrNotCut) {
		t.Fatalf("publish below quorum: %v", err)
	}
	regName, err := name.NewRegistry(reg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if repos, err := remote.Catalog(context.Background(), regName); err != nil || len(repos) != 0 {
		t.Fatalf("registry catalog before publishing: %v %v", repos, err)
	}

	f := relPublishFixture(t, true)
	remoteDir := filepath.Join(f.dir, "origin.git")
	bare, err := gitstore.Init(remoteDir, true, "main")
	if err != nil {
		t.Fatal(err)
	}
	bare.Close()
	if err := f.repo.AddRemote("origin", remoteDir); err != nil {
		t.Fatal(err)
	}
	if err := f.repo.SetUpstream("main", "origin", "refs/heads/main"); err != nil {
		t.Fatal(err)
	}

	// The registry stops once the first image is published.
	stopped := false
	_, err = f.publish(t, PublishOptions{To: base, Progress: func(p PublishProgress) {
		if p.Done && !stopped {
			stopped = true
			reg.Stop()
		}
	}})
	if !errors.Is(err, registry.ErrRegistryUnavailable) {
		t.Fatalf("publish with the registry stopped halfway: %v, want ErrRegistryUnavailable", err)
	}
	reg.Start()
	res, err := f.publish(t, PublishOptions{To: base})
	if err != nil {
		t.Fatalf("publish after the registry came back: %v", err)
	}
	for i, img := range res.Images {
		if want := i > 0; img.Uploaded != want {
			t.Errorf("%s: uploaded %v on the second run, want %v", img.Name, img.Uploaded, want)
		}
	}
	if res.Images[0].Tags[0].State != TagPresent {
		t.Errorf("%s was published before the failure, but the second run says %+v", res.Images[0].Name, res.Images[0].Tags)
	}
	f.checkServed(t, base)

	// The remote has the branch and the tag.
	_, tip, _ := f.repo.Head()
	env := []string(nil)
	if got := strings.TrimSpace(interop.Git(t, remoteDir, env, "rev-parse", "refs/heads/main")); got != tip.String() {
		t.Errorf("remote main is %s, want %s", got, tip)
	}
	if got := strings.TrimSpace(interop.Git(t, remoteDir, env, "rev-parse", "refs/tags/r1^{commit}")); got != res.Commit {
		t.Errorf("remote tag r1 is %s, want %s", got, res.Commit)
	}
	if res.Git == nil || res.Git.Remote != "origin" {
		t.Errorf("git result %+v", res.Git)
	}

	// A third run changes nothing.
	res, err = f.publish(t, PublishOptions{To: base})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range res.Images {
		for _, tag := range img.Tags {
			if img.Uploaded || tag.State != TagPresent {
				t.Errorf("third run: %s uploaded %v, :%s %s", img.Name, img.Uploaded, tag.Tag, tag.State)
			}
		}
	}
	out, _ := json.Marshal(res)
	t.Logf("third run: %s", out)
}

func TestRegistryErrorClasses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"unauthorized", &transport.Error{StatusCode: http.StatusUnauthorized}, registry.ErrRegistryDenied},
		{"forbidden", &transport.Error{StatusCode: http.StatusForbidden}, registry.ErrRegistryDenied},
		{"server error", &transport.Error{StatusCode: http.StatusServiceUnavailable}, registry.ErrRegistryUnavailable},
		{"rate limited", &transport.Error{StatusCode: http.StatusTooManyRequests}, registry.ErrRegistryUnavailable},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, registry.ErrRegistryUnavailable},
		{"reset", fmt.Errorf("reading: %w", syscall.ECONNRESET), registry.ErrRegistryUnavailable},
		{"cut short", io.ErrUnexpectedEOF, registry.ErrRegistryUnavailable},
		{"bad request", &transport.Error{StatusCode: http.StatusBadRequest}, nil},
		{"canceled", context.Canceled, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := registry.RegistryError("pushing x", tt.err)
			if !errors.Is(err, tt.err) || !strings.HasPrefix(err.Error(), "pushing x: ") {
				t.Errorf("%v does not wrap %v with context", err, tt.err)
			}
			for _, class := range []error{registry.ErrRegistryDenied, registry.ErrRegistryUnavailable} {
				if got := errors.Is(err, class); got != (class == tt.want) { //nolint:errorlint // which of the table's sentinels, not an error's cause
					t.Errorf("%v: errors.Is(%v) = %v", err, class, got)
				}
			}
		})
	}
}

package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/record"
)

// Errors of Publish (and of PolicyExport, which reads a cut release the same way).
var (
	// ErrNotCut means the release has no tag: it was never cut.
	ErrNotCut = errors.New("release is not cut")
	// ErrNotOnBranch means the release tag points at a commit outside the
	// history of the checked-out branch, whose trust policy judges it.
	ErrNotOnBranch = errors.New("release tag is not in the history of the checked-out branch")
	// ErrPublishMismatch means the local build output is not exactly what
	// the release holds: nothing was published.
	ErrPublishMismatch = errors.New("local images differ from the release")
	// ErrRegistryUnavailable means a registry could not be reached or
	// answered with a server error: run the command again later.
	ErrRegistryUnavailable = errors.New("registry unavailable")
	// ErrRegistryDenied means a registry refused the credentials (or their absence).
	ErrRegistryDenied = errors.New("registry denied access")
	// ErrBadTarget means the destination is not REGISTRY/NAMESPACE or oci:DIR.
	ErrBadTarget = errors.New("invalid destination")
)

// DefaultTags are the tags Publish gives every image: the image's version,
// sx<RELEASE> and latest, as StageX does. In a tag, {version} stands for the
// image's own tag and {release} for the release version.
var DefaultTags = []string{"{version}", "sx{release}", "latest"}

// OCIPrefix marks a PublishOptions.To that is a local OCI layout directory.
const OCIPrefix = "oci:"

// PublishOptions says which release to publish, from where, to where.
type PublishOptions struct {
	Release string
	// OutDir is the build output: one OCI image layout per image, the
	// directories tally sign read.
	OutDir string
	// To is "REGISTRY/NAMESPACE" (images go to REGISTRY/NAMESPACE/<name>) or
	// "oci:DIR" (one local OCI image layout; every tag is an index.json entry
	// named <namespace>/<name>:<tag>).
	To string
	// Tags are tag templates ({version}, {release}); nil means DefaultTags.
	Tags []string
	// Keychain gives registry credentials; nil means authn.DefaultKeychain
	// (the docker config and its credential helpers).
	Keychain authn.Keychain
	// Transport is the HTTP transport for registries; nil means
	// go-containerregistry's default.
	Transport http.RoundTripper
	// SkipGit leaves the signatures branch and the tag unpushed.
	SkipGit bool
	// Now is the clock for key lifetimes; time.Now when nil.
	Now func() time.Time
	// Progress, when set, is called as uploads advance and when an image is done.
	Progress func(PublishProgress)
}

// PublishProgress is one progress report of Publish.
type PublishProgress struct {
	Image    string `json:"image"` // "name:version"
	Index    int    `json:"index"` // 1-based position of the image
	Images   int    `json:"images"`
	Complete int64  `json:"complete"` // bytes uploaded so far for this image
	Total    int64  `json:"total"`    // bytes to upload, as far as known
	Done     bool   `json:"done"`     // the image is published and checked
}

// PublishResult says what Publish did.
type PublishResult struct {
	Release string           `json:"release"`
	Commit  string           `json:"commit"` // the commit the release tag points at
	To      string           `json:"to"`
	Images  []PublishedImage `json:"images"`
	// Git is what was pushed to the signatures repository's remote (nil with SkipGit).
	Git      *GitPublished `json:"git,omitempty"`
	Warnings []string      `json:"warnings,omitempty"`
}

// PublishedImage is one released image at its destination.
type PublishedImage struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	Repository string `json:"repository"` // REGISTRY/NAMESPACE/<name>, or oci:DIR
	// Digest is what the tags point at: the layout's image index (or the
	// image manifest of a single-platform flat layout).
	Digest    string         `json:"digest"`
	MediaType string         `json:"media_type"`
	Manifests []string       `json:"manifests"` // the released per-platform digests it holds
	Uploaded  bool           `json:"uploaded"`  // content was written by this run
	Tags      []PublishedTag `json:"tags"`
}

// Tag states of a PublishedTag.
const (
	TagPresent = "present" // already pointed at the release's digest: nothing written
	TagCreated = "created" // did not exist
	TagMoved   = "moved"   // pointed at another digest (Previous)
)

// PublishedTag is one tag of a published image.
type PublishedTag struct {
	Tag      string `json:"tag"`
	State    string `json:"state"`
	Previous string `json:"previous,omitempty"`
}

// GitPublished is what Publish pushed to the signatures repository's remote.
type GitPublished struct {
	Remote string `json:"remote"`
	Branch string `json:"branch"` // local branch -> remote branch
	Tag    string `json:"tag"`
}

// cutRelease is a release read back from its tag and judged again under the
// trust policy of the checked-out branch.
type cutRelease struct {
	head     *policy.State
	commit   plumbing.Hash
	plan     *Plan
	manifest *Manifest
}

// loadCut reads the release whose tag is release: the tag must point into
// the history of the checked-out branch; the quorum is counted again at the
// tagged commit with the branch tip's keyring and threshold (a tag cannot
// bring its own trust policy), must still be met, and must name exactly the
// digests of the committed manifest and digest list.
func loadCut(ctx context.Context, repo *gitstore.Repo, release string, now func() time.Time) (*cutRelease, error) {
	if err := record.CheckReleaseName(release); err != nil {
		return nil, err
	}
	head, err := policy.LoadHead(repo)
	if err != nil {
		return nil, err
	}
	commit, ok := tagTarget(repo, release)
	if !ok {
		return nil, fmt.Errorf("%w: no tag %s", ErrNotCut, release)
	}
	if commit != head.Tip {
		in, err := repo.IsAncestor(commit, head.Tip)
		if err != nil {
			return nil, fmt.Errorf("reading history: %w", err)
		}
		if !in {
			return nil, fmt.Errorf("%w: tag %s points at %s, not in the history of %s", ErrNotOnBranch, release, commit, head.Branch.Short())
		}
	}
	snap, err := repo.Snapshot(commit)
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", commit, err)
	}
	at := &policy.State{Repo: repo, Branch: "", Tip: commit, Snap: snap, Policy: head.Policy, Keys: head.Keys}
	plan, err := planAt(ctx, at, release, now)
	if err != nil {
		return nil, err
	}
	plan.Tagged = commit.String()
	if !plan.Ready() {
		return nil, &NotReadyError{Plan: plan}
	}
	data, err := snap.ReadFile(ManifestPath(release, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s at %s: %v", ErrBadManifest, ManifestPath(release, ManifestFile), commit, err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestPath(release, ManifestFile), err)
	}
	if m.Release != release {
		return nil, fmt.Errorf("%w: %s names release %s", ErrBadManifest, ManifestPath(release, ManifestFile), m.Release)
	}
	if !sameDigests(m.Images, plan.Released()) {
		return nil, fmt.Errorf("%w: %s does not list the digests that met quorum at %s", ErrBadManifest, ManifestPath(release, ManifestFile), commit)
	}
	listData, err := snap.ReadFile(ManifestPath(release, DigestListFile))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrBadManifest, ManifestPath(release, DigestListFile), err)
	}
	list, err := buildout.ReadDigestList(bytes.NewReader(listData))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", ManifestPath(release, DigestListFile), ErrBadManifest, err)
	}
	if !sameEntries(list, m.DigestEntries()) {
		return nil, fmt.Errorf("%w: %s and %s disagree", ErrBadManifest, ManifestPath(release, DigestListFile), ManifestPath(release, ManifestFile))
	}
	return &cutRelease{head: head, commit: commit, plan: plan, manifest: m}, nil
}

func sameEntries(a, b []buildout.DigestEntry) bool {
	key := func(es []buildout.DigestEntry) []string {
		out := make([]string, len(es))
		for i, e := range es {
			out[i] = e.Digest + " " + e.Name
		}
		sort.Strings(out)
		return out
	}
	ka, kb := key(a), key(b)
	if len(ka) != len(kb) {
		return false
	}
	for i := range ka {
		if ka[i] != kb[i] {
			return false
		}
	}
	return true
}

// Publish publishes a cut release. Before anything is written it checks
// that the release tag is in the branch's history and still meets quorum
// under the branch's trust policy, that the committed manifest names exactly
// those digests, that every released image's local layout holds exactly the
// released per-platform manifests, and (unless SkipGit) that the branch has
// an upstream. Then, image by image, it writes the layout's own manifests and
// index byte for byte (so every per-platform digest stays the signed one)
// and points every tag at it, skipping what the destination has already: a
// second run writes nothing, and a run after a failure finishes the job.
// Each image is read back from the destination before it counts as done.
// Finally it pushes the branch and the tag to the branch's upstream.
func Publish(ctx context.Context, repo *gitstore.Repo, opts PublishOptions) (*PublishResult, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	templates := opts.Tags
	if templates == nil {
		templates = DefaultTags
	}
	if len(templates) == 0 {
		return nil, fmt.Errorf("%w: no tags to publish", ErrBadTarget)
	}
	if err := record.CheckReleaseName(opts.Release); err != nil {
		return nil, err
	}
	cut, err := loadCut(ctx, repo, opts.Release, opts.Now)
	if err != nil {
		return nil, err
	}
	res := &PublishResult{Release: opts.Release, Commit: cut.commit.String(), To: opts.To, Images: []PublishedImage{}}

	var gitRemote string
	var gitMerge plumbing.ReferenceName
	if !opts.SkipGit {
		if cut.head.Branch == "" {
			return nil, ErrDetached
		}
		if gitRemote, gitMerge, err = repo.Upstream(cut.head.Branch); err != nil {
			return nil, fmt.Errorf("%w: %s", ErrNoUpstream, cut.head.Branch.Short())
		}
	}

	dest, err := openTarget(opts, cut.head.Policy)
	if err != nil {
		return nil, err
	}
	if w := dest.warning(cut.head.Policy); w != "" {
		res.Warnings = append(res.Warnings, w)
	}

	// Every check before the first write: tags, local layouts, roots.
	type job struct {
		img  ReleasedImage
		tags []string
		root *publishRoot
	}
	var jobs []job
	names := make([]string, len(cut.manifest.Images))
	for i, img := range cut.manifest.Images {
		names[i] = img.Name
	}
	local, err := buildout.Read(opts.OutDir, names)
	if err != nil {
		return nil, fmt.Errorf("reading the build output: %w", err)
	}
	byName := map[string]buildout.Image{}
	for _, l := range local {
		byName[l.Name] = l
	}
	var mismatches []string
	for _, img := range cut.manifest.Images {
		tags, err := expandTags(templates, img.Tag, opts.Release)
		if err != nil {
			return nil, err
		}
		l := byName[img.Name]
		if msg := compareLocal(l, img); len(msg) > 0 {
			mismatches = append(mismatches, msg...)
			continue
		}
		root, err := layoutRoot(l.Dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l.Dir, err)
		}
		if msg := root.check(img); len(msg) > 0 {
			mismatches = append(mismatches, msg...)
			continue
		}
		jobs = append(jobs, job{img: img, tags: tags, root: root})
	}
	if len(mismatches) > 0 {
		return nil, fmt.Errorf("%w; nothing was published:\n%s", ErrPublishMismatch, strings.Join(mismatches, "\n"))
	}

	for i, j := range jobs {
		report := func(complete, total int64, done bool) {
			if opts.Progress != nil {
				opts.Progress(PublishProgress{Image: j.img.Name + ":" + j.img.Tag, Index: i + 1, Images: len(jobs),
					Complete: complete, Total: total, Done: done})
			}
		}
		pi, err := publishImage(ctx, dest, j.img, j.tags, j.root, report)
		if err != nil {
			return res, fmt.Errorf("publishing %s:%s to %s: %w", j.img.Name, j.img.Tag, dest.repository(j.img.Name), err)
		}
		res.Images = append(res.Images, *pi)
		report(0, 0, true)
	}

	if !opts.SkipGit {
		tagRef := plumbing.NewTagReferenceName(opts.Release).String()
		if err := repo.Push(ctx, gitRemote, cut.head.Branch.String()+":"+gitMerge.String(), tagRef+":"+tagRef); err != nil {
			return res, fmt.Errorf("the images are published, but pushing the signatures failed: %w", err)
		}
		res.Git = &GitPublished{Remote: gitRemote, Branch: cut.head.Branch.Short() + " -> " + gitMerge.Short(), Tag: opts.Release}
	}
	return res, nil
}

// expandTags fills in {version} and {release} and checks each tag.
func expandTags(templates []string, version, release string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, t := range templates {
		tag := strings.NewReplacer("{version}", version, "{release}", release).Replace(t)
		if !imageTagPattern.MatchString(tag) {
			return nil, fmt.Errorf("%w: tag %q (from %q) is not a valid image tag", ErrBadTarget, tag, t)
		}
		if !seen[tag] {
			seen[tag] = true
			out = append(out, tag)
		}
	}
	return out, nil
}

// compareLocal says how a local layout differs from a released image.
func compareLocal(l buildout.Image, img ReleasedImage) []string {
	var out []string
	if l.Tag != img.Tag {
		out = append(out, fmt.Sprintf("%s: the local layout is version %s, the release has %s", img.Name, l.Tag, img.Tag))
	}
	want := map[string]string{}
	for _, p := range img.Platforms {
		want[p.Digest] = p.Platform
	}
	have := map[string]bool{}
	for _, m := range l.Manifests {
		have[m.Digest] = true
		if _, ok := want[m.Digest]; !ok {
			pl := m.Platform
			if pl == "" {
				pl = "unknown platform"
			}
			out = append(out, fmt.Sprintf("%s: the local %s manifest %s is not in the release", img.Name, pl, m.Digest))
		}
	}
	for _, p := range img.Platforms {
		if !have[p.Digest] {
			out = append(out, fmt.Sprintf("%s: the release's %s manifest %s is not in the local layout", img.Name, p.Platform, p.Digest))
		}
	}
	return out
}

// publishRoot is what the tags of one image point at, read from its layout.
type publishRoot struct {
	taggable  remote.Taggable // v1.ImageIndex or v1.Image
	index     v1.ImageIndex   // nil for a single image manifest
	image     v1.Image        // nil for an index
	digest    v1.Hash
	mediaType types.MediaType
	size      int64
	images    map[string]bool // per-platform image manifest digests it holds
}

// attestationAnnotation marks BuildKit's attestation manifests in an index.
const attestationAnnotation = "vnd.docker.reference.type"

// layoutRoot reads what to publish from an OCI layout: the one index
// index.json lists (BuildKit), the one image manifest it lists, or, for a flat
// layout listing several image manifests, a new index of exactly those
// manifests. Every manifest's bytes are hashed and checked against the
// descriptor that names it.
func layoutRoot(dir string) (*publishRoot, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the OCI layout: %w", err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading index.json: %w", err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading index.json: %w", err)
	}
	r := &publishRoot{images: map[string]bool{}}
	entries := im.Manifests
	switch {
	case len(entries) == 0:
		return nil, errors.New("index.json lists nothing")
	case len(entries) == 1 && entries[0].MediaType.IsIndex():
		if r.index, err = top.ImageIndex(entries[0].Digest); err != nil {
			return nil, err
		}
	case len(entries) == 1 && entries[0].MediaType.IsImage():
		if r.image, err = top.Image(entries[0].Digest); err != nil {
			return nil, err
		}
	default:
		var adds []mutate.IndexAddendum
		mt := types.OCIImageIndex
		for _, d := range entries {
			if !d.MediaType.IsImage() {
				return nil, fmt.Errorf("index.json lists %d entries and %s is not an image manifest: export one image index per layout", len(entries), d.Digest)
			}
			if d.MediaType == types.DockerManifestSchema2 {
				mt = types.DockerManifestList
			}
			img, err := top.Image(d.Digest)
			if err != nil {
				return nil, err
			}
			adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{MediaType: d.MediaType, Platform: d.Platform}})
		}
		r.index = mutate.AppendManifests(mutate.IndexMediaType(empty.Index, mt), adds...)
	}
	var raw []byte
	if r.index != nil {
		r.taggable = r.index
		if raw, err = r.index.RawManifest(); err == nil {
			r.mediaType, err = r.index.MediaType()
		}
		if err == nil {
			err = r.walk(r.index, 1)
		}
	} else {
		r.taggable = r.image
		if raw, err = r.image.RawManifest(); err == nil {
			r.mediaType, err = r.image.MediaType()
		}
		r.images[sha256Digest(raw)] = true
	}
	if err != nil {
		return nil, err
	}
	if len(entries) == 1 && sha256Digest(raw) != entries[0].Digest.String() {
		return nil, fmt.Errorf("%s: the blob's bytes hash to %s", entries[0].Digest, sha256Digest(raw))
	}
	r.digest, r.size, err = v1.SHA256(bytes.NewReader(raw))
	return r, err
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// walk collects the image manifests an index holds, checking every child's bytes.
func (r *publishRoot) walk(idx v1.ImageIndex, depth int) error {
	if depth > buildout.MaxIndexDepth {
		return fmt.Errorf("image indexes nested more than %d deep", buildout.MaxIndexDepth)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		var raw []byte
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return err
			}
			if raw, err = child.RawManifest(); err != nil {
				return err
			}
			if err := r.walk(child, depth+1); err != nil {
				return err
			}
		case d.MediaType.IsImage():
			img, err := idx.Image(d.Digest)
			if err != nil {
				return err
			}
			if raw, err = img.RawManifest(); err != nil {
				return err
			}
			if d.Annotations[attestationAnnotation] == "" {
				r.images[d.Digest.String()] = true
			}
		default:
			return fmt.Errorf("%s: media type %q is neither an image index nor an image manifest", d.Digest, d.MediaType)
		}
		if got := sha256Digest(raw); got != d.Digest.String() {
			return fmt.Errorf("%s: the blob's bytes hash to %s", d.Digest, got)
		}
	}
	return nil
}

// check says how the images the root holds differ from the released ones.
func (r *publishRoot) check(img ReleasedImage) []string {
	want := map[string]bool{}
	for _, p := range img.Platforms {
		want[p.Digest] = true
	}
	var out []string
	for d := range r.images {
		if !want[d] {
			out = append(out, fmt.Sprintf("%s: the layout's index holds image manifest %s, which is not in the release", img.Name, d))
		}
	}
	for d := range want {
		if !r.images[d] {
			out = append(out, fmt.Sprintf("%s: the layout's index does not hold the release's manifest %s", img.Name, d))
		}
	}
	sort.Strings(out)
	return out
}

// publishImage writes one image and its tags, skipping what is there.
func publishImage(ctx context.Context, dest target, img ReleasedImage, tags []string, root *publishRoot,
	progress func(complete, total int64, done bool)) (*PublishedImage, error) {
	pi := &PublishedImage{Name: img.Name, Version: img.Tag, Repository: dest.repository(img.Name),
		Digest: root.digest.String(), MediaType: string(root.mediaType), Manifests: []string{}}
	for _, p := range img.Platforms {
		pi.Manifests = append(pi.Manifests, p.Digest)
	}
	var pending []int
	for _, t := range tags {
		cur, found, err := dest.tagDigest(ctx, img.Name, t)
		if err != nil {
			return nil, err
		}
		pt := PublishedTag{Tag: t, State: TagPresent}
		switch {
		case !found:
			pt.State = TagCreated
		case cur != root.digest.String():
			pt.State, pt.Previous = TagMoved, cur
		}
		if pt.State != TagPresent {
			pending = append(pending, len(pi.Tags))
		}
		pi.Tags = append(pi.Tags, pt)
	}
	if len(pending) > 0 {
		have, err := dest.hasManifest(ctx, img.Name, root.digest.String())
		if err != nil {
			return nil, err
		}
		first := 0
		if !have {
			if err := dest.upload(ctx, img.Name, root, tags[pending[0]], progress); err != nil {
				return nil, err
			}
			pi.Uploaded, first = true, 1
		}
		for _, k := range pending[first:] {
			if err := dest.setTag(ctx, img.Name, root, tags[k]); err != nil {
				return nil, err
			}
		}
	}
	// Read it back: every tag and every released manifest must be there
	// (tags that were there already were read just now).
	for _, k := range pending {
		t := tags[k]
		cur, found, err := dest.tagDigest(ctx, img.Name, t)
		if err != nil {
			return nil, err
		}
		if !found || cur != root.digest.String() {
			return nil, fmt.Errorf("after publishing, tag %s points at %q, want %s", t, cur, root.digest)
		}
	}
	for _, p := range img.Platforms {
		ok, err := dest.hasManifest(ctx, img.Name, p.Digest)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("after publishing, the %s manifest %s is missing", p.Platform, p.Digest)
		}
	}
	return pi, nil
}

// target is a destination of Publish: a registry namespace or an OCI layout.
type target interface {
	repository(name string) string
	warning(p policy.Policy) string
	// tagDigest returns the digest a tag points at, and whether it exists.
	tagDigest(ctx context.Context, name, tag string) (string, bool, error)
	hasManifest(ctx context.Context, name, digest string) (bool, error)
	// upload writes the root with everything it references, under tag.
	upload(ctx context.Context, name string, root *publishRoot, tag string, progress func(complete, total int64, done bool)) error
	// setTag points tag at a root whose content is there already.
	setTag(ctx context.Context, name string, root *publishRoot, tag string) error
}

// openTarget parses PublishOptions.To.
func openTarget(opts PublishOptions, p policy.Policy) (target, error) {
	if dir, ok := strings.CutPrefix(opts.To, OCIPrefix); ok {
		if dir == "" {
			return nil, fmt.Errorf("%w: %q: oci: needs a directory, as in oci:./mirror", ErrBadTarget, opts.To)
		}
		return newOCITarget(dir, p.Namespace)
	}
	if opts.To == "" || strings.ContainsAny(opts.To, "@") || strings.HasSuffix(opts.To, "/") {
		return nil, fmt.Errorf("%w: %q: want REGISTRY/NAMESPACE (like ghcr.io/stagex) or oci:DIR", ErrBadTarget, opts.To)
	}
	if _, err := name.NewRepository(opts.To+"/x", name.StrictValidation); err != nil {
		return nil, fmt.Errorf("%w: %q: want REGISTRY/NAMESPACE (like ghcr.io/stagex) or oci:DIR: %v", ErrBadTarget, opts.To, err)
	}
	kc := opts.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	return &registryTarget{base: opts.To, keychain: kc, transport: opts.Transport}, nil
}

// registryTarget publishes to REGISTRY/NAMESPACE/<name>.
type registryTarget struct {
	base      string
	keychain  authn.Keychain
	transport http.RoundTripper
}

func (t *registryTarget) repo(n string) name.Repository {
	r, err := name.NewRepository(t.base+"/"+n, name.StrictValidation)
	if err != nil {
		// openTarget checked the base and names are repository components.
		panic(fmt.Sprintf("release: repository %s/%s: %v", t.base, n, err))
	}
	return r
}

func (t *registryTarget) repository(n string) string { return t.repo(n).Name() }

func (t *registryTarget) warning(p policy.Policy) string {
	r := t.repo("x")
	path := strings.TrimSuffix(r.RepositoryStr(), "/x")
	if path != p.Namespace {
		return fmt.Sprintf("stock clients look up signatures of %s/<name> under %s/<name>@sha256=…/ in the lookaside, but the signatures repository keeps them under %s/: serve them there, or publish to REGISTRY/%s",
			t.base, path, p.Namespace, p.Namespace)
	}
	return ""
}

func (t *registryTarget) options(ctx context.Context) []remote.Option {
	o := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(t.keychain), remote.WithUserAgent("tally")}
	if t.transport != nil {
		o = append(o, remote.WithTransport(t.transport))
	}
	return o
}

func (t *registryTarget) head(ctx context.Context, ref name.Reference) (string, bool, error) {
	d, err := remote.Head(ref, t.options(ctx)...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return "", false, nil
	}
	if err != nil {
		return "", false, registryError("checking "+ref.String(), err)
	}
	return d.Digest.String(), true, nil
}

func (t *registryTarget) tagDigest(ctx context.Context, n, tag string) (string, bool, error) {
	return t.head(ctx, t.repo(n).Tag(tag))
}

func (t *registryTarget) hasManifest(ctx context.Context, n, digest string) (bool, error) {
	_, found, err := t.head(ctx, t.repo(n).Digest(digest))
	return found, err
}

func (t *registryTarget) upload(ctx context.Context, n string, root *publishRoot, tag string, progress func(complete, total int64, done bool)) error {
	ref := t.repo(n).Tag(tag)
	opts := t.options(ctx)
	var drained chan struct{}
	if progress != nil {
		updates := make(chan v1.Update, 16)
		drained = make(chan struct{})
		go func() {
			defer close(drained)
			for u := range updates {
				progress(u.Complete, u.Total, false)
			}
		}()
		opts = append(opts, remote.WithProgress(updates))
	}
	err := remote.Push(ref, root.taggable, opts...)
	if drained != nil {
		<-drained
	}
	if err != nil {
		return registryError("uploading to "+ref.String(), err)
	}
	return nil
}

func (t *registryTarget) setTag(ctx context.Context, n string, root *publishRoot, tag string) error {
	ref := t.repo(n).Tag(tag)
	if err := remote.Tag(ref, root.taggable, t.options(ctx)...); err != nil {
		return registryError("tagging "+ref.String(), err)
	}
	return nil
}

// registryError classifies a registry failure: unreachable or a server
// error (retry later), credentials refused, or anything else.
func registryError(doing string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", doing, err)
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch {
		case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%s: %w: %w", doing, ErrRegistryDenied, err)
		case terr.StatusCode >= 500 || terr.StatusCode == http.StatusTooManyRequests:
			return fmt.Errorf("%s: %w: %w", doing, ErrRegistryUnavailable, err)
		}
		return fmt.Errorf("%s: %w", doing, err)
	}
	var operr *net.OpError
	var nerr net.Error
	if errors.As(err, &operr) || (errors.As(err, &nerr) && nerr.Timeout()) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: %w: %w", doing, ErrRegistryUnavailable, err)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// ociTarget publishes into one local OCI image layout.
type ociTarget struct {
	dir       string
	path      layout.Path
	namespace string
}

// refNameAnnotation names an entry of an OCI layout's index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// newOCITarget checks that dir is an OCI image layout, empty, or missing;
// a missing or empty one is made into a layout by the first write.
func newOCITarget(dir, namespace string) (*ociTarget, error) {
	t := &ociTarget{dir: dir, namespace: namespace, path: layout.Path(dir)}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err == nil {
		if _, err := t.readIndex(); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadTarget, dir, err)
		}
		return t, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("%w: %s: %v", ErrBadTarget, dir, err)
	case len(entries) > 0:
		return nil, fmt.Errorf("%w: %s is neither an OCI image layout nor empty", ErrBadTarget, dir)
	}
	return t, nil
}

// ensure makes dir an empty OCI image layout unless it is one.
func (t *ociTarget) ensure() error {
	if _, err := os.Stat(filepath.Join(t.dir, "oci-layout")); err == nil {
		return nil
	}
	if _, err := layout.Write(t.dir, empty.Index); err != nil {
		return fmt.Errorf("creating the OCI layout %s: %w", t.dir, err)
	}
	return nil
}

func (t *ociTarget) repository(string) string { return OCIPrefix + t.dir }

func (t *ociTarget) warning(policy.Policy) string { return "" }

func (t *ociTarget) refName(n, tag string) string { return t.namespace + "/" + n + ":" + tag }

// readIndex reads index.json; a layout not made yet has an empty one.
func (t *ociTarget) readIndex() (*v1.IndexManifest, error) {
	data, err := os.ReadFile(filepath.Join(t.dir, "index.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, nil
	}
	if err != nil {
		return nil, err
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(data, &im); err != nil {
		return nil, fmt.Errorf("%s/index.json: %w", t.dir, err)
	}
	return &im, nil
}

func (t *ociTarget) tagDigest(_ context.Context, n, tag string) (string, bool, error) {
	im, err := t.readIndex()
	if err != nil {
		return "", false, err
	}
	for _, d := range im.Manifests {
		if d.Annotations[refNameAnnotation] == t.refName(n, tag) {
			return d.Digest.String(), true, nil
		}
	}
	return "", false, nil
}

func (t *ociTarget) hasManifest(_ context.Context, _ string, digest string) (bool, error) {
	h, err := v1.NewHash(digest)
	if err != nil {
		return false, err
	}
	data, err := t.path.Bytes(h)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return sha256Digest(data) == digest, nil
}

func (t *ociTarget) upload(ctx context.Context, n string, root *publishRoot, tag string, progress func(complete, total int64, done bool)) error {
	if err := t.ensure(); err != nil {
		return err
	}
	var err error
	if root.index != nil {
		err = t.path.WriteIndex(root.index)
	} else {
		err = t.path.WriteImage(root.image)
	}
	if err != nil {
		return fmt.Errorf("writing into %s: %w", t.dir, err)
	}
	if progress != nil {
		progress(root.size, root.size, false)
	}
	return t.setTag(ctx, n, root, tag)
}

// setTag replaces the index.json entry named <namespace>/<name>:<tag>,
// writing the new index.json atomically.
func (t *ociTarget) setTag(_ context.Context, n string, root *publishRoot, tag string) error {
	if err := t.ensure(); err != nil {
		return err
	}
	im, err := t.readIndex()
	if err != nil {
		return err
	}
	ref := t.refName(n, tag)
	kept := im.Manifests[:0]
	for _, d := range im.Manifests {
		if d.Annotations[refNameAnnotation] != ref {
			kept = append(kept, d)
		}
	}
	im.Manifests = append(kept, v1.Descriptor{MediaType: root.mediaType, Digest: root.digest, Size: root.size,
		Annotations: map[string]string{refNameAnnotation: ref}})
	if im.SchemaVersion == 0 {
		im.SchemaVersion = 2
	}
	if im.MediaType == "" {
		im.MediaType = types.OCIImageIndex
	}
	data, err := json.MarshalIndent(im, "", "   ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(t.dir, ".index-*.json")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(t.dir, "index.json"))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s/index.json: %w", t.dir, err)
	}
	return nil
}

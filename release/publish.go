package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/registry"
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
)

// DefaultTags are the tags Publish gives every image: the image's version,
// sx<RELEASE> and latest, as StageX does. In a tag, {version} stands for the
// image's own tag and {release} for the release version.
var DefaultTags = []string{"{version}", "sx{release}", "latest"}

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
	Keychain registry.Keychain
	// TLS says which CAs to trust (--cert-dir) and which registries are
	// reached without verifying their certificate (--insecure-registry).
	TLS registry.TLSOptions
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
	if err := policy.CheckReleaseName(release); err != nil {
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
		return nil, fmt.Errorf("%w: no tags to publish", registry.ErrBadTarget)
	}
	if err := policy.CheckReleaseName(opts.Release); err != nil {
		return nil, err
	}
	cut, err := loadCut(ctx, repo, opts.Release, opts.Now)
	if err != nil {
		return nil, err
	}
	res := &PublishResult{Release: opts.Release, Commit: cut.commit.String(), To: opts.To, Images: []PublishedImage{}}

	if !opts.SkipGit {
		if cut.head.Branch == "" {
			return nil, ErrDetached
		}
		if _, _, err = repo.Upstream(cut.head.Branch); err != nil {
			return nil, fmt.Errorf("%w: %s", ErrNoUpstream, cut.head.Branch.Short())
		}
	}

	dest, err := registry.OpenTarget(opts.To, opts.Keychain, opts.Transport, opts.TLS, cut.head.Policy)
	if err != nil {
		return nil, err
	}
	if w := dest.Warning(cut.head.Policy); w != "" {
		res.Warnings = append(res.Warnings, w)
	}

	// Every check before the first write: tags, local layouts, roots.
	type job struct {
		img  ReleasedImage
		tags []string
		root *registry.PublishRoot
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
		root, err := registry.LayoutRoot(l.Dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l.Dir, err)
		}
		if msg := checkRoot(root, img); len(msg) > 0 {
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
			return res, fmt.Errorf("publishing %s:%s to %s: %w", j.img.Name, j.img.Tag, dest.Repository(j.img.Name), err)
		}
		res.Images = append(res.Images, *pi)
		report(0, 0, true)
	}

	if !opts.SkipGit {
		git, err := pushRelease(ctx, repo, cut.head.Branch, opts.Release)
		if err != nil {
			return res, err
		}
		res.Git = git
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
			return nil, fmt.Errorf("%w: tag %q (from %q) is not a valid image tag", registry.ErrBadTarget, tag, t)
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

// check says how the images the root holds differ from the released ones.
func checkRoot(r *registry.PublishRoot, img ReleasedImage) []string {
	want := map[string]bool{}
	for _, p := range img.Platforms {
		want[p.Digest] = true
	}
	var out []string
	for d := range r.Images {
		if !want[d] {
			out = append(out, fmt.Sprintf("%s: the layout's index holds image manifest %s, which is not in the release", img.Name, d))
		}
	}
	for d := range want {
		if !r.Images[d] {
			out = append(out, fmt.Sprintf("%s: the layout's index does not hold the release's manifest %s", img.Name, d))
		}
	}
	sort.Strings(out)
	return out
}

// publishImage writes one image and its tags, skipping what is there.
func publishImage(ctx context.Context, dest registry.Target, img ReleasedImage, tags []string, root *registry.PublishRoot,
	progress func(complete, total int64, done bool)) (*PublishedImage, error) {
	pi := &PublishedImage{Name: img.Name, Version: img.Tag, Repository: dest.Repository(img.Name),
		Digest: root.Digest.String(), MediaType: string(root.MediaType), Manifests: []string{}}
	for _, p := range img.Platforms {
		pi.Manifests = append(pi.Manifests, p.Digest)
	}
	var pending []int
	for _, t := range tags {
		cur, found, err := dest.TagDigest(ctx, img.Name, t)
		if err != nil {
			return nil, err
		}
		pt := PublishedTag{Tag: t, State: TagPresent}
		switch {
		case !found:
			pt.State = TagCreated
		case cur != root.Digest.String():
			pt.State, pt.Previous = TagMoved, cur
		}
		if pt.State != TagPresent {
			pending = append(pending, len(pi.Tags))
		}
		pi.Tags = append(pi.Tags, pt)
	}
	if len(pending) > 0 {
		have, err := dest.HasManifest(ctx, img.Name, root.Digest.String())
		if err != nil {
			return nil, err
		}
		first := 0
		if !have {
			if err := dest.Upload(ctx, img.Name, root, tags[pending[0]], progress); err != nil {
				return nil, err
			}
			pi.Uploaded, first = true, 1
		}
		for _, k := range pending[first:] {
			if err := dest.SetTag(ctx, img.Name, root, tags[k]); err != nil {
				return nil, err
			}
		}
	}
	// Read it back: every tag and every released manifest must be there
	// (tags that were there already were read just now).
	for _, k := range pending {
		t := tags[k]
		cur, found, err := dest.TagDigest(ctx, img.Name, t)
		if err != nil {
			return nil, err
		}
		if !found || cur != root.Digest.String() {
			return nil, fmt.Errorf("after publishing, tag %s points at %q, want %s", t, cur, root.Digest)
		}
	}
	for _, p := range img.Platforms {
		ok, err := dest.HasManifest(ctx, img.Name, p.Digest)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("after publishing, the %s manifest %s is missing", p.Platform, p.Digest)
		}
	}
	return pi, nil
}

// PublishEach publishes the release to every destination of to in turn
// (REGISTRY/NAMESPACE or oci:DIR, as PublishOptions.To; opts.To is
// ignored), each exactly as Publish does and each resumable on its own:
// what a destination has already is skipped, so after a failure a second
// run finishes what is missing wherever it is missing. A registry that
// cannot be reached, refuses the credentials or fails TLS does not stop
// the others; any other error (the release not cut, local images that
// differ) stops at once. Only when every destination succeeded are the
// signatures branch and the tag pushed, once; the last result carries Git.
// The results are per destination, in the order given, for those tried.
func PublishEach(ctx context.Context, repo *gitstore.Repo, opts PublishOptions, to []string) ([]*PublishResult, error) {
	if len(to) == 0 {
		return nil, fmt.Errorf("%w: no destination", registry.ErrBadTarget)
	}
	seen := map[string]bool{}
	for _, t := range to {
		if seen[t] {
			return nil, fmt.Errorf("%w: %q is given twice", registry.ErrBadTarget, t)
		}
		seen[t] = true
	}
	// Refuse before writing anything when the signatures cannot follow.
	var branch plumbing.ReferenceName
	if !opts.SkipGit {
		var err error
		if branch, _, err = repo.Head(); err != nil {
			return nil, fmt.Errorf("reading HEAD: %w", err)
		}
		if branch == "" {
			return nil, ErrDetached
		}
		if _, _, err := repo.Upstream(branch); err != nil {
			return nil, fmt.Errorf("%w: %s", ErrNoUpstream, branch.Short())
		}
	}
	var results []*PublishResult
	var errs []error
	for _, t := range to {
		o := opts
		o.To, o.SkipGit = t, true
		res, err := Publish(ctx, repo, o)
		if res != nil {
			results = append(results, res)
		}
		if err == nil {
			continue
		}
		errs = append(errs, err)
		if !errors.Is(err, registry.ErrRegistryUnavailable) && !errors.Is(err, registry.ErrRegistryDenied) && !errors.Is(err, registry.ErrTLS) {
			break
		}
	}
	if len(errs) > 0 {
		return results, errors.Join(errs...)
	}
	if !opts.SkipGit {
		git, err := pushRelease(ctx, repo, branch, opts.Release)
		if err != nil {
			return results, err
		}
		results[len(results)-1].Git = git
	}
	return results, nil
}

// pushRelease pushes branch and the release's tag to the branch's upstream.
func pushRelease(ctx context.Context, repo *gitstore.Repo, branch plumbing.ReferenceName, release string) (*GitPublished, error) {
	remote, merge, err := repo.Upstream(branch)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrNoUpstream, branch.Short())
	}
	tagRef := plumbing.NewTagReferenceName(release).String()
	if err := repo.Push(ctx, remote, branch.String()+":"+merge.String(), tagRef+":"+tagRef); err != nil {
		return nil, fmt.Errorf("the images are published, but pushing the signatures failed: %w", err)
	}
	return &GitPublished{Remote: remote, Branch: branch.Short() + " -> " + merge.Short(), Tag: release}, nil
}

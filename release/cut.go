package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// Files of a cut release, in releases/<VERSION>/.
const (
	// DigestListFile is the StageX digest list of the release: one line
	// "<64-hex> <name>" per per-platform image manifest, sorted by name and
	// digest (a multi-platform image has one line per platform).
	DigestListFile = "digests.txt"
	// ManifestFile is the machine-readable release manifest (Manifest).
	ManifestFile = "release.json"
)

// manifestVersion is the format version of release.json.
const manifestVersion = 1

// ErrBadManifest means a release manifest is malformed or disagrees with the
// signatures it claims to summarise.
var ErrBadManifest = errors.New("invalid release manifest")

// Manifest is the machine-readable record of a cut release, committed as
// releases/<VERSION>/release.json next to the digest list. Every per-platform
// digest in it met quorum when the release was cut.
type Manifest struct {
	Version        int             `json:"tally_release"` // format version, 1
	Release        string          `json:"release"`
	Namespace      string          `json:"namespace"`
	IdentityPrefix string          `json:"identity_prefix"`
	Threshold      int             `json:"threshold"`
	Images         []ReleasedImage `json:"images"` // sorted by name; platforms by platform; signers by fingerprint
}

// ManifestPath returns the path of a release's file in the repository:
// releases/<VERSION>/<file>.
func ManifestPath(release, file string) string {
	return policy.ReleasesDir + "/" + release + "/" + file
}

// newManifest is the manifest of a ready plan under policy p.
func newManifest(plan *Plan, p policy.Policy) *Manifest {
	m := &Manifest{Version: manifestVersion, Release: plan.Release, Namespace: p.Namespace,
		IdentityPrefix: p.Prefix(), Threshold: plan.Threshold, Images: plan.Released()}
	sort.Slice(m.Images, func(i, j int) bool { return m.Images[i].Name < m.Images[j].Name })
	return m
}

// Marshal encodes the manifest as indented JSON with a final newline.
func (m *Manifest) Marshal() []byte {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("release: encoding a manifest: %v", err)) // plain data: cannot fail
	}
	return append(data, '\n')
}

// DigestEntries lists one digest-list entry per per-platform manifest.
func (m *Manifest) DigestEntries() []buildout.DigestEntry {
	var out []buildout.DigestEntry
	for _, img := range m.Images {
		for _, p := range img.Platforms {
			out = append(out, buildout.DigestEntry{Digest: p.Digest, Name: img.Name})
		}
	}
	return out
}

// DigestList encodes the release's digest list (formats.md section 1).
func (m *Manifest) DigestList() ([]byte, error) {
	var b bytes.Buffer
	if err := buildout.WriteDigestList(&b, m.DigestEntries()); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

var (
	imageNamePattern   = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	imageTagPattern    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	platformPattern    = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}/[A-Za-z0-9_.-]{1,64}(?:/[A-Za-z0-9_.-]{1,64})?$`)
	fingerprintPattern = regexp.MustCompile(`^(?:[0-9A-F]{40}|[0-9A-F]{64})$`)
)

// maxManifestSize bounds release.json: generous for thousands of images.
const maxManifestSize = 64 << 20

// ParseManifest reads release.json strictly: unknown fields, trailing data,
// malformed names, digests, platforms or fingerprints, unsorted or repeated
// entries, and platforms with fewer signers than the threshold are errors
// wrapping ErrBadManifest.
func ParseManifest(data []byte) (*Manifest, error) {
	bad := func(format string, args ...any) (*Manifest, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadManifest, fmt.Sprintf(format, args...))
	}
	if len(data) > maxManifestSize {
		return bad("larger than %d bytes", maxManifestSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return bad("%v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad("data after the JSON object")
	}
	if m.Version != manifestVersion {
		return bad("tally_release %d: this tally reads version %d", m.Version, manifestVersion)
	}
	if err := policy.CheckReleaseName(m.Release); err != nil {
		return bad("%v", err)
	}
	p := policy.Policy{Namespace: m.Namespace, IdentityPrefix: m.IdentityPrefix, Threshold: m.Threshold, Keyring: "k"}
	if m.IdentityPrefix == "" {
		return bad("identity_prefix is empty")
	}
	if err := p.Validate(); err != nil {
		return bad("%v", err)
	}
	if len(m.Images) == 0 {
		return bad("no images")
	}
	for i, img := range m.Images {
		switch {
		case len(img.Name) > 128 || !imageNamePattern.MatchString(img.Name):
			return bad("image %d: name %q is not a repository name component", i, img.Name)
		case i > 0 && m.Images[i-1].Name >= img.Name:
			return bad("image %q: images must be sorted by name, each once", img.Name)
		case !imageTagPattern.MatchString(img.Tag):
			return bad("image %s: tag %q is not a tag", img.Name, img.Tag)
		case img.Reference != p.Reference(img.Name, img.Tag):
			return bad("image %s: reference %q, want %q", img.Name, img.Reference, p.Reference(img.Name, img.Tag))
		case len(img.Platforms) == 0:
			return bad("image %s: no platforms", img.Name)
		}
		digests := map[string]bool{}
		for j, pl := range img.Platforms {
			switch {
			case !platformPattern.MatchString(pl.Platform):
				return bad("image %s: platform %q is not os/arch[/variant]", img.Name, pl.Platform)
			case j > 0 && img.Platforms[j-1].Platform >= pl.Platform:
				return bad("image %s: platforms must be sorted, each once (%s)", img.Name, pl.Platform)
			case !record.DigestPattern.MatchString(pl.Digest):
				return bad("image %s %s: digest %q is not sha256:<64 lower-case hex>", img.Name, pl.Platform, pl.Digest)
			case digests[pl.Digest]:
				return bad("image %s: digest %s listed for two platforms", img.Name, pl.Digest)
			case len(pl.Signers) < m.Threshold:
				return bad("image %s %s: %d signer(s), below the threshold %d", img.Name, pl.Platform, len(pl.Signers), m.Threshold)
			}
			digests[pl.Digest] = true
			for k, s := range pl.Signers {
				if !fingerprintPattern.MatchString(s.Fingerprint) {
					return bad("image %s %s: signer %q is not a primary key fingerprint (upper-case hex)", img.Name, pl.Platform, s.Fingerprint)
				}
				if k > 0 && pl.Signers[k-1].Fingerprint >= s.Fingerprint {
					return bad("image %s %s: signers must be sorted by fingerprint, each once", img.Name, pl.Platform)
				}
			}
		}
	}
	return &m, nil
}

// sameDigests reports whether two lists of released images name the same
// images, tags, platforms and digests (signers may differ).
func sameDigests(a, b []ReleasedImage) bool {
	key := func(imgs []ReleasedImage) []string {
		var out []string
		for _, img := range imgs {
			for _, p := range img.Platforms {
				out = append(out, img.Name+":"+img.Tag+" "+p.Platform+" "+p.Digest)
			}
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

// CutOptions says which release to cut and who signs it.
type CutOptions struct {
	Release string           // the release version; the tag's name
	Signer  sigstore.Signer  // a maintainer key: signs the commit and the tag
	Now     func() time.Time // the clock; time.Now when nil
}

// CutResult says what Cut did.
type CutResult struct {
	Release  string    `json:"release"`
	Manifest *Manifest `json:"manifest"`
	Branch   string    `json:"branch"`
	// Commit is the commit holding releases/<VERSION>/ that the tag points at.
	Commit string `json:"commit"`
	// Committed is false when that commit existed already (a rerun after the
	// tag could not be made).
	Committed bool   `json:"committed"`
	Tag       string `json:"tag"` // the tag object's id
	Signer    string `json:"signer"`
}

// Cut cuts a release: it plans the release at the tip of the checked-out
// branch and refuses (a *NotReadyError) unless nothing blocks it; commits
// releases/<VERSION>/digests.txt and release.json in a commit signed by the
// signer; then creates the signed annotated tag <VERSION> on that commit,
// its message listing every image, version and signer. An existing tag is
// never moved (an error wrapping gitstore.ErrTagExists, before anything is
// written). When a previous run committed the same manifest but failed to
// tag, Cut tags that commit instead of committing again.
func Cut(ctx context.Context, repo *gitstore.Repo, opts CutOptions) (*CutResult, error) {
	if err := policy.CheckReleaseName(opts.Release); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	st, unlock, err := lockHead(ctx, repo, 0)
	if err != nil {
		return nil, err
	}
	defer unlock() //nolint:errcheck // releasing a flock cannot lose data
	if h, ok := tagTarget(repo, opts.Release); ok {
		return nil, fmt.Errorf("cutting release %s: the tag points at %s: %w", opts.Release, h, gitstore.ErrTagExists)
	}
	fpr := opts.Signer.Fingerprint()
	key, ok := st.Keys.Key(fpr)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUntrustedSigner, fpr)
	}
	now := opts.Now().UTC().Truncate(time.Second)
	if ok, why := st.Keys.ValidAt(fpr, now); !ok {
		return nil, fmt.Errorf("signing key %s cannot sign now: %s", fpr, why)
	}

	plan, err := planAt(ctx, st, opts.Release, opts.Now)
	if err != nil {
		return nil, err
	}
	if !plan.Ready() {
		return nil, &NotReadyError{Plan: plan}
	}
	m := newManifest(plan, st.Policy)
	list, err := m.DigestList()
	if err != nil {
		return nil, fmt.Errorf("cutting release %s: %w", opts.Release, err)
	}
	files := []gitstore.Change{
		{Path: ManifestPath(opts.Release, DigestListFile), Data: list},
		{Path: ManifestPath(opts.Release, ManifestFile), Data: m.Marshal()},
	}
	res := &CutResult{Release: opts.Release, Manifest: m, Branch: st.Branch.Short(), Commit: st.Tip.String(), Signer: fpr}

	var changes []gitstore.Change
	for _, f := range files {
		old, err := st.Snap.ReadFile(f.Path)
		if err != nil || !bytes.Equal(old, f.Data) {
			changes = append(changes, f)
		}
	}
	// The commit's time is taken now, after the plan (which verifies every
	// signature of the release and can take a while), so that the commit
	// signature comes right after the time the commit claims.
	who := authorOf(key.Name, opts.Now().UTC().Truncate(time.Second))
	if len(changes) > 0 {
		paths := make([]string, len(changes))
		for i, c := range changes {
			paths[i] = c.Path
		}
		if err := repo.CheckPaths(paths); err != nil {
			return nil, err
		}
		h, err := repo.Commit(gitstore.CommitRequest{
			Branch:    st.Branch,
			Parents:   []plumbing.Hash{st.Tip},
			Changes:   changes,
			Message:   cutMessage(m),
			Author:    who,
			Committer: who,
			Sign:      opts.Signer.SignDetached,
			Context:   ctx,
		})
		if err != nil {
			return nil, err
		}
		res.Commit, res.Committed = h.String(), true
	}
	tagger := authorOf(key.Name, opts.Now().UTC().Truncate(time.Second))
	tag, err := repo.CreateTag(gitstore.TagRequest{
		Name:    opts.Release,
		Target:  plumbing.NewHash(res.Commit),
		Message: tagMessage(m),
		Tagger:  tagger,
		Sign:    opts.Signer.SignDetached,
	})
	if err != nil {
		if res.Committed {
			return nil, fmt.Errorf("committed the manifest as %s but could not tag it (run the command again to tag it): %w", res.Commit, err)
		}
		return nil, err
	}
	res.Tag = tag.String()
	return res, nil
}

// counts returns how many images and per-platform manifests m holds.
func (m *Manifest) counts() (images, manifests int) {
	for _, img := range m.Images {
		manifests += len(img.Platforms)
	}
	return len(m.Images), manifests
}

// Signers returns every key that signed some manifest of the release,
// sorted by fingerprint.
func (m *Manifest) Signers() []sigstore.Key {
	seen := map[string]sigstore.Key{}
	for _, img := range m.Images {
		for _, p := range img.Platforms {
			for _, s := range p.Signers {
				seen[s.Fingerprint] = s
			}
		}
	}
	out := make([]sigstore.Key, 0, len(seen))
	for _, k := range seen {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Fingerprint < out[j].Fingerprint })
	return out
}

func cutMessage(m *Manifest) string {
	images, manifests := m.counts()
	var b strings.Builder
	fmt.Fprintf(&b, "release %s: %d image(s), %d platform manifest(s)\n\n", m.Release, images, manifests)
	fmt.Fprintf(&b, "Every manifest is signed by at least %d maintainer key(s).\n", m.Threshold)
	fmt.Fprintf(&b, "%s lists the per-platform manifest digests;\n", ManifestPath(m.Release, DigestListFile))
	fmt.Fprintf(&b, "%s adds tags, platforms and signers.\n", ManifestPath(m.Release, ManifestFile))
	return b.String()
}

// tagMessage lists every image, version, platform digest and signer.
func tagMessage(m *Manifest) string {
	images, manifests := m.counts()
	var b strings.Builder
	fmt.Fprintf(&b, "release %s\n\n", m.Release)
	fmt.Fprintf(&b, "%d image(s), %d platform manifest(s), each signed by at least %d maintainer key(s).\n", images, manifests, m.Threshold)
	for _, img := range m.Images {
		fmt.Fprintf(&b, "\n%s %s\n", img.Name, img.Tag)
		for _, p := range img.Platforms {
			names := make([]string, len(p.Signers))
			for i, s := range p.Signers {
				names[i] = ShortName(s.Name)
			}
			fmt.Fprintf(&b, "  %s %s signed by %s\n", p.Platform, p.Digest, strings.Join(names, ", "))
		}
	}
	b.WriteString("\nSigners:\n")
	for _, k := range m.Signers() {
		fmt.Fprintf(&b, "  %s %s\n", k.Fingerprint, k.Name)
	}
	return b.String()
}

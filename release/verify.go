package release

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/sigstore"
)

// CheckOptions says what status and verify judge, and against which trust
// root.
type CheckOptions struct {
	// Scope narrows the check; the zero Scope is the whole repository.
	Scope Scope
	// Keys replaces the repository's keyring as the trust root: a
	// consumer's own list of maintainer keys.
	Keys *sigstore.Keyring
	// Threshold replaces the repository's threshold when not 0.
	Threshold int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// StrictClients counts only signatures that stock clients with the
	// current keyring accept now (EvaluateOptions.StrictClients).
	StrictClients bool
}

// Status judges the repository at HEAD (a checkout or a bare repository)
// within scope and tallies the quorum. It reads and updates the
// verification cache in the git directory; failing to save it is a
// warning, never an error.
//
// A scope that names nothing is an error: a release without build records
// (ErrUnknownRelease), a NAME with no image (ErrUnknownImage); each names
// the closest existing names.
func Status(ctx context.Context, repo *gitstore.Repo, opts CheckOptions) (*Report, error) {
	st, err := LoadHead(repo)
	if err != nil {
		return nil, err
	}
	if err := checkScope(st, opts.Scope); err != nil {
		return nil, err
	}
	return status(ctx, repo, st, opts)
}

// status is Status on the loaded st, with the scope checked.
func status(ctx context.Context, repo *gitstore.Repo, st *State, opts CheckOptions) (*Report, error) {
	keys := opts.Keys
	if keys == nil {
		keys = st.Keys
	}
	cache := OpenVerifyCache(repo, keys)
	ev, err := Evaluate(ctx, st, EvaluateOptions{Scope: opts.Scope, Keys: keys, Threshold: opts.Threshold, Cache: cache, Now: opts.Now,
		StrictClients: opts.StrictClients})
	if err != nil {
		return nil, err
	}
	// Saving the cache (megabytes after a cold run) overlaps the tally.
	saved := make(chan error, 1)
	go func() { saved <- cache.Save() }()
	rep := ev.Tally(opts.Scope)
	if err := <-saved; err != nil {
		rep.Warnings = append(rep.Warnings, err.Error()+" (the next run verifies everything again)")
	}
	return rep, nil
}

// VerifyOptions says what Verify checks: the quorum within scope and,
// optionally, the digests of a local build or of images in a registry.
type VerifyOptions struct {
	CheckOptions
	// Local are the images of your own build (buildout.Read): each
	// per-platform digest must be one that met quorum.
	Local []buildout.Image
	// Registry are image references, "docker://host/ns/name:tag" or
	// "host/ns/name:tag" (or @sha256:<hex>): the digests the registry
	// serves must be ones that met quorum.
	Registry []string
	// Keychain authenticates to registries; nil is anonymous.
	Keychain authn.Keychain
}

// Outcome is the verdict of Verify, from best to worst: what a script
// branches on.
type Outcome string

// Outcomes of Verify. When several apply, the worst wins: invalid, then
// mismatch, then no-quorum.
const (
	// OutcomeOK: every image in scope meets quorum without divergence, no
	// file is invalid, and every compared digest met quorum.
	OutcomeOK Outcome = "ok"
	// OutcomeNoQuorum: an image is missing signatures, is divergent, is
	// backed only by untrusted or duplicate signatures, or a compared image
	// has no digest that met quorum to compare with.
	OutcomeNoQuorum Outcome = "no-quorum"
	// OutcomeMismatch: a local build or a registry serves a digest other
	// than the one that met quorum.
	OutcomeMismatch Outcome = "mismatch"
	// OutcomeInvalid: a signature file in scope does not parse or verify,
	// or claims another digest or image than the place it sits in.
	OutcomeInvalid Outcome = "invalid"
)

// VerifyResult is the report of Verify.
type VerifyResult struct {
	*Report
	// Comparisons are the digests of the local build and the registry,
	// each against what met quorum.
	Comparisons []Comparison `json:"comparisons"`
	// Outcome is the verdict.
	Outcome Outcome `json:"outcome"`
}

// Comparison states of a compared digest.
const (
	CompareMatch    = "match"     // the digest met quorum
	CompareDiffers  = "differs"   // another digest met quorum for this image and platform
	CompareNoQuorum = "no-quorum" // no digest of this image and platform met quorum
)

// Comparison is one per-platform digest of a local build or a registry
// image, checked against the digests that met quorum.
type Comparison struct {
	// Source is "local" or "registry".
	Source string `json:"source"`
	// Location is the layout directory or the registry reference.
	Location string `json:"location"`
	Name     string `json:"name"`
	Tag      string `json:"tag,omitempty"`
	Platform string `json:"platform,omitempty"`
	Digest   string `json:"digest"`
	// Quorum are the digests that met quorum for this image and platform.
	Quorum []string `json:"quorum"`
	// State is CompareMatch, CompareDiffers or CompareNoQuorum.
	State string `json:"state"`
}

// Verify is the pass/fail gate over the repository at HEAD: Status, then
// the comparisons, then the Outcome. With local or registry images and no
// names in scope, the scope is the names of those images.
func Verify(ctx context.Context, repo *gitstore.Repo, opts VerifyOptions) (*VerifyResult, error) {
	st, err := LoadHead(repo)
	if err != nil {
		return nil, err
	}
	if err := checkScope(st, opts.Scope); err != nil {
		return nil, err
	}
	refs := make([]registryRef, 0, len(opts.Registry))
	for _, s := range opts.Registry {
		r, err := parseRegistryRef(s, st.Policy)
		if err != nil {
			return nil, err
		}
		refs = append(refs, r)
	}
	if len(opts.Scope.Names) == 0 && (len(opts.Local) > 0 || len(refs) > 0) {
		for _, img := range opts.Local {
			opts.Scope.Names = append(opts.Scope.Names, img.Name)
		}
		for _, r := range refs {
			opts.Scope.Names = append(opts.Scope.Names, r.name)
		}
		slices.Sort(opts.Scope.Names)
		opts.Scope.Names = slices.Compact(opts.Scope.Names)
	}
	// Ask the registries first: an unreachable registry fails fast, before
	// the work of verifying.
	var remote []fetchedImage
	for _, r := range refs {
		img, err := fetchRegistry(ctx, r, opts.Keychain)
		if err != nil {
			return nil, err
		}
		remote = append(remote, img)
	}
	// Names that come from the local build or the registry need not be
	// in the repository: comparing them says they did not meet quorum.
	rep, err := status(ctx, repo, st, opts.CheckOptions)
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{Report: rep, Comparisons: []Comparison{}}
	for _, img := range opts.Local {
		var ms []fetchedManifest
		for _, m := range img.Manifests {
			ms = append(ms, fetchedManifest{digest: m.Digest, platform: m.Platform})
		}
		res.Comparisons = append(res.Comparisons, compare(rep, "local", img.Dir, img.Name, img.Tag, ms)...)
	}
	for _, img := range remote {
		res.Comparisons = append(res.Comparisons, compare(rep, "registry", img.ref.String(), img.ref.name, img.ref.tag, img.manifests)...)
	}
	res.Outcome = res.outcome()
	return res, nil
}

func (r *VerifyResult) outcome() Outcome {
	if r.Invalid() {
		return OutcomeInvalid
	}
	if slices.ContainsFunc(r.Comparisons, func(c Comparison) bool { return c.State == CompareDiffers }) {
		return OutcomeMismatch
	}
	if !r.QuorumMet() || slices.ContainsFunc(r.Comparisons, func(c Comparison) bool { return c.State == CompareNoQuorum }) {
		return OutcomeNoQuorum
	}
	return OutcomeOK
}

// compare checks the per-platform digests of image name:tag (tag "" for an
// image named by digest: any tag) against the digests that met quorum.
func compare(rep *Report, source, location, name, tag string, manifests []fetchedManifest) []Comparison {
	var out []Comparison
	for _, m := range manifests {
		c := Comparison{Source: source, Location: location, Name: name, Tag: tag, Platform: m.platform, Digest: m.digest, Quorum: []string{}}
		for _, img := range rep.Images {
			if img.Name != name || (tag != "" && img.Tag != tag) {
				continue
			}
			for _, d := range img.Digests {
				// A digest whose platform nobody knows is compared with
				// every platform.
				samePlatform := d.Platform == m.platform || d.Platform == "" || d.Platform == "unknown" || m.platform == ""
				if d.Quorum && samePlatform && !slices.Contains(c.Quorum, d.Digest) {
					c.Quorum = append(c.Quorum, d.Digest)
				}
			}
		}
		slices.Sort(c.Quorum)
		switch {
		case slices.Contains(c.Quorum, m.digest):
			c.State = CompareMatch
		case len(c.Quorum) > 0:
			c.State = CompareDiffers
		default:
			c.State = CompareNoQuorum
		}
		out = append(out, c)
	}
	return out
}

// fetchedManifest is one per-platform manifest of a compared image.
type fetchedManifest struct {
	digest, platform string
}

// trimDocker removes the docker:// transport prefix of a reference.
func trimDocker(s string) string { return strings.TrimPrefix(s, "docker://") }

package release

import (
	"context"
	"slices"
	"time"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/quorum"
	"github.com/tally-sig/tally/release/registry"
	"github.com/tally-sig/tally/sigstore"
)

// CheckOptions says what status and verify judge, and against which trust
// root.
type CheckOptions struct {
	// Scope narrows the check; the zero Scope is the whole repository.
	Scope quorum.Scope
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
func Status(ctx context.Context, repo *gitstore.Repo, opts CheckOptions) (*quorum.Report, error) {
	st, err := policy.LoadHead(repo)
	if err != nil {
		return nil, err
	}
	if err := checkScope(st, opts.Scope); err != nil {
		return nil, err
	}
	return status(ctx, repo, st, opts)
}

// status is Status on the loaded st, with the scope checked.
func status(ctx context.Context, repo *gitstore.Repo, st *policy.State, opts CheckOptions) (*quorum.Report, error) {
	keys := opts.Keys
	if keys == nil {
		keys = st.Keys
	}
	cache := quorum.OpenVerifyCache(repo, keys)
	ev, err := quorum.Evaluate(ctx, st, quorum.EvaluateOptions{Scope: opts.Scope, Keys: keys, Threshold: opts.Threshold, Cache: cache, Now: opts.Now,
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
	Keychain registry.Keychain
	// TLS says which CAs to trust (--cert-dir) and which registries are
	// reached without verifying their certificate (--insecure-registry).
	TLS registry.TLSOptions
}

// Outcome is quorum.Outcome, the verdict of Verify: what a script branches on.
type Outcome = quorum.Outcome

// Outcomes of Verify (see quorum.Outcome).
const (
	OutcomeOK       = quorum.OutcomeOK
	OutcomeNoQuorum = quorum.OutcomeNoQuorum
	OutcomeMismatch = quorum.OutcomeMismatch
	OutcomeInvalid  = quorum.OutcomeInvalid
)

// VerifyResult is the report of Verify.
type VerifyResult struct {
	*quorum.Report
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
	st, err := policy.LoadHead(repo)
	if err != nil {
		return nil, err
	}
	if err := checkScope(st, opts.Scope); err != nil {
		return nil, err
	}
	refs := make([]registry.RegistryRef, 0, len(opts.Registry))
	for _, s := range opts.Registry {
		r, err := registry.ParseRegistryRef(s, st.Policy)
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
			opts.Scope.Names = append(opts.Scope.Names, r.Name)
		}
		slices.Sort(opts.Scope.Names)
		opts.Scope.Names = slices.Compact(opts.Scope.Names)
	}
	// Ask the registries first: an unreachable registry fails fast, before
	// the work of verifying.
	var remote []registry.FetchedImage
	for _, r := range refs {
		img, err := registry.FetchRegistry(ctx, r, opts.Keychain, opts.TLS)
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
		var ms []registry.FetchedManifest
		for _, m := range img.Manifests {
			ms = append(ms, registry.FetchedManifest{Digest: m.Digest, Platform: m.Platform})
		}
		res.Comparisons = append(res.Comparisons, compare(rep, "local", img.Dir, img.Name, img.Tag, ms)...)
	}
	for _, img := range remote {
		res.Comparisons = append(res.Comparisons, compare(rep, "registry", img.Ref.String(), img.Ref.Name, img.Ref.Tag, img.Manifests)...)
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
func compare(rep *quorum.Report, source, location, name, tag string, manifests []registry.FetchedManifest) []Comparison {
	var out []Comparison
	for _, m := range manifests {
		c := Comparison{Source: source, Location: location, Name: name, Tag: tag, Platform: m.Platform, Digest: m.Digest, Quorum: []string{}}
		for _, img := range rep.Images {
			if img.Name != name || (tag != "" && img.Tag != tag) {
				continue
			}
			for _, d := range img.Digests {
				// A digest whose platform nobody knows is compared with
				// every platform.
				samePlatform := d.Platform == m.Platform || d.Platform == "" || d.Platform == "unknown" || m.Platform == ""
				if d.Quorum && samePlatform && !slices.Contains(c.Quorum, d.Digest) {
					c.Quorum = append(c.Quorum, d.Digest)
				}
			}
		}
		slices.Sort(c.Quorum)
		switch {
		case slices.Contains(c.Quorum, m.Digest):
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

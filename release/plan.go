package release

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/quorum"
	"github.com/tally-sig/tally/sigstore"
)

// ErrNotReady means a release cannot be cut or published: an image is below
// quorum, divergent, or backed by an invalid signature file. The error is a
// *NotReadyError carrying the plan that says why.
var ErrNotReady = errors.New("release is not ready")

// Kinds of Blocker: what keeps a release from being cut.
const (
	BlockEmpty           = "empty"             // no image recorded for the release
	BlockBelowQuorum     = "below-quorum"      // a platform has fewer than M counted signatures
	BlockDivergent       = "divergent"         // maintainers built different digests for one platform
	BlockInvalid         = "invalid-signature" // a signature file of the release is invalid
	BlockSeveralTags     = "several-tags"      // one image name under two tags in one release
	BlockUnknownTag      = "unknown-tag"       // signatures whose payload names no tag
	BlockUnknownPlatform = "unknown-platform"  // a signed digest no build record places on a platform
)

// Plan is what a release would publish, image by image, and everything that
// blocks it. It is computed from the signatures and build records at one
// commit; a release is cut only from a plan with no blockers.
type Plan struct {
	Release   string `json:"release"`
	Commit    string `json:"commit"` // the commit the plan was computed at
	Threshold int    `json:"threshold"`
	// Maintainers are the trusted keys the quorum was counted against.
	Maintainers []sigstore.Key `json:"maintainers"`
	// Images are every image recorded for the release, sorted by name.
	Images []PlannedImage `json:"images"`
	// Blockers say what must happen before the release can be cut; none
	// means it is ready.
	Blockers []Blocker `json:"blockers"`
	// Warnings are problems that do not block the release (untrusted or
	// duplicate signatures, numbering gaps, unreadable build records).
	Warnings []quorum.Problem `json:"warnings"`
	// Tagged is the commit the release tag points at when the release was
	// cut already ("" when not).
	Tagged string `json:"tagged,omitempty"`
}

// PlannedImage is one image of a plan: the released form plus its quorum.
type PlannedImage struct {
	ReleasedImage
	Quorum    bool `json:"quorum"`
	Divergent bool `json:"divergent"`
	// Divergences are the competing digests of the platforms maintainers
	// built differently, each with the keys whose signatures count for it;
	// those platforms are not in Platforms.
	Divergences []ReleasedPlatform `json:"divergences,omitempty"`
}

// ReleasedImage is one image of a release: name, tag and, per platform, the
// manifest digest that met quorum and the keys whose signatures counted.
type ReleasedImage struct {
	Name      string             `json:"name"`
	Tag       string             `json:"tag"`
	Reference string             `json:"reference"` // the signed identity, <identity_prefix>/<name>:<tag>
	Platforms []ReleasedPlatform `json:"platforms"`
}

// ReleasedPlatform is one per-platform image manifest of a released image.
type ReleasedPlatform struct {
	Platform string         `json:"platform"` // "linux/amd64"
	Digest   string         `json:"digest"`   // "sha256:<hex>" of the exact manifest bytes
	Signers  []sigstore.Key `json:"signers"`  // keys whose signatures counted, by fingerprint
}

// Blocker is one reason a release cannot be cut yet.
type Blocker struct {
	Image   string `json:"image,omitempty"` // "name:tag", "" for the whole release
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// Ready reports whether nothing blocks the release.
func (p *Plan) Ready() bool { return len(p.Blockers) == 0 }

// Invalid reports whether a blocker is an invalid signature file: the same
// judgement that makes tally status exit 2.
func (p *Plan) Invalid() bool {
	for _, b := range p.Blockers {
		if b.Kind == BlockInvalid {
			return true
		}
	}
	return false
}

// Released returns the images of a ready plan in their released form.
func (p *Plan) Released() []ReleasedImage {
	out := make([]ReleasedImage, len(p.Images))
	for i, img := range p.Images {
		out[i] = img.ReleasedImage
	}
	return out
}

// NotReadyError is the error of cut, publish and policy export when the plan
// of the release has blockers. It wraps ErrNotReady.
type NotReadyError struct {
	Plan *Plan
}

func (e *NotReadyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "release %s is not ready: %d blocker(s)", e.Plan.Release, len(e.Plan.Blockers))
	for _, bl := range e.Plan.Blockers {
		b.WriteString("\n")
		if bl.Image != "" {
			b.WriteString(bl.Image + ": ")
		}
		b.WriteString(bl.Message)
	}
	return b.String()
}

// Unwrap returns ErrNotReady.
func (e *NotReadyError) Unwrap() error { return ErrNotReady }

// PlanOptions says which release to plan.
type PlanOptions struct {
	Release string           // the release version, as given to tally sign --release
	Now     func() time.Time // the clock for key lifetimes; time.Now when nil
	// StrictClients counts only signatures that stock podman and skopeo
	// with the current keyring accept (see Signer.Clients): for releases
	// published to stock consumers.
	StrictClients bool
}

// NewPlan computes the plan of a release at the tip of the checked-out
// branch, under the repository's own trust policy: every signature and build
// record is judged (with the verification cache), the quorum counted, and
// every image below quorum, divergent, or with an invalid signature file
// becomes a blocker.
func NewPlan(ctx context.Context, repo *gitstore.Repo, opts PlanOptions) (*Plan, error) {
	if err := policy.CheckReleaseName(opts.Release); err != nil {
		return nil, err
	}
	st, err := policy.LoadHead(repo)
	if err != nil {
		return nil, err
	}
	p, err := planAt(ctx, st, opts.Release, opts.Now, opts.StrictClients)
	if err != nil {
		return nil, err
	}
	if h, ok := tagTarget(repo, opts.Release); ok {
		p.Tagged = h.String()
	}
	return p, nil
}

// tagTarget returns the commit the tag of a release points at, if it exists.
func tagTarget(repo *gitstore.Repo, release string) (plumbing.Hash, bool) {
	h, err := repo.ResolveRevision(string(plumbing.NewTagReferenceName(release)))
	if err != nil {
		return plumbing.ZeroHash, false
	}
	return h, true
}

// planAt evaluates st (its policy and keys are the trust root) and plans release.
func planAt(ctx context.Context, st *policy.State, release string, now func() time.Time, strictClients ...bool) (*Plan, error) {
	if err := checkScope(st, quorum.Scope{Release: release}); err != nil {
		return nil, err
	}
	cache := quorum.OpenVerifyCache(st.Repo, st.Keys)
	ev, err := quorum.Evaluate(ctx, st, quorum.EvaluateOptions{Keys: st.Keys, Threshold: st.Policy.Threshold, Cache: cache, Now: now,
		StrictClients: len(strictClients) > 0 && strictClients[0]})
	if err != nil {
		return nil, err
	}
	// The cache only saves work next time; failing to write it loses nothing.
	_ = cache.Save()
	p := planFromReport(ev.Tally(quorum.Scope{Release: release}))
	p.Release = release
	p.Commit = st.Tip.String()
	return p, nil
}

// planFromReport turns a quorum report of one release into a plan.
func planFromReport(rep *quorum.Report) *Plan {
	p := &Plan{Threshold: rep.Threshold, Maintainers: rep.Maintainers,
		Images: []PlannedImage{}, Blockers: []Blocker{}, Warnings: []quorum.Problem{}}
	names := map[string]string{}
	for _, k := range rep.Maintainers {
		names[k.Fingerprint] = k.Name
	}
	nameOf := func(fpr string) string {
		if n, ok := names[fpr]; ok {
			return ShortName(n)
		}
		return fpr + " (not a maintainer)"
	}

	tags := map[string][]string{}
	for _, img := range rep.Images {
		if img.Superseded {
			continue // signatures left over from a rebuild: not part of the release
		}
		id := img.Name + ":" + img.Tag
		if img.Tag == "" {
			id = img.Name
		}
		pi := PlannedImage{
			ReleasedImage: ReleasedImage{Name: img.Name, Tag: img.Tag, Reference: img.Reference, Platforms: []ReleasedPlatform{}},
			Quorum:        img.Quorum,
			Divergent:     img.Divergent,
		}
		tags[img.Name] = append(tags[img.Name], img.Tag)
		block := func(kind, format string, args ...any) {
			p.Blockers = append(p.Blockers, Blocker{Image: id, Kind: kind, Message: fmt.Sprintf(format, args...)})
		}
		if img.Tag == "" {
			block(BlockUnknownTag, "signatures whose payload names no tag (see the invalid files below)")
		}

		// Group digests by platform; a digest of unknown platform is its own group.
		byPlatform := map[string][]quorum.DigestStatus{}
		for _, d := range img.Digests {
			byPlatform[d.Platform] = append(byPlatform[d.Platform], d)
		}
		platforms := make([]string, 0, len(byPlatform))
		for pl := range byPlatform {
			platforms = append(platforms, pl)
		}
		sort.Strings(platforms)
		for _, pl := range platforms {
			ds := byPlatform[pl]
			if pl == "" || pl == "unknown" {
				for _, d := range ds {
					block(BlockUnknownPlatform, "%s (%d of %d signatures): the build records do not say which platform it is for",
						ShortDigest(d.Digest), d.Count, rep.Threshold)
				}
				continue
			}
			if len(ds) > 1 {
				var parts []string
				for _, d := range ds {
					pi.Divergences = append(pi.Divergences, ReleasedPlatform{Platform: pl, Digest: d.Digest, Signers: countedSigners(d, names)})
					who := make([]string, 0, len(d.BuiltBy))
					for _, f := range d.BuiltBy {
						who = append(who, nameOf(f))
					}
					by := "signed only"
					if len(who) > 0 {
						by = "built by " + strings.Join(who, ", ")
					}
					parts = append(parts, fmt.Sprintf("%s %s (%d signature(s) count)", ShortDigest(d.Digest), by, d.Count))
				}
				block(BlockDivergent, "divergent builds of %s: %s", pl, strings.Join(parts, "; "))
				continue
			}
			d := ds[0]
			rp := ReleasedPlatform{Platform: pl, Digest: d.Digest, Signers: countedSigners(d, names)}
			var notCounted []string
			for _, s := range d.Signers {
				if s.Counted {
					continue
				}
				why := s.Reason
				if !s.Trusted {
					why = "not a maintainer key"
				}
				notCounted = append(notCounted, fmt.Sprintf("%s: %s", nameOf(s.Fingerprint), why))
			}
			if !d.Quorum {
				who := make([]string, 0, len(rp.Signers))
				for _, k := range rp.Signers {
					who = append(who, ShortName(k.Name))
				}
				msg := fmt.Sprintf("%s %s has %d of %d signature(s)", pl, ShortDigest(d.Digest), d.Count, rep.Threshold)
				if len(who) > 0 {
					msg += " (" + strings.Join(who, ", ") + ")"
				}
				if len(notCounted) > 0 {
					msg += "; not counted: " + strings.Join(notCounted, "; ")
				}
				block(BlockBelowQuorum, "%s", msg)
			}
			pi.Platforms = append(pi.Platforms, rp)
		}
		if len(img.Digests) == 0 {
			block(BlockBelowQuorum, "no signed digest")
		}
		p.Images = append(p.Images, pi)
	}
	for name, ts := range tags {
		if len(ts) > 1 {
			p.Blockers = append(p.Blockers, Blocker{Image: name, Kind: BlockSeveralTags,
				Message: fmt.Sprintf("recorded under %d tags (%s): a release publishes one version of each image", len(ts), strings.Join(ts, ", "))})
		}
	}
	if len(rep.Images) == 0 {
		p.Blockers = append(p.Blockers, Blocker{Kind: BlockEmpty,
			Message: "no maintainer recorded a build for this release: sign it first (tally sign --release VERSION)"})
	}
	for _, pr := range rep.Problems {
		if pr.Severity == string(sigstore.SeverityInvalid) {
			p.Blockers = append(p.Blockers, Blocker{Kind: BlockInvalid, Message: fmt.Sprintf("%s: %s", pr.Path, pr.Error)})
			continue
		}
		p.Warnings = append(p.Warnings, pr)
	}
	// Never a weaker gate than the quorum engine's own verdicts.
	if len(p.Blockers) == 0 && !rep.QuorumMet() {
		p.Blockers = append(p.Blockers, Blocker{Kind: BlockBelowQuorum, Message: "the quorum is not met (tally status shows why)"})
	}
	if rep.Invalid() && !p.Invalid() {
		p.Blockers = append(p.Blockers, Blocker{Kind: BlockInvalid, Message: "an invalid signature file belongs to the release (tally status shows it)"})
	}
	sort.SliceStable(p.Blockers, func(i, j int) bool { return p.Blockers[i].Image < p.Blockers[j].Image })
	return p
}

// countedSigners lists the keys whose signatures count for d, by fingerprint.
func countedSigners(d quorum.DigestStatus, names map[string]string) []sigstore.Key {
	out := []sigstore.Key{}
	seen := map[string]bool{}
	for _, s := range d.Signers {
		if s.Counted && !seen[s.Fingerprint] {
			seen[s.Fingerprint] = true
			out = append(out, sigstore.Key{Fingerprint: s.Fingerprint, Name: names[s.Fingerprint]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Fingerprint < out[j].Fingerprint })
	return out
}

// ShortName is quorum.ShortName, kept for the callers of release.
func ShortName(userID string) string { return quorum.ShortName(userID) }

// ShortDigest is quorum.ShortDigest, kept for the callers of release.
func ShortDigest(d string) string { return quorum.ShortDigest(d) }

package quorum

import (
	"slices"

	"github.com/tally-sig/tally/sigstore"
)

// Report is the quorum tally of a signatures repository, or of one release or
// some images of it: for every image and platform, which digests were built
// and signed by whom, whether M distinct trusted keys agree, and every
// problem found. Its JSON form is a contract for scripts: extend it, never
// break it.
type Report struct {
	// Threshold is M.
	Threshold int `json:"threshold"`
	// Release is the release in scope; "" for every release.
	Release string `json:"release,omitempty"`
	// Commit is the commit of the signatures repository that was judged.
	Commit string `json:"commit"`
	// Maintainers are the keys of the trust root.
	Maintainers []sigstore.Key `json:"maintainers"`
	// Images are sorted by name, tag and release.
	Images []ImageStatus `json:"images"`
	// Problems are sorted by path.
	Problems []Problem `json:"problems"`
	// Warnings are things that went wrong without changing the result,
	// such as a verification cache that could not be saved.
	Warnings []string `json:"warnings,omitempty"`
	// Verified counts the signatures whose cryptography was checked in this
	// run (the rest came from the verification cache).
	Verified int `json:"-"`
	// StrictClients is true when only signatures that stock clients
	// accept now were counted (--strict-clients).
	StrictClients bool `json:"strict_clients,omitempty"`
}

// ImageStatus is one image, NAME:TAG, as the build records of one release
// describe it; Release is "" for signed digests that no build record in
// scope lists.
type ImageStatus struct {
	// Reference is the docker reference signatures claim,
	// "<identity prefix>/<name>:<tag>".
	Reference string `json:"reference"`
	Name      string `json:"name"`
	Tag       string `json:"tag"`
	Release   string `json:"release"`
	// Quorum is true when every platform of the image has a digest signed
	// by at least Threshold distinct trusted keys.
	Quorum bool `json:"quorum"`
	// Divergent is true when build records name different digests for one
	// platform: the alarm that one build environment differs. It is never
	// shown as a mere missing signature.
	Divergent bool `json:"divergent"`
	// Superseded is true for an image without build records (Release "")
	// whose tag some release's build records list with other digests:
	// signatures left over from a rebuild. It is shown but does not decide
	// whether the report meets quorum.
	Superseded bool `json:"superseded"`
	// Legacy is true for an image without build records that only legacy
	// StageX signatures name (Release ""): shown below quorum, since
	// legacy signatures never count, so that it does not vanish; Tag is
	// "" when the legacy payloads name no tag.
	Legacy bool `json:"legacy"`
	// Digests are the per-platform manifest digests, sorted by platform and
	// digest.
	Digests []DigestStatus `json:"digests"`
	// Builds is the matrix platform x maintainer: what each one built.
	Builds []BuildCell `json:"builds"`
}

// DigestStatus is one per-platform manifest digest of an image.
type DigestStatus struct {
	Digest string `json:"digest"`
	// Platform is what build records say ("linux/amd64"); "" when no build
	// record lists the digest.
	Platform string `json:"platform"`
	// Quorum is true when Count reaches the threshold.
	Quorum bool `json:"quorum"`
	// Count is the number of distinct trusted primary keys whose signature
	// of this digest and tag counts.
	Count int `json:"count"`
	// Signers are the signature files of the digest's directory whose
	// signer is known, in path order.
	Signers []Signer `json:"signers"`
	// BuiltBy lists the fingerprints whose build records name this digest.
	BuiltBy []string `json:"built_by"`
}

// Signer is one signature file of a digest and what it counts for.
type Signer struct {
	// Fingerprint is the primary key's fingerprint, uppercase; for a key
	// outside the trust root, the issuer the signature names.
	Fingerprint string `json:"fingerprint"`
	Name        string `json:"name"`
	// Trusted is true when the key is in the trust root.
	Trusted bool `json:"trusted"`
	// Subkey is true when a subkey of the key made the signature.
	Subkey bool `json:"subkey"`
	// Counted is true when the signature counts towards this digest's
	// quorum.
	Counted bool `json:"counted"`
	// Reason says why it does not count.
	Reason string `json:"reason"`
	// Clients says why stock podman and skopeo with the current keyring
	// refuse a signature that counts for tally's quorum (the key expired
	// or was revoked as superseded or retired since it entered; a subkey
	// made it, which clients before containers/image 5.37 reject); ""
	// when they accept it. With --strict-clients such a signature does
	// not count.
	Clients string `json:"clients"`
	// Path is the signature file.
	Path string `json:"path"`
}

// Cell states of the build matrix.
const (
	CellMatch     = "match"     // built (or signed) the digest the others agree on
	CellDivergent = "divergent" // built a different digest for the same image and platform
	CellMissing   = "missing"   // no build and no counted signature for this platform
)

// BuildCell is what one maintainer built for one platform of an image.
type BuildCell struct {
	// Platform is the platform; for an image without build records, ""
	// and Digest names the cell's row instead.
	Platform    string `json:"platform"`
	Fingerprint string `json:"fingerprint"`
	Name        string `json:"name"`
	// Trusted is false for a build record by a key outside the trust root.
	Trusted bool   `json:"trusted"`
	Digest  string `json:"digest"`
	// State is CellMatch, CellDivergent or CellMissing.
	State string `json:"state"`
	// Signed is true when the maintainer's signature of Digest counts.
	Signed bool `json:"signed"`
	// Builder describes the machine of the run that recorded the build
	// ("linux/amd64 AuthenticAMD AMD EPYC 7B13, source 1a2b3c (dirty no)").
	Builder string `json:"builder"`
}

// Problem is something wrong with a file of the repository.
type Problem struct {
	Path string `json:"path"`
	// Kind is a sigstore.Kind, KindKeyNotValid, KindSignatureExpired or
	// KindBadRecord.
	Kind string `json:"kind"`
	// Severity is "invalid" (the file does not parse or verify, or claims
	// another digest or image than the place it sits in) or "warning".
	Severity string `json:"severity"`
	Error    string `json:"error"`
}

// Invalid reports whether any file in scope is invalid.
func (r *Report) Invalid() bool {
	return slices.ContainsFunc(r.Problems, func(p Problem) bool { return p.Severity == string(sigstore.SeverityInvalid) })
}

// QuorumMet reports whether the report holds at least one image that is
// not superseded, and every such image meets quorum without divergent
// builds.
func (r *Report) QuorumMet() bool {
	n := 0
	for _, img := range r.Images {
		if img.Superseded {
			continue
		}
		if !img.Quorum || img.Divergent {
			return false
		}
		n++
	}
	return n > 0
}

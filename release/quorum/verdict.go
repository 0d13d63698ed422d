package quorum

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tally-sig/tally/sigstore"
)

// Outcome is the verdict of a report (Report.Verdict) or of release.Verify,
// from best to worst: what a script branches on.
type Outcome string

// The outcomes. When several apply, the worst wins: invalid, then
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

// Verdict is the outcome of the report alone (without the comparisons
// of release.Verify): invalid, no-quorum or ok.
func (rep *Report) Verdict() Outcome {
	switch {
	case rep.Invalid():
		return OutcomeInvalid
	case !rep.QuorumMet():
		return OutcomeNoQuorum
	}
	return OutcomeOK
}

// Failures says why an image fails: divergent platforms, and
// platforms without a digest that met
func (img ImageStatus) Failures(threshold int) []string {
	var out []string
	if img.Legacy {
		out = append(out, "legacy signatures only: they never count (stock clients reject them); sign again with tally")
	}
	for _, slot := range img.Slots() {
		rows := img.SlotRows(slot)
		label := slot
		if img.Release == "" {
			label = ShortDigest(slot)
		}
		if len(rows) > 1 {
			var who []string
			for _, c := range img.Builds {
				if c.Platform == slot && c.Digest != "" {
					who = append(who, fmt.Sprintf("%s built %s", DisplayName(c.Name, c.Fingerprint), ShortDigest(c.Digest)))
				}
			}
			out = append(out, fmt.Sprintf("divergent builds of %s: %s", label, strings.Join(who, "; ")))
			continue
		}
		if len(rows) == 0 || rows[0].Quorum {
			continue
		}
		d := rows[0]
		var counted, not []string
		for _, s := range d.Signers {
			switch {
			case s.Counted:
				counted = append(counted, DisplayName(s.Name, s.Fingerprint))
			case !s.Trusted:
				not = append(not, s.Fingerprint+" (not in the keyring)")
			default:
				not = append(not, DisplayName(s.Name, s.Fingerprint)+" ("+s.Reason+")")
			}
		}
		msg := fmt.Sprintf("%s %s has %d of %d signature(s)", label, ShortDigest(d.Digest), d.Count, threshold)
		if len(counted) > 0 {
			msg += " (" + strings.Join(counted, ", ") + ")"
		}
		if len(not) > 0 {
			msg += "; not counted: " + strings.Join(not, "; ")
		}
		out = append(out, msg)
	}
	if len(out) == 0 {
		out = append(out, "no signed digest")
	}
	return out
}

// The matrix of status: a column per key, a row (slot) per platform of an
// image (or per digest, for an image without build records).

// Column is one maintainer (or builder outside the trust root) of the
// matrix.
type Column struct {
	Fingerprint, Title string
}

// Columns lists the trust root's keys that the matrix has cells for (all,
// or of a large keyring those that signed or built something), then
// builders outside it, with short titles that are unique.
func (rep *Report) Columns() []Column {
	var cols []Column
	seen := map[string]bool{}
	inMatrix := map[string]bool{}
	for _, img := range rep.Images {
		for _, c := range img.Builds {
			inMatrix[c.Fingerprint] = true
		}
	}
	for _, k := range rep.Maintainers {
		if !inMatrix[k.Fingerprint] {
			continue
		}
		cols = append(cols, Column{Fingerprint: k.Fingerprint, Title: title(k.Name, k.Fingerprint)})
		seen[k.Fingerprint] = true
	}
	for _, img := range rep.Images {
		for _, c := range img.Builds {
			if !seen[c.Fingerprint] {
				seen[c.Fingerprint] = true
				cols = append(cols, Column{Fingerprint: c.Fingerprint, Title: title(c.Name, c.Fingerprint) + "?"})
			}
		}
	}
	slices.SortStableFunc(cols, func(a, b Column) int { return strings.Compare(strings.ToLower(a.Title), strings.ToLower(b.Title)) })
	count := map[string]int{}
	for _, c := range cols {
		count[c.Title]++
	}
	for i := range cols {
		if count[cols[i].Title] > 1 {
			cols[i].Title += "/" + cols[i].Fingerprint[len(cols[i].Fingerprint)-4:]
		}
	}
	return cols
}

// title is the short name of a key for a column: the first word of its
// name, or the end of its fingerprint.
func title(userID, fpr string) string {
	if n := ShortName(userID); n != "" {
		return strings.Fields(n)[0]
	}
	if len(fpr) > 8 {
		return fpr[len(fpr)-8:]
	}
	return fpr
}

// Slots lists the rows of an image's matrix: its platforms, or for an
// image without build records its digests.
func (img ImageStatus) Slots() []string {
	var out []string
	for _, c := range img.Builds {
		k := img.Slot(c.Platform, c.Digest)
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		for _, d := range img.Digests {
			out = append(out, img.Slot(d.Platform, d.Digest))
		}
	}
	return out
}

// Slot is the slot (row) a build or digest of the image is in: its platform,
// or for an image outside a release its digest.
func (img ImageStatus) Slot(platform, digest string) string {
	if img.Release == "" {
		return digest
	}
	return platform
}

// SlotRows returns the digest rows of one slot.
func (img ImageStatus) SlotRows(slot string) []DigestStatus {
	var out []DigestStatus
	for _, d := range img.Digests {
		if img.Slot(d.Platform, d.Digest) == slot {
			out = append(out, d)
		}
	}
	return out
}

// DisplayName is how a key is named to a person: the name of its user ID,
// or its fingerprint marked as not in the keyring.
func DisplayName(userID, fpr string) string {
	if n := ShortName(userID); n != "" {
		return n
	}
	return fpr + " (not in the keyring)"
}

// ShortName returns the name part of an OpenPGP user ID ("Alice Builder"
// from "Alice Builder (test) <alice@example.org>"), as commits name their
// author ("tally" for a user ID without a name).
func ShortName(userID string) string {
	if userID == "" {
		return ""
	}
	if name, _ := sigstore.ParseUserID(userID); name != "" {
		return name
	}
	return "tally"
}

// ShortDigest abbreviates "sha256:<hex>" to its first 12 hex digits, for
// display only.
func ShortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

package sigstore

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// Verdict is the judgement of one signature file.
type Verdict struct {
	// Location is where the file is.
	Location Location `json:"location"`
	// Signature is what Verify learned; partly filled for some problems
	// (see Verify).
	Signature Signature `json:"signature"`
	// Problem is what is wrong; "" when the signature is good and counts.
	Problem Kind `json:"problem,omitempty"`
	// Severity is Problem.Severity().
	Severity Severity `json:"severity,omitempty"`
	// Message explains Problem in lower case; "" when there is none.
	Message string `json:"message,omitempty"`
}

// OK reports whether the file is a good signature that counts: no problem
// of any severity.
func (v Verdict) OK() bool { return v.Problem == "" }

func (v Verdict) with(kind Kind, format string, args ...any) Verdict {
	v.Problem = kind
	v.Severity = kind.Severity()
	v.Message = fmt.Sprintf(format, args...)
	return v
}

// Judge is the one judgement of a signature file that every tally command
// uses: Verify, then JudgeVerified. wantRepository is the repository the
// signature must name, in any form containers/image normalises
// ("stagex/core-gcc" or "docker.io/stagex/core-gcc"). Key lifetimes are
// judged separately (Keyring.ValidAt) and directory-level problems by
// JudgeDirectory.
func Judge(loc Location, wantRepository string, blob []byte, keys *Keyring) Verdict {
	sig, err := Verify(blob, keys)
	return JudgeVerified(loc, wantRepository, sig, err)
}

// JudgeVerified is Judge for a result of Verify that the caller may have
// cached: it checks the location, then the Verify error, then that the
// payload names loc's digest and a tag of wantRepository.
func JudgeVerified(loc Location, wantRepository string, sig Signature, verifyErr error) Verdict {
	v := Verdict{Location: loc, Signature: sig}
	if err := loc.Validate(); err != nil {
		return v.with(KindMalformedPath, "%v", err)
	}
	if loc.Number == 0 {
		return v.with(KindMalformedPath, "%s names a directory, not a signature file", loc.Dir())
	}
	if verifyErr != nil {
		var p *Problem
		if !errors.As(verifyErr, &p) || p.Kind == "" {
			return v.with(KindMalformed, "%v", verifyErr)
		}
		return v.with(p.Kind, "%s", p.Message)
	}
	if sig.Payload.Digest != loc.Digest {
		return v.with(KindWrongDigest, "the payload signs %s, not %s", sig.Payload.Digest, loc.Digest)
	}
	want, err := NormalizeRepository(wantRepository)
	if err != nil {
		return v.with(KindWrongIdentity, "cannot check the identity: expected repository: %v", err)
	}
	ref, err := parseSignedReference(sig.Payload.Reference)
	if err != nil {
		return v.with(KindWrongIdentity, "%v", err)
	}
	if ref.repository != want {
		return v.with(KindWrongIdentity, "the payload signs %q, a tag of %s, not of %s", sig.Payload.Reference, ref.repository, want)
	}
	return v
}

// JudgeDirectory adds the problems that only a whole signature directory
// shows to the verdicts of its files, and returns them sorted by directory
// and number (verdicts of several directories are judged per directory;
// malformed-path verdicts come last, unchanged). Readers stop at the first
// missing number, so every file after a gap gets KindGap. When a file that
// readers reach poisons the directory (Kind.Poisons), every other file
// before the gap gets KindPoisoned. Of the remaining good signatures by one
// primary key (a subkey counts as its primary key), the second and later get
// KindDuplicateSigner. These replace ok and warning verdicts; an invalid
// verdict is kept.
func JudgeDirectory(verdicts []Verdict) []Verdict {
	out := slices.Clone(verdicts)
	slices.SortStableFunc(out, func(a, b Verdict) int {
		am, bm := a.Problem == KindMalformedPath, b.Problem == KindMalformedPath
		switch {
		case am != bm:
			if am {
				return 1
			}
			return -1
		case am:
			return 0
		}
		return cmp.Or(cmp.Compare(a.Location.Dir(), b.Location.Dir()), cmp.Compare(a.Location.Number, b.Location.Number))
	})
	for start := 0; start < len(out); {
		if out[start].Problem == KindMalformedPath {
			break
		}
		end := start + 1
		for end < len(out) && out[end].Problem != KindMalformedPath && out[end].Location.Dir() == out[start].Location.Dir() {
			end++
		}
		judgeOneDirectory(out[start:end])
		start = end
	}
	return out
}

// judgeOneDirectory marks gaps, poisoning and duplicate signers in the
// verdicts of one directory, sorted by number.
func judgeOneDirectory(dir []Verdict) {
	next := 1 // the number a reader looks for next
	missing := 0
	read := 0 // dir[:read] is what readers see
	for i := range dir {
		n := dir[i].Location.Number
		if missing == 0 && n > next {
			missing = next
		}
		if missing != 0 {
			if dir[i].Severity != SeverityInvalid {
				dir[i] = dir[i].with(KindGap, "signature-%d is missing, and readers stop there: they never see this file", missing)
			}
			continue
		}
		read = i + 1
		if n == next {
			next++
		}
	}
	for _, poison := range dir[:read] {
		if !poison.Problem.Poisons() {
			continue
		}
		for i := range dir[:read] {
			if dir[i].Severity != SeverityInvalid {
				dir[i] = dir[i].with(KindPoisoned, "signature-%d is %s, and clients then reject every signature of this image", poison.Location.Number, poison.Problem)
			}
		}
		break
	}
	first := map[string]int{}
	for i := range dir {
		if !dir[i].OK() {
			continue
		}
		signer := dir[i].Signature.Signer
		if prev, seen := first[signer]; seen {
			dir[i] = dir[i].with(KindDuplicateSigner, "key %s already signed this digest in signature-%d", signer, prev)
			continue
		}
		first[signer] = dir[i].Location.Number
	}
}

package sigstore

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
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
	// Clients is set (by JudgeLifetime) on a file that counts but that
	// stock podman and skopeo with the current keyring refuse now
	// (KindClientsRefuse): it says why. "" when they accept it.
	Clients string `json:"clients,omitempty"`
}

// OK reports whether the file is a good signature that counts: no problem
// of any severity.
func (v Verdict) OK() bool { return v.Problem == "" }

func (v Verdict) with(kind Kind, format string, args ...any) Verdict {
	v.Problem = kind
	v.Severity = kind.Severity()
	v.Message = fmt.Sprintf(format, args...)
	v.Clients = ""
	return v
}

// Malformed is the verdict on a file whose tree entry is no signature file
// that tally can judge: its path is not a lookaside location, it is not a
// regular file, or its name cannot be decoded. path is quoted in the
// message (a name may hold a newline or other control characters), and the
// verdict is KindMalformedPath, invalid.
func Malformed(path, reason string) Verdict {
	return Verdict{Problem: KindMalformedPath, Severity: KindMalformedPath.Severity(),
		Message: fmt.Sprintf("%q: %s", path, reason)}
}

// The whole judgement of a signature file, in this order:
//
//  1. format and cryptography (Verify);
//  2. location: the digest and the identity of its directory
//     (JudgeVerified), for current and legacy payloads alike;
//  3. the signature's own expiry and the key's lifetime at the times the
//     caller names (JudgeLifetime);
//  4. the directory rules (JudgeDirectory): numbering gaps, poisoning and
//     duplicate signers, over the files that still count after 1-3, so an
//     expired or invalid file never takes a key's slot.
//
// JudgeFiles runs all four; Judge runs 1 and 2.

// Judge is format, cryptography and location of one signature file:
// Verify, then JudgeVerified. wantRepository is the repository the
// signature must name, in any form containers/image normalises
// ("stagex/core-gcc" or "docker.io/stagex/core-gcc"). Lifetimes are judged
// by JudgeLifetime and directory-level problems by JudgeDirectory;
// JudgeFiles runs every step.
func Judge(loc Location, wantRepository string, blob []byte, keys *Keyring) Verdict {
	sig, err := Verify(blob, keys)
	return JudgeVerified(loc, wantRepository, sig, err)
}

// JudgeVerified is Judge for a result of Verify that the caller may have
// cached: it checks the location, then the Verify error, then that the
// payload names loc's digest and a tag of wantRepository. A legacy payload
// gets the same location checks on what it claims (a legacy file claiming
// another digest or image is invalid), and is otherwise KindLegacy.
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
		if p.Kind == KindLegacy {
			if bad := legacyLocation(loc, wantRepository, sig.Payload); bad.Problem != "" {
				bad.Signature = sig
				return bad
			}
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

// legacyLocation checks what a legacy payload claims against its location:
// a zero Verdict when it claims nothing else, else wrong-digest or
// wrong-identity. Legacy payloads name the repository usually without a
// tag; a claim that is empty is not checked.
func legacyLocation(loc Location, wantRepository string, claim Payload) Verdict {
	v := Verdict{Location: loc}
	if claim.Digest != "" && claim.Digest != loc.Digest {
		return v.with(KindWrongDigest, "the legacy payload signs %s, not %s", claim.Digest, loc.Digest)
	}
	if claim.Reference == "" {
		return Verdict{}
	}
	want, err := NormalizeRepository(wantRepository)
	if err != nil {
		return v.with(KindWrongIdentity, "cannot check the identity: expected repository: %v", err)
	}
	repo := ""
	if ref, err := parseDockerReference(claim.Reference); err == nil {
		repo = ref.repository
	}
	switch {
	case repo == "":
		return v.with(KindWrongIdentity, "the legacy payload signs %q, which is not an image name", claim.Reference)
	case repo != want:
		return v.with(KindWrongIdentity, "the legacy payload signs %q, an image of %s, not of %s", claim.Reference, repo, want)
	}
	return Verdict{}
}

// Times names the times at which JudgeLifetime judges a signature.
type Times struct {
	// Entered is when the file entered the repository's history: the key
	// must have been valid then (an expired or soft-revoked key counts for
	// files that entered before). Status and verify use the first commit
	// holding the file (raised to its ancestors' times), the guard the
	// commit's time. Zero means Now (merge and sign: the file enters now).
	Entered time.Time
	// Now is the present: the signature must not have expired by then, and
	// the clients' view (Verdict.Clients) is judged at it.
	Now time.Time
	// KeyNow requires the key to be valid at Now as well: a file about to
	// enter the history (the guard with a clock, merge, sign) must not be
	// signed by a key that is already expired or revoked.
	KeyNow bool
}

// JudgeLifetime is step 3 of the judgement, for a verdict of JudgeVerified:
// a good signature (v.OK) gets KindSignatureExpired when its own expiry is
// not after t.Now, KindKeyNotValid when keys judge its key not valid at
// t.Entered (Keyring.ValidAt; and at t.Now with t.KeyNow). A signature that
// still counts gets Verdict.Clients when stock clients with keys refuse it
// at t.Now. Other verdicts are returned unchanged.
func JudgeLifetime(v Verdict, keys *Keyring, t Times) Verdict {
	if !v.OK() {
		return v
	}
	sig := v.Signature
	if !sig.Expires.IsZero() && !t.Now.Before(sig.Expires) {
		return v.with(KindSignatureExpired, "the signature expired on %s; clients reject it, so it never counts", stamp(sig.Expires))
	}
	entered := t.Entered
	if entered.IsZero() {
		entered = t.Now
	}
	if ok, why := keys.ValidAt(sig.Issuer, entered); !ok {
		return v.with(KindKeyNotValid, "%s", why)
	}
	validNow, whyNow := true, ""
	if !entered.Equal(t.Now) {
		validNow, whyNow = keys.validAt(sig.Issuer, t.Now, "")
	}
	if t.KeyNow && !validNow {
		return v.with(KindKeyNotValid, "%s: it cannot count from now on", whyNow)
	}
	v.Clients = ""
	switch {
	case !validNow:
		v.Clients = fmt.Sprintf("it counts for the quorum (it entered the history on %s, while the key was valid), but podman and skopeo judge the key now and refuse it: %s", stamp(entered), whyNow)
	case sig.Subkey:
		v.Clients = fmt.Sprintf("it counts for the quorum, but subkey %s made it, and podman and skopeo built on containers/image before 5.37 (Debian bookworm has 5.23) refuse signatures made by subkeys", sig.Issuer)
	}
	return v
}

// File is one file for JudgeFiles: where it is, the repository its
// signature must name, what Verify said of its blob, and the times its
// lifetimes are judged at. A tree entry that is no signature file (not a
// regular file, a name that does not decode) sets Malformed to why.
type File struct {
	Location   Location
	Repository string
	Signature  Signature
	VerifyErr  error
	Times      Times
	// Malformed, when not "", makes the file KindMalformedPath with this
	// message: it takes part in nothing else.
	Malformed string
}

// JudgeFiles is the whole judgement (steps 1-4 above; step 1 is the
// caller's Verify) of the files of one or more signature directories, with
// keys as the trust root. It returns one verdict per file, in the order of
// files. Every tally command that decides whether a signature counts calls
// this, or its steps in this order.
func JudgeFiles(files []File, keys *Keyring) []Verdict {
	out := make([]Verdict, len(files))
	for i, f := range files {
		if f.Malformed != "" {
			out[i] = Verdict{Location: f.Location, Signature: f.Signature, Problem: KindMalformedPath,
				Severity: KindMalformedPath.Severity(), Message: f.Malformed}
			continue
		}
		v := JudgeVerified(f.Location, f.Repository, f.Signature, f.VerifyErr)
		out[i] = JudgeLifetime(v, keys, f.Times)
	}
	return judgeDirectories(out, false)
}

// JudgeDirectory is step 4 of the judgement: it adds the problems that only
// a whole signature directory shows to the verdicts of its files (after
// JudgeLifetime), and returns them sorted by directory and number
// (verdicts of several directories are judged per directory;
// malformed-path verdicts come last, unchanged). Readers stop at the first
// missing number, so every file after a gap gets KindGap. When a file that
// readers reach poisons the directory (Kind.Poisons), every other file
// before the gap gets KindPoisoned. Of the remaining good signatures by one
// primary key (a subkey counts as its primary key), the second and later get
// KindDuplicateSigner: only files that still count take a key's slot, so an
// expired, invalid or otherwise refused file never hides a later good one.
// These replace ok and warning verdicts; an invalid verdict is kept. The
// cost is O(n log n) in the verdicts and the memory O(n) plus the signers
// present.
func JudgeDirectory(verdicts []Verdict) []Verdict {
	return judgeDirectories(verdicts, true)
}

// judgeDirectories applies the directory rules to the verdicts vs, and
// returns them sorted by directory and number (sorted; vs is left alone),
// or in their own order (vs is judged in place).
func judgeDirectories(vs []Verdict, sorted bool) []Verdict {
	order := make([]int32, len(vs))
	for i := range order {
		order[i] = int32(i)
	}
	sameDir := func(a, b *Verdict) int {
		return cmp.Or(cmp.Compare(a.Location.Repository, b.Location.Repository), cmp.Compare(a.Location.Digest, b.Location.Digest))
	}
	slices.SortStableFunc(order, func(x, y int32) int {
		a, b := &vs[x], &vs[y]
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
		return cmp.Or(sameDir(a, b), cmp.Compare(a.Location.Number, b.Location.Number))
	})
	out := vs
	if sorted {
		out = make([]Verdict, len(vs))
		for i, o := range order {
			out[i] = vs[o]
			order[i] = int32(i)
		}
	}
	view := make([]*Verdict, len(order))
	for i, o := range order {
		view[i] = &out[o]
	}
	for start := 0; start < len(view); {
		if view[start].Problem == KindMalformedPath {
			break
		}
		end := start + 1
		for end < len(view) && view[end].Problem != KindMalformedPath && sameDir(view[end], view[start]) == 0 {
			end++
		}
		judgeOneDirectory(view[start:end])
		start = end
	}
	return out
}

// judgeOneDirectory marks gaps, poisoning and duplicate signers in the
// verdicts of one directory, sorted by number.
func judgeOneDirectory(dir []*Verdict) {
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
				*dir[i] = dir[i].with(KindGap, "signature-%d is missing, and readers stop there: they never see this file", missing)
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
				*dir[i] = dir[i].with(KindPoisoned, "signature-%d is %s, and clients then reject every signature of this image", poison.Location.Number, poison.Problem)
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
			*dir[i] = dir[i].with(KindDuplicateSigner, "key %s already signed this digest in signature-%d", signer, prev)
			continue
		}
		first[signer] = dir[i].Location.Number
	}
}

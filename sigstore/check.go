package sigstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Errors wrapped when a key cannot be used to make signatures that stock
// clients verify; see CheckKey.
var (
	ErrKeyExpired     = errors.New("key has expired")
	ErrKeyRevoked     = errors.New("key is revoked")
	ErrKeyUnsupported = errors.New("key cannot make signatures that stock clients verify")
)

// KeyIssue is one reason why some stock client cannot verify signatures
// made with a key now, found by CheckKey.
type KeyIssue struct {
	// Fingerprint is the key's primary fingerprint.
	Fingerprint string `json:"fingerprint"`
	// Refuse is true when tally refuses to sign with the key (no stock
	// client, or no current one, would accept the signature); false for a
	// warning that some clients will not verify it.
	Refuse bool `json:"refuse"`
	// Reason says which clients fail and why.
	Reason string `json:"reason"`
	// err is the sentinel a refusal wraps, for signers.
	err error
}

// Unwrap returns ErrKeyExpired, ErrKeyRevoked or ErrKeyUnsupported for a
// refusal, nil for a warning.
func (i KeyIssue) Unwrap() error { return i.err }

// Error implements error, so that a refusal can be returned as one.
func (i KeyIssue) Error() string { return "key " + i.Fingerprint + ": " + i.Reason }

// Client families that the reasons name.
const (
	clientsBookworm = "GnuPG 2.2 (what Debian bookworm's podman and skopeo use)"
	clientsStatic   = "statically built podman/skopeo (containers_image_openpgp, Go's x/crypto/openpgp)"
)

// CheckKey says which stock clients cannot verify signatures that the key e
// would make at time now, and why (formats.md section 3): refusals for an
// expired or revoked key, a v5/v6 key, an RFC 9580 Ed25519/Ed448 key (public
// key algorithm 27/28), RSA or DSA below 2048 bits, or no key that can sign;
// warnings for legacy EdDSA and curves that statically built clients cannot
// verify, and for a key that can sign only with a subkey, which
// containers/image before 5.37 rejects. The key that is judged is the one a
// Signer would use: the primary key when it may sign, else the newest valid
// signing subkey.
func CheckKey(e *openpgp.Entity, now time.Time) []KeyIssue {
	issues, _, _ := checkKey(e, now, nil)
	return issues
}

// checkKey is CheckKey where the signing key is chosen among the keys that
// usable accepts (nil: all); it also returns that key, nil when there is
// none.
func checkKey(e *openpgp.Entity, now time.Time, usable func(*packet.PublicKey) bool) (issues []KeyIssue, key *packet.PublicKey, subkey bool) {
	fpr := fingerprintHex(e.PrimaryKey.Fingerprint)
	refuse := func(sentinel error, format string, args ...any) KeyIssue {
		return KeyIssue{Fingerprint: fpr, Refuse: true, Reason: fmt.Sprintf(format, args...), err: sentinel}
	}
	warn := func(format string, args ...any) KeyIssue {
		return KeyIssue{Fingerprint: fpr, Reason: fmt.Sprintf(format, args...)}
	}

	if v := e.PrimaryKey.Version; v != 4 {
		return []KeyIssue{refuse(ErrKeyUnsupported, "v%d key: %s verifies only v4 keys and signatures", v, clientsBookworm)}, nil, false
	}
	selfSig, _ := e.PrimarySelfSignature()
	if selfSig == nil {
		return []KeyIssue{refuse(ErrKeyUnsupported, "key has no valid self-signature")}, nil, false
	}
	for _, rev := range e.Revocations {
		if hardRevocation(rev) || !now.Before(rev.CreationTime) {
			issues = append(issues, refuse(ErrKeyRevoked, "key was revoked on %s (%s)", stamp(rev.CreationTime), revocationReason(rev)))
			break
		}
	}
	if expiry, ok := keyExpiry(e.PrimaryKey, selfSig); ok && !now.Before(expiry) {
		issues = append(issues, refuse(ErrKeyExpired, "key expired on %s", stamp(expiry)))
	}
	if len(issues) > 0 {
		return issues, nil, false
	}

	key, subkey, why := selectSigningKey(e, now, usable)
	if key == nil {
		return []KeyIssue{refuse(ErrKeyUnsupported, "%s", why)}, nil, false
	}
	if problem, refused := algorithmProblem(key); problem != "" {
		if refused {
			issues = append(issues, refuse(ErrKeyUnsupported, "%s", problem))
		} else {
			issues = append(issues, warn("%s", problem))
		}
	}
	if subkey {
		issues = append(issues, warn("signs with subkey %s because the primary key may not sign or its secret part is not available: podman and skopeo built on containers/image before 5.37 (Debian bookworm has 5.23) reject signatures made by subkeys",
			fingerprintHex(key.Fingerprint)))
	}
	return issues, key, subkey
}

// algorithmProblem says why some client cannot verify signatures by key,
// and whether no bookworm client can (refused).
func algorithmProblem(key *packet.PublicKey) (problem string, refused bool) {
	what := "signing key"
	switch key.PubKeyAlgo {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly, packet.PubKeyAlgoDSA:
		name := "RSA"
		if key.PubKeyAlgo == packet.PubKeyAlgoDSA {
			name = "DSA"
		}
		bits, err := key.BitLength()
		if err != nil {
			return fmt.Sprintf("%s: cannot read the %s key size: %v", what, name, err), true
		}
		if bits < 2048 {
			return fmt.Sprintf("%s is %s-%d: keys below 2048 bits are too weak to trust", what, name, bits), true
		}
		return "", false
	case packet.PubKeyAlgoECDSA:
		curve, err := key.Curve()
		if err != nil {
			return fmt.Sprintf("%s: unknown ECDSA curve: %v", what, err), true
		}
		switch curve {
		case packet.CurveNistP256, packet.CurveNistP384, packet.CurveNistP521:
			return "", false
		}
		return fmt.Sprintf("%s is ECDSA on %s: %s cannot verify it (only NIST P-256/384/521)", what, curve, clientsStatic), false
	case packet.PubKeyAlgoEdDSA:
		curve, err := key.Curve()
		if err != nil || curve != packet.Curve25519 {
			return fmt.Sprintf("%s is legacy EdDSA on a curve other than Ed25519: %s cannot verify it", what, clientsBookworm), true
		}
		return fmt.Sprintf("%s is legacy EdDSA Ed25519 (algorithm 22): %s cannot verify it (only RSA, DSA and ECDSA); GnuPG-based clients can", what, clientsStatic), false
	case packet.PubKeyAlgoEd25519, packet.PubKeyAlgoEd448:
		return fmt.Sprintf("%s uses RFC 9580 public-key algorithm %d: %s cannot verify it (use legacy EdDSA, algorithm 22, or RSA/ECDSA)", what, key.PubKeyAlgo, clientsBookworm), true
	}
	return fmt.Sprintf("%s uses public-key algorithm %d, which %s cannot verify", what, key.PubKeyAlgo, clientsBookworm), true
}

// primaryMaySign reports whether the primary key of e is allowed to make
// data signatures according to selfSig. A self-signature without key flags
// places no restriction (RFC 4880 5.2.3.21).
func primaryMaySign(e *openpgp.Entity, selfSig *packet.Signature) bool {
	if selfSig == nil || !e.PrimaryKey.PubKeyAlgo.CanSign() {
		return false
	}
	return !selfSig.FlagsValid || selfSig.FlagSign
}

// subkeyMaySign reports whether sub is bound as a signing subkey. Unlike the
// primary key, a subkey must carry the sign flag: only then does its binding
// include the subkey's own cross-signature, which proves that the subkey's
// owner bound it to this primary key.
func subkeyMaySign(sub *openpgp.Subkey) bool {
	return sub.Sig != nil && sub.Sig.FlagsValid && sub.Sig.FlagSign && sub.PublicKey.PubKeyAlgo.CanSign()
}

// subkeyValidAt reports whether sub is neither expired nor revoked at now.
func subkeyValidAt(sub *openpgp.Subkey, now time.Time) bool {
	if expiry, ok := keyExpiry(sub.PublicKey, sub.Sig); ok && !now.Before(expiry) {
		return false
	}
	for _, rev := range sub.Revocations {
		if hardRevocation(rev) || !now.Before(rev.CreationTime) {
			return false
		}
	}
	return !now.Before(sub.PublicKey.CreationTime)
}

// selectSigningKey returns the key a Signer uses: the primary key when it
// may sign (and usable accepts it), else the newest valid signing subkey
// that usable accepts. usable nil accepts every key. When there is none it
// says why.
func selectSigningKey(e *openpgp.Entity, now time.Time, usable func(*packet.PublicKey) bool) (key *packet.PublicKey, subkey bool, why string) {
	ok := func(pk *packet.PublicKey) bool { return usable == nil || usable(pk) }
	selfSig, _ := e.PrimarySelfSignature()
	if primaryMaySign(e, selfSig) && ok(e.PrimaryKey) {
		return e.PrimaryKey, false, ""
	}
	var best *openpgp.Subkey
	for i := range e.Subkeys {
		sub := &e.Subkeys[i]
		if !subkeyMaySign(sub) || !subkeyValidAt(sub, now) || !ok(sub.PublicKey) {
			continue
		}
		if best == nil || sub.Sig.CreationTime.After(best.Sig.CreationTime) {
			best = sub
		}
	}
	if best != nil {
		return best.PublicKey, true, ""
	}
	return nil, false, "neither the primary key nor a valid subkey may sign"
}

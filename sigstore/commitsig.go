package sigstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// MaxDetachedSize bounds an armored detached signature: the signature of a
// commit, or a maintainer's approval of a trust policy change.
const MaxDetachedSize = 64 << 10

// MaxClockSkew is how long after the time it claims (a commit's committer
// time, an approval's time) a detached signature may have been created.
// Signing comes after the time is taken: git commit -S asks gpg after
// writing the committer line, a smart card takes a second or more, and
// machines' clocks differ. A signature made later than that is refused, so
// a commit cannot claim a time at which a since expired or revoked key was
// still good.
const MaxClockSkew = 10 * time.Minute

// ErrUnknownSigner is wrapped by VerifyDetached's error when the signing
// key is not in the keyring.
var ErrUnknownSigner = errors.New("unknown signer")

// Detached is a verified detached signature.
type Detached struct {
	// Issuer is the fingerprint of the key that signed (primary or subkey),
	// or its key ID when the key is unknown.
	Issuer string
	// Primary is the primary key's fingerprint ("" when unknown).
	Primary string
	// Created is the signature's creation time.
	Created time.Time
	// At is the time the signature was judged at: the later of the claimed
	// time and the creation time.
	At time.Time
}

// VerifyDetached checks that armored is one ASCII-armored OpenPGP signature
// packet over data by a key of keys that may sign, created no later than
// MaxClockSkew after claimed, and valid as go-crypto judges it (expiry,
// revocation, weak hashes) at the later of claimed and its creation time
// (Detached.At). Key lifetimes in tally's sense are the caller's to judge
// (Keyring.ValidAt at Detached.At).
func VerifyDetached(keys openpgp.EntityList, data, armored []byte, claimed time.Time) (Detached, error) {
	if len(armored) > MaxDetachedSize {
		return Detached{}, fmt.Errorf("the signature is larger than %d bytes", MaxDetachedSize)
	}
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		return Detached{}, fmt.Errorf("not an ASCII-armored OpenPGP signature: %v", err)
	}
	if block.Type != openpgp.SignatureType {
		return Detached{}, fmt.Errorf("an armored %q, not a %q", block.Type, openpgp.SignatureType)
	}
	raw, err := io.ReadAll(io.LimitReader(block.Body, MaxDetachedSize))
	if err != nil {
		return Detached{}, fmt.Errorf("decoding the armored signature: %v", err)
	}
	// Exactly one signature packet: a second one could hide who signed.
	packets := packet.NewReader(bytes.NewReader(raw))
	var sig *packet.Signature
	for {
		p, err := packets.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Detached{}, fmt.Errorf("reading the signature: %v", err)
		}
		s, ok := p.(*packet.Signature)
		if !ok || sig != nil {
			return Detached{}, errors.New("the armored block must hold exactly one signature packet")
		}
		sig = s
	}
	if sig == nil {
		return Detached{}, errors.New("the armored block holds no signature")
	}
	d := Detached{Issuer: issuerOf(sig), Created: sig.CreationTime.UTC(), At: claimed.UTC()}
	if late := d.Created.Sub(claimed); late > MaxClockSkew {
		return d, fmt.Errorf("the signature by %s was made on %s, %s after the time it claims (%s): more than the %s allowed for slow signers and clock skew",
			d.Issuer, stamp(d.Created), late.Round(time.Second), stamp(claimed), MaxClockSkew)
	}
	if d.Created.After(d.At) {
		d.At = d.Created
	}
	cfg := &packet.Config{Time: func() time.Time { return d.At }}
	_, signer, err := openpgp.VerifyDetachedSignature(keys, bytes.NewReader(data), bytes.NewReader(raw), cfg)
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return d, fmt.Errorf("%w: key %s is not in the keyring", ErrUnknownSigner, d.Issuer)
	case err != nil:
		return d, fmt.Errorf("the signature by %s does not verify: %s", d.Issuer, strings.TrimPrefix(err.Error(), "openpgp: "))
	}
	d.Primary = fingerprintHex(signer.PrimaryKey.Fingerprint)
	if sig.IssuerFingerprint == nil {
		// Name the key by fingerprint: the one of signer's keys with this key ID.
		all := []*packet.PublicKey{signer.PrimaryKey}
		for _, s := range signer.Subkeys {
			all = append(all, s.PublicKey)
		}
		for _, k := range all {
			if sig.IssuerKeyId != nil && k.KeyId == *sig.IssuerKeyId {
				d.Issuer = fingerprintHex(k.Fingerprint)
				break
			}
		}
	}
	return d, nil
}

// issuerOf names the key a signature claims: its fingerprint, or its key ID.
func issuerOf(sig *packet.Signature) string {
	if sig.IssuerFingerprint != nil {
		return fingerprintHex(sig.IssuerFingerprint)
	}
	if sig.IssuerKeyId != nil {
		return fmt.Sprintf("%016X", *sig.IssuerKeyId)
	}
	return "(no issuer)"
}

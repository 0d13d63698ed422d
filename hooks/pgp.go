package hooks

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

// maxDetachedSize bounds an armored detached signature (commit or approval).
const maxDetachedSize = 64 << 10

// errUnknownSigner is wrapped by verifyDetached when the signing key is not
// in the keyring.
var errUnknownSigner = errors.New("unknown signer")

// detached is a verified detached signature.
type detached struct {
	issuer  string // fingerprint of the key that signed (primary or subkey)
	primary string // its primary key's fingerprint
}

// verifyDetached checks that armored is one ASCII-armored OpenPGP signature
// packet over data by a key of s that may sign, valid at when as go-crypto
// judges it (expiry, revocation, weak hashes). Key lifetimes in tally's sense
// are judged by the caller (sigstore.Keyring.ValidAt).
func verifyDetached(s *policyState, data, armored []byte, when time.Time) (detached, error) {
	if len(armored) > maxDetachedSize {
		return detached{}, fmt.Errorf("the signature is larger than %d bytes", maxDetachedSize)
	}
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		return detached{}, fmt.Errorf("not an ASCII-armored OpenPGP signature: %v", err)
	}
	if block.Type != openpgp.SignatureType {
		return detached{}, fmt.Errorf("an armored %q, not a %q", block.Type, openpgp.SignatureType)
	}
	raw, err := io.ReadAll(io.LimitReader(block.Body, maxDetachedSize))
	if err != nil {
		return detached{}, fmt.Errorf("decoding the armored signature: %v", err)
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
			return detached{}, fmt.Errorf("reading the signature: %v", err)
		}
		s, ok := p.(*packet.Signature)
		if !ok || sig != nil {
			return detached{}, errors.New("the armored block must hold exactly one signature packet")
		}
		sig = s
	}
	if sig == nil {
		return detached{}, errors.New("the armored block holds no signature")
	}
	issuer := issuerOf(sig)
	cfg := &packet.Config{Time: func() time.Time { return when }}
	_, signer, err := openpgp.VerifyDetachedSignature(s.entities, bytes.NewReader(data), bytes.NewReader(raw), cfg)
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return detached{issuer: issuer}, fmt.Errorf("%w: key %s is not in the keyring", errUnknownSigner, issuer)
	case err != nil:
		return detached{issuer: issuer}, fmt.Errorf("the signature by %s does not verify: %s", issuer, strings.TrimPrefix(err.Error(), "openpgp: "))
	}
	d := detached{issuer: issuer, primary: fingerprintHex(signer.PrimaryKey.Fingerprint)}
	if sig.IssuerFingerprint == nil {
		// Name the key by fingerprint: the one of signer's keys with this key ID.
		for _, k := range append([]*packet.PublicKey{signer.PrimaryKey}, subkeyPublics(signer)...) {
			if sig.IssuerKeyId != nil && k.KeyId == *sig.IssuerKeyId {
				d.issuer = fingerprintHex(k.Fingerprint)
				break
			}
		}
	}
	return d, nil
}

func subkeyPublics(e *openpgp.Entity) []*packet.PublicKey {
	out := make([]*packet.PublicKey, 0, len(e.Subkeys))
	for _, s := range e.Subkeys {
		out = append(out, s.PublicKey)
	}
	return out
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

func fingerprintHex(b []byte) string { return strings.ToUpper(fmt.Sprintf("%x", b)) }

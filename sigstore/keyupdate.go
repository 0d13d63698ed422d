package sigstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// KeyUpdate says what a new version of a key changes beyond what the key's
// own holder may add alone: one line per change, in lower case, or nil when
// the new version only adds what the holder made (self-signatures, user
// IDs and subkeys bound by the key, its own revocations, of the key or of a
// subkey) and shortens no lifetime.
//
// Anything else (a packet, user ID, subkey or signature the old version had
// and the new one lacks; a certification or revocation made by another key;
// a key or subkey expiring earlier than before) is for the maintainers to
// approve together: it can make the key's signatures stop counting, and any
// maintainer can edit the keyring.
func KeyUpdate(oldE, newE *openpgp.Entity) []string {
	oldP, errOld := entityPackets(oldE)
	newP, errNew := entityPackets(newE)
	if errOld != nil || errNew != nil {
		return []string{"changes the key in a way tally cannot read packet by packet"}
	}
	primary := newE.PrimaryKey
	var out []string
	have := map[string]int{}
	for _, p := range newP {
		have[p.key()]++
	}
	for _, p := range oldP {
		if have[p.key()] > 0 {
			have[p.key()]--
			continue
		}
		out = append(out, "removes "+p.describe())
	}
	had := map[string]int{}
	for _, p := range oldP {
		had[p.key()]++
	}
	for _, p := range newP {
		if had[p.key()] > 0 {
			had[p.key()]--
			continue
		}
		switch p.tag {
		case tagUserID, tagUserAttribute, tagPublicSubkey:
			// Bound by a self-signature, checked below as any signature.
		case tagSignature:
			sig, ok := p.signature()
			switch {
			case !ok:
				out = append(out, "adds an unreadable signature packet")
			case !issuedBy(sig, primary):
				out = append(out, fmt.Sprintf("adds a %s made by %s, not by the key itself", sigKind(sig), issuerOf(sig)))
			}
		default:
			out = append(out, fmt.Sprintf("adds a packet of type %d", p.tag))
		}
	}
	out = append(out, shortened("key "+fingerprintHex(oldE.PrimaryKey.Fingerprint), oldE.PrimaryKey, primarySelf(oldE), primarySelf(newE))...)
	for _, os := range oldE.Subkeys {
		for _, ns := range newE.Subkeys {
			if bytes.Equal(os.PublicKey.Fingerprint, ns.PublicKey.Fingerprint) {
				out = append(out, shortened("subkey "+fingerprintHex(os.PublicKey.Fingerprint), os.PublicKey, os.Sig, ns.Sig)...)
			}
		}
	}
	return dedupe(out) // in packet order: a subkey before its binding signature
}

func primarySelf(e *openpgp.Entity) *packet.Signature {
	s, _ := e.PrimarySelfSignature()
	return s
}

// shortened reports a key whose expiry moved earlier, or appeared.
func shortened(what string, pk *packet.PublicKey, oldSig, newSig *packet.Signature) []string {
	oldExp, oldOK := keyExpiry(pk, oldSig)
	newExp, newOK := keyExpiry(pk, newSig)
	switch {
	case !newOK:
		return nil
	case !oldOK:
		return []string{fmt.Sprintf("shortens the lifetime of %s: it never expired, now it expires on %s", what, stamp(newExp))}
	case newExp.Before(oldExp):
		return []string{fmt.Sprintf("shortens the lifetime of %s from %s to %s", what, stamp(oldExp), stamp(newExp))}
	}
	return nil
}

func issuedBy(sig *packet.Signature, pk *packet.PublicKey) bool {
	if sig.IssuerFingerprint != nil {
		return bytes.Equal(sig.IssuerFingerprint, pk.Fingerprint)
	}
	return sig.IssuerKeyId != nil && *sig.IssuerKeyId == pk.KeyId
}

func sigKind(sig *packet.Signature) string {
	switch sig.SigType {
	case packet.SigTypeKeyRevocation, packet.SigTypeSubkeyRevocation, packet.SigTypeCertificationRevocation:
		return "revocation"
	case packet.SigTypeGenericCert, packet.SigTypePersonaCert, packet.SigTypeCasualCert, packet.SigTypePositiveCert:
		return "certification"
	}
	return fmt.Sprintf("signature (type %#x)", uint8(sig.SigType))
}

func dedupe(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// OpenPGP packet tags (RFC 9580, section 5).
const (
	tagSignature     = 2
	tagPublicKey     = 6
	tagUserID        = 13
	tagPublicSubkey  = 14
	tagUserAttribute = 17
)

type rawPacket struct {
	tag      uint8
	contents []byte
}

func (p rawPacket) key() string { return string([]byte{p.tag}) + string(p.contents) }

func (p rawPacket) describe() string {
	switch p.tag {
	case tagUserID:
		return fmt.Sprintf("user ID %q", p.contents)
	case tagPublicSubkey:
		if pk, ok := p.publicKey(); ok {
			return "subkey " + fingerprintHex(pk.Fingerprint)
		}
		return "a subkey"
	case tagSignature:
		if sig, ok := p.signature(); ok {
			return fmt.Sprintf("a %s made by %s on %s", sigKind(sig), issuerOf(sig), stamp(sig.CreationTime))
		}
		return "a signature"
	case tagPublicKey:
		return "the primary key"
	case tagUserAttribute:
		return "a user attribute"
	}
	return fmt.Sprintf("a packet of type %d", p.tag)
}

func (p rawPacket) reparse() (packet.Packet, bool) {
	var b bytes.Buffer
	if err := (&packet.OpaquePacket{Tag: p.tag, Contents: p.contents}).Serialize(&b); err != nil {
		return nil, false
	}
	pkt, err := packet.Read(&b)
	return pkt, err == nil
}

func (p rawPacket) signature() (*packet.Signature, bool) {
	pkt, ok := p.reparse()
	if !ok {
		return nil, false
	}
	sig, ok := pkt.(*packet.Signature)
	return sig, ok
}

func (p rawPacket) publicKey() (*packet.PublicKey, bool) {
	pkt, ok := p.reparse()
	if !ok {
		return nil, false
	}
	pk, ok := pkt.(*packet.PublicKey)
	return pk, ok
}

// entityPackets serializes a public key and splits it into packets.
func entityPackets(e *openpgp.Entity) ([]rawPacket, error) {
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		return nil, err
	}
	r := packet.NewOpaqueReader(&b)
	var out []rawPacket
	for {
		op, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rawPacket{tag: op.Tag, contents: op.Contents})
	}
}

package sigstore

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// MaxSignatureSize is the largest signature file, and the largest
// decompressed message, that Verify reads: containers/image's limit for a
// signature it fetches (iolimits.MaxSignatureBodySize, 4 MiB).
const MaxSignatureSize = 4 << 20

// Kind names what is wrong with a signature file. The zero Kind means
// nothing is.
type Kind string

// Kinds of problem. Severity gives each one's severity.
const (
	// KindEmpty: the file is empty. Like an armored or garbage file, it
	// poisons its directory: containers/image fails to read every
	// signature of the image when one file does not start like an OpenPGP
	// signature (see KindPoisoned).
	KindEmpty Kind = "empty"
	// KindArmored: the file is ASCII-armored; clients read only binary.
	// It poisons its directory.
	KindArmored Kind = "armored"
	// KindGarbage: the file does not start like an OpenPGP signed message
	// (its first byte is not one clients recognise), or is larger than the
	// 4 MiB clients read over HTTP. It poisons its directory.
	KindGarbage Kind = "garbage"
	// KindMalformed: the file starts like an OpenPGP message but is not of
	// the one form clients accept (one-pass signature, literal data,
	// exactly one signature, optionally compressed once).
	KindMalformed Kind = "malformed"
	// KindTruncated: the file ends in the middle of the message.
	KindTruncated Kind = "truncated"
	// KindUnsupported: a well-formed message that bookworm's clients cannot
	// verify (a v5/v6 signature, or a hash other than SHA-2).
	KindUnsupported Kind = "unsupported"
	// KindBadSignature: the signature does not verify with the key it
	// names, or that key may not make signatures.
	KindBadSignature Kind = "bad-signature"
	// KindBadPayload: a good signature over a payload that clients reject.
	KindBadPayload Kind = "bad-payload"
	// KindWrongDigest: the payload signs another manifest digest than the
	// directory the file is in.
	KindWrongDigest Kind = "wrong-digest"
	// KindWrongIdentity: the payload signs another repository.
	KindWrongIdentity Kind = "wrong-identity"
	// KindMalformedPath: the file's path is not a lookaside location.
	KindMalformedPath Kind = "malformed-path"
	// KindUnknownSigner: the signing key is not in the keyring.
	KindUnknownSigner Kind = "unknown-signer"
	// KindLegacy: a good signature over a pre-2025 StageX payload.
	KindLegacy Kind = "legacy"
	// KindDuplicateSigner: a second or later good signature by a primary
	// key that already signed this digest.
	KindDuplicateSigner Kind = "duplicate-signer"
	// KindGap: the file comes after a missing signature number, where
	// clients stop reading: they never see it.
	KindGap Kind = "gap"
	// KindPoisoned: another file of the directory that clients read is
	// empty, armored or garbage, so clients reject every signature of the
	// image (containers/image fails the whole signature list).
	KindPoisoned Kind = "poisoned"
	// KindSignatureExpired: a good signature whose own expiry time has
	// passed at the time it is judged; clients reject it (JudgeLifetime).
	KindSignatureExpired Kind = "signature-expired"
	// KindKeyNotValid: a good signature whose key was expired, revoked or
	// not yet created at the time the file entered the history (or, for a
	// file about to enter, now), or whose key was revoked as compromised
	// (JudgeLifetime).
	KindKeyNotValid Kind = "key-not-valid"
	// KindClientsRefuse: a signature that counts for tally's quorum, but
	// that stock podman and skopeo with the current keyring refuse now: its
	// key expired or was revoked as superseded or retired after the file
	// entered the history, or a subkey made it (clients on containers/image
	// before 5.37). It is never a file's Problem: Verdict.Clients says it
	// of a file that counts, and reports list it per image.
	KindClientsRefuse Kind = "clients-refuse"
)

// Poisons reports whether a file with problem k makes clients reject every
// signature of its image: true for empty, armored and garbage.
func (k Kind) Poisons() bool {
	return k == KindEmpty || k == KindArmored || k == KindGarbage
}

// Severity grades a Kind.
type Severity string

// Severities. A file with any problem is never counted towards a quorum;
// only invalid files make a signatures repository invalid.
const (
	SeverityNone    Severity = ""
	SeverityWarning Severity = "warning"
	SeverityInvalid Severity = "invalid"
)

// Severity returns the severity of k: SeverityNone for the zero Kind,
// SeverityWarning for unknown-signer, legacy, duplicate-signer, gap,
// poisoned, signature-expired, key-not-valid and clients-refuse, and
// SeverityInvalid for every other kind.
func (k Kind) Severity() Severity {
	switch k {
	case "":
		return SeverityNone
	case KindUnknownSigner, KindLegacy, KindDuplicateSigner, KindGap, KindPoisoned,
		KindSignatureExpired, KindKeyNotValid, KindClientsRefuse:
		return SeverityWarning
	}
	return SeverityInvalid
}

// Problem is the error Verify returns: what is wrong with a signature file.
// It is plain data (a cache can store it as JSON); the cause, when there is
// one, is kept for errors.Is and errors.As but not serialised.
type Problem struct {
	Kind    Kind   `json:"kind"`
	Message string `json:"message"`
	cause   error
}

// Error implements error: "<kind>: <message>".
func (p *Problem) Error() string { return string(p.Kind) + ": " + p.Message }

// Unwrap returns the cause, such as a *LegacyPayloadError.
func (p *Problem) Unwrap() error { return p.cause }

func problem(kind Kind, format string, args ...any) *Problem {
	return &Problem{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Signature is what Verify learned from a signature file. It is plain data.
type Signature struct {
	// Payload is the signed payload; zero unless Verify succeeded, except
	// for KindLegacy, where Reference and Digest are what the legacy
	// payload claimed (for the location checks of JudgeVerified; either
	// may be "").
	Payload Payload `json:"payload"`
	// Signer is the primary fingerprint of the signing key (uppercase);
	// "" when the key is unknown.
	Signer string `json:"signer,omitempty"`
	// Subkey is true when a subkey of Signer made the signature.
	Subkey bool `json:"subkey,omitempty"`
	// Issuer is the fingerprint of the key that made the signature, or its
	// 16-hex key ID when the signature names only that and the key is
	// unknown.
	Issuer string `json:"issuer,omitempty"`
	// Created is the signature's creation time, as the signer claims it.
	Created time.Time `json:"created"`
	// Expires is when the signature itself expires; zero when it does not.
	// Clients reject an expired signature.
	Expires time.Time `json:"expires,omitzero"`
}

// Verify checks the format and the cryptography of one signature file:
// that blob is a binary OpenPGP signed message of the form clients accept
// (optionally compressed: one-pass signature, literal data, exactly one
// signature), signed by a key of keys that may sign, over a payload that
// ParsePayload accepts. It does not judge key lifetimes (Keyring.ValidAt),
// the location of the file (JudgeVerified), or the time.
//
// Every error is a *Problem. With KindLegacy, KindBadPayload, KindUnknownSigner
// and KindBadSignature the returned Signature still holds what is known of
// the issuer, for reporting.
func Verify(blob []byte, keys *Keyring) (Signature, error) {
	msg, prob := readSignedMessage(blob)
	if prob != nil {
		return Signature{}, prob
	}
	var sig Signature
	sig.Created = msg.sig.CreationTime.UTC()
	if msg.sig.SigLifetimeSecs != nil && *msg.sig.SigLifetimeSecs != 0 {
		sig.Expires = msg.sig.CreationTime.Add(time.Duration(*msg.sig.SigLifetimeSecs) * time.Second).UTC()
	}

	candidates, issuer := resolveIssuer(msg.sig, keys)
	sig.Issuer = issuer
	if len(candidates) == 0 {
		return sig, problem(KindUnknownSigner, "signed by key %s, which is not in the keyring", issuer)
	}
	var key *signingKey
	var lastErr string
	for _, c := range candidates {
		if why := mayNotSign(c); why != "" {
			lastErr = why
			continue
		}
		if err := checkSignature(c.public, msg); err != nil {
			lastErr = fmt.Sprintf("signature by %s does not verify: %v", c.fingerprint, err)
			continue
		}
		key = c
		break
	}
	if key == nil {
		if len(candidates) == 1 {
			sig.Signer, sig.Subkey, sig.Issuer = candidates[0].primaryFpr, candidates[0].subkey != nil, candidates[0].fingerprint
		}
		return sig, problem(KindBadSignature, "%s", lastErr)
	}
	sig.Signer, sig.Subkey, sig.Issuer = key.primaryFpr, key.subkey != nil, key.fingerprint
	if msg.sig.CreationTime.Before(key.public.CreationTime) {
		return sig, problem(KindBadSignature, "signature claims %s, before key %s was created (%s)",
			stamp(msg.sig.CreationTime), key.fingerprint, stamp(key.public.CreationTime))
	}

	if why, refused := algorithmProblem(key.public); refused {
		return sig, problem(KindUnsupported, "%s", why)
	}

	payload, err := ParsePayload(msg.body)
	if err != nil {
		kind := KindBadPayload
		if errors.Is(err, ErrLegacyPayload) {
			kind = KindLegacy
			var legacy *LegacyPayloadError
			if errors.As(err, &legacy) {
				sig.Payload = Payload{Reference: legacy.Reference, Digest: legacy.Digest}
			}
		}
		return sig, &Problem{Kind: kind, Message: err.Error(), cause: err}
	}
	sig.Payload = payload
	return sig, nil
}

// signedMessage is the parsed structure of a signature file.
type signedMessage struct {
	ops  *packet.OnePassSignature
	body []byte
	sig  *packet.Signature
}

// firstByteAccepted lists the first bytes for which containers/image's
// signature.FromBlob treats a blob as an OpenPGP simple signature: a
// compressed-data or one-pass-signature packet header (old or new format).
// Its list also has signature-packet headers, a form Verify refuses, and a
// mistyped 0x3d where 0x93 was meant; 0x93 is therefore refused by clients.
func firstByteAccepted(b byte) bool {
	switch b {
	case 0xA0, 0xA1, 0xA2, 0xA3, 0xC8, 0x90, 0x91, 0x92, 0xC4:
		return true
	}
	return false
}

// readSignedMessage parses blob strictly into its three packets.
func readSignedMessage(blob []byte) (*signedMessage, *Problem) {
	switch {
	case len(blob) == 0:
		return nil, problem(KindEmpty, "the signature file is empty")
	case len(blob) > MaxSignatureSize:
		return nil, problem(KindGarbage, "the signature file is %d bytes, more than the %d clients read", len(blob), MaxSignatureSize)
	case bytes.HasPrefix(bytes.TrimLeft(blob, " \t\r\n"), []byte("-----BEGIN PGP")):
		return nil, problem(KindArmored, "the signature file is ASCII-armored; clients read only binary OpenPGP (gpg --dearmor)")
	case blob[0]&0x80 == 0:
		return nil, problem(KindGarbage, "not OpenPGP binary data (first byte %#02x)", blob[0])
	case blob[0] == 0x88 || blob[0] == 0x89 || blob[0] == 0x8A || blob[0] == 0x8B || blob[0] == 0xC2:
		return nil, problem(KindMalformed, "starts with a signature packet: a detached signature or a PGP 2 style message, not a one-pass signed message")
	case !firstByteAccepted(blob[0]):
		return nil, problem(KindGarbage, "starts with packet header %#02x, which is not a signed message that clients recognise", blob[0])
	}

	top := bytes.NewReader(blob)
	p, prob := readPacket(top, "first packet")
	if prob != nil {
		return nil, prob
	}
	in := top
	if c, ok := p.(*packet.Compressed); ok {
		inner, err := io.ReadAll(io.LimitReader(c.Body, MaxSignatureSize+1))
		if err != nil {
			return nil, packetProblem("decompressing", err)
		}
		if len(inner) > MaxSignatureSize {
			return nil, problem(KindMalformed, "the compressed message decompresses to more than %d bytes", MaxSignatureSize)
		}
		if prob := expectEnd(top, "after the compressed data"); prob != nil {
			return nil, prob
		}
		in = bytes.NewReader(inner)
		if p, prob = readPacket(in, "first packet in the compressed data"); prob != nil {
			return nil, prob
		}
	}

	msg := &signedMessage{}
	ops, ok := p.(*packet.OnePassSignature)
	if !ok {
		return nil, problem(KindMalformed, "expected a one-pass signature packet, found %s", packetName(p))
	}
	if ops.Version != 3 {
		return nil, problem(KindUnsupported, "v%d one-pass signature: clients verify only v4 signatures", ops.Version)
	}
	if !ops.IsLast {
		return nil, problem(KindMalformed, "more than one signature: the one-pass signature is not the last")
	}
	msg.ops = ops

	if p, prob = readPacket(in, "literal data"); prob != nil {
		return nil, prob
	}
	lit, ok := p.(*packet.LiteralData)
	if !ok {
		if _, more := p.(*packet.OnePassSignature); more {
			return nil, problem(KindMalformed, "more than one signature packet")
		}
		return nil, problem(KindMalformed, "missing literal data: found %s after the one-pass signature", packetName(p))
	}
	body, err := io.ReadAll(io.LimitReader(lit.Body, MaxSignatureSize+1))
	if err != nil {
		return nil, packetProblem("reading literal data", err)
	}
	if len(body) > MaxSignatureSize {
		return nil, problem(KindMalformed, "the payload is larger than %d bytes", MaxSignatureSize)
	}
	msg.body = body

	if p, prob = readPacket(in, "signature"); prob != nil {
		return nil, prob
	}
	sig, ok := p.(*packet.Signature)
	if !ok {
		return nil, problem(KindMalformed, "expected the signature packet after the literal data, found %s", packetName(p))
	}
	msg.sig = sig
	if p, err := packet.Read(in); !errors.Is(err, io.EOF) {
		if _, more := p.(*packet.Signature); more {
			return nil, problem(KindMalformed, "more than one signature packet")
		}
		return nil, problem(KindMalformed, "data after the signature packet")
	}

	if sig.Version != 4 {
		return nil, problem(KindUnsupported, "v%d signature: %s verifies only v4 signatures", sig.Version, clientsBookworm)
	}
	if sig.SigType != packet.SigTypeBinary && sig.SigType != packet.SigTypeText {
		return nil, problem(KindMalformed, "signature type %#02x does not sign a document", uint8(sig.SigType))
	}
	switch sig.Hash {
	case crypto.SHA224, crypto.SHA256, crypto.SHA384, crypto.SHA512:
	default:
		return nil, problem(KindUnsupported, "signature uses hash %s; tally accepts only SHA-2 (SHA-1 is broken, old clients cannot verify SHA-3)", hashName(sig.Hash))
	}
	if sig.SigType != ops.SigType || sig.Hash != ops.Hash || sig.PubKeyAlgo != ops.PubKeyAlgo ||
		(sig.IssuerKeyId != nil && *sig.IssuerKeyId != ops.KeyId) {
		return nil, problem(KindMalformed, "the one-pass signature and the signature packet disagree")
	}
	if fpr := sig.IssuerFingerprint; fpr != nil {
		if len(fpr) != 20 || keyIDOfV4Fingerprint(fpr) != ops.KeyId {
			return nil, problem(KindMalformed, "the issuer fingerprint %X does not match the key ID %016X", fpr, ops.KeyId)
		}
	}
	return msg, nil
}

func keyIDOfV4Fingerprint(fpr []byte) uint64 {
	var id uint64
	for _, b := range fpr[12:20] {
		id = id<<8 | uint64(b)
	}
	return id
}

// readPacket reads the next packet, which must exist.
func readPacket(r io.Reader, what string) (packet.Packet, *Problem) {
	p, err := packet.Read(r)
	if errors.Is(err, io.EOF) {
		return nil, problem(KindTruncated, "the message ends where the %s should be", what)
	}
	if err != nil {
		return nil, packetProblem("reading the "+what, err)
	}
	return p, nil
}

// expectEnd checks that r holds no further packet.
func expectEnd(r io.Reader, where string) *Problem {
	if _, err := packet.Read(r); !errors.Is(err, io.EOF) {
		return problem(KindMalformed, "data %s", where)
	}
	return nil
}

// packetProblem classifies an error of go-crypto's packet parser.
func packetProblem(doing string, err error) *Problem {
	var unsupported pgperrors.UnsupportedError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem(KindTruncated, "%s: the message ends early", doing)
	case errors.As(err, &unsupported):
		return problem(KindUnsupported, "%s: %v", doing, err)
	}
	return problem(KindMalformed, "%s: %v", doing, err)
}

func packetName(p packet.Packet) string {
	switch p.(type) {
	case *packet.Signature:
		return "a signature packet"
	case *packet.OnePassSignature:
		return "a one-pass signature packet"
	case *packet.LiteralData:
		return "a literal data packet"
	case *packet.Compressed:
		return "a compressed data packet (nested compression)"
	case *packet.PublicKey:
		return "a public key packet"
	case *packet.PrivateKey:
		return "a secret key packet"
	case *packet.UserId:
		return "a user ID packet"
	case *packet.EncryptedKey, *packet.SymmetricKeyEncrypted, *packet.SymmetricallyEncrypted, *packet.AEADEncrypted:
		return "an encryption packet"
	}
	return fmt.Sprintf("a %T packet", p)
}

func hashName(h crypto.Hash) string {
	if h.Available() || h == crypto.SHA1 || h == crypto.MD5 {
		return h.String()
	}
	return fmt.Sprintf("algorithm %d", uint(h))
}

// resolveIssuer finds the keys that may have made sig: by issuer fingerprint
// when the signature carries one, else by key ID. issuer names the key for
// messages.
func resolveIssuer(sig *packet.Signature, keys *Keyring) (candidates []*signingKey, issuer string) {
	if sig.IssuerFingerprint != nil {
		issuer = fingerprintHex(sig.IssuerFingerprint)
		if keys != nil {
			if sk, ok := keys.lookupFingerprint(sig.IssuerFingerprint); ok {
				candidates = []*signingKey{sk}
			}
		}
		return candidates, issuer
	}
	var id uint64
	if sig.IssuerKeyId != nil {
		id = *sig.IssuerKeyId
	}
	issuer = fmt.Sprintf("%016X", id)
	if keys != nil {
		candidates = keys.lookupKeyID(id)
	}
	return candidates, issuer
}

// mayNotSign says why key may not make data signatures, or "".
func mayNotSign(key *signingKey) string {
	if key.subkey != nil {
		if !subkeyMaySign(key.subkey) {
			return fmt.Sprintf("subkey %s of %s is not bound as a signing subkey", key.fingerprint, key.primaryFpr)
		}
		return ""
	}
	selfSig, _ := key.entity.PrimarySelfSignature()
	if !primaryMaySign(key.entity, selfSig) {
		return fmt.Sprintf("primary key %s may not make signatures (it lacks the sign flag)", key.fingerprint)
	}
	return ""
}

// checkSignature verifies the signature of msg with pk: go-crypto's
// verification, or the equivalent faster one for RSA (rsa.go).
func checkSignature(pk *packet.PublicKey, msg *signedMessage) error {
	var h hash.Hash
	var body io.Writer
	h = msg.sig.Hash.New()
	body = h
	if msg.sig.SigType == packet.SigTypeText {
		body = openpgp.NewCanonicalTextHash(h)
	}
	if _, err := body.Write(msg.body); err != nil {
		return err
	}
	if pub := rsaFastKey(pk, msg.sig); pub != nil {
		return verifyRSA(pub, h, msg.sig)
	}
	if err := pk.VerifySignature(h, msg.sig); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "openpgp: "))
	}
	return nil
}

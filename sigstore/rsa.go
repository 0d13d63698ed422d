package sigstore

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"errors"
	"hash"
	"math/big"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Verifying an RSA signature is one public-key operation, s^e mod n, and a
// comparison. crypto/rsa (which go-crypto calls) does it in constant time
// and rebuilds the modulus's Montgomery parameters on every call: right for
// secrets, but a signature, a public key and a digest are all public, and
// the rebuild alone cost a third of each RSA-3072 verification. math/big
// does the same exponentiation, variable-time, in under half the time (the
// way crypto/rsa itself verified until Go 1.20). Nothing is parsed out of
// the decrypted block: it is compared byte for byte with the one encoding
// of the digest that PKCS #1 v1.5 allows (RFC 8017, 8.2.2 and 9.2), which
// closes the door on forgeries that lenient padding parsers let in.
//
// The fast path takes only what it mirrors exactly: version 4 signatures
// by RSA keys with a SHA-2 digest, a modulus of 2048 to 16384 bits and an
// odd exponent crypto/rsa accepts. Anything else goes to go-crypto's
// VerifySignature. Tests and a fuzz target check that both always agree.

// rsaDigestInfo is the DER DigestInfo prefix of each digest the fast path
// takes (RFC 8017, 9.2, note 1).
var rsaDigestInfo = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// errRSAVerification is the error of a failed fast-path verification,
// worded as go-crypto's.
var errRSAVerification = errors.New("invalid signature: RSA verification failure")

// rsaFastKey returns pk's RSA key when the fast path may verify sig with
// it, or nil.
func rsaFastKey(pk *packet.PublicKey, sig *packet.Signature) *rsa.PublicKey {
	if sig.Version != 4 || sig.PubKeyAlgo != pk.PubKeyAlgo || sig.RSASignature == nil {
		return nil
	}
	if pk.PubKeyAlgo != packet.PubKeyAlgoRSA && pk.PubKeyAlgo != packet.PubKeyAlgoRSASignOnly {
		return nil
	}
	if _, ok := rsaDigestInfo[sig.Hash]; !ok {
		return nil
	}
	pub, ok := pk.PublicKey.(*rsa.PublicKey)
	if !ok || pub.N == nil || pub.N.Bit(0) != 1 || pub.N.BitLen() < 2048 || pub.N.BitLen() > 16384 ||
		pub.E < 3 || pub.E&1 == 0 || pub.E > 1<<31-1 {
		return nil
	}
	return pub
}

// verifyRSA is what go-crypto's PublicKey.VerifySignature does for a
// version 4 RSA signature, for a key rsaFastKey returned: h holds the
// signed data; the signature's hashed trailer is added, and the digest
// checked.
func verifyRSA(pub *rsa.PublicKey, h hash.Hash, sig *packet.Signature) error {
	h.Write(sig.HashSuffix)
	if !verifyPKCS1v15(pub, sig.Hash, h.Sum(nil), sig.RSASignature.Bytes()) {
		return errRSAVerification
	}
	return nil
}

// verifyPKCS1v15 reports whether s is a PKCS #1 v1.5 signature of the
// digest hashed (of algorithm hash, one of rsaDigestInfo) by pub. s may be
// shorter than the modulus (an OpenPGP MPI drops leading zeros) but not
// longer.
func verifyPKCS1v15(pub *rsa.PublicKey, hash crypto.Hash, hashed, s []byte) bool {
	prefix, ok := rsaDigestInfo[hash]
	k := (pub.N.BitLen() + 7) / 8
	tLen := len(prefix) + len(hashed)
	if !ok || len(hashed) != hash.Size() || len(s) > k || k < tLen+11 {
		return false
	}
	c := new(big.Int).SetBytes(s)
	if c.Cmp(pub.N) >= 0 {
		return false
	}
	em := new(big.Int).Exp(c, big.NewInt(int64(pub.E)), pub.N).FillBytes(make([]byte, k))
	// EM = 0x00 || 0x01 || PS (0xff, at least 8) || 0x00 || DigestInfo || H
	want := make([]byte, k)
	want[1] = 0x01
	for i := 2; i < k-tLen-1; i++ {
		want[i] = 0xff
	}
	copy(want[k-tLen:], prefix)
	copy(want[k-len(hashed):], hashed)
	return bytes.Equal(em, want)
}

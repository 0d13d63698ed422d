package sigstore

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"hash"
	"math/big"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/tally-sig/tally/internal/testkeys"
)

// aliceRSA returns the RSA-3072 fixture key, private and as go-crypto's
// public key packet.
func aliceRSA(t testing.TB) (*rsa.PrivateKey, *openpgp.Entity) {
	t.Helper()
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(testkeys.Secret("alice")))
	if err != nil || len(el) != 1 {
		t.Fatalf("reading alice's secret key: %v", err)
	}
	priv, ok := el[0].PrivateKey.PrivateKey.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("alice's key is %T, not RSA", el[0].PrivateKey.PrivateKey)
	}
	return priv, el[0]
}

// rawSign makes the signature whose public operation gives exactly em:
// em^d mod n. It signs encodings PKCS #1 v1.5 forbids, which no signing
// API makes.
func rawSign(priv *rsa.PrivateKey, em []byte) []byte {
	s := new(big.Int).Exp(new(big.Int).SetBytes(em), priv.D, priv.N)
	return s.FillBytes(make([]byte, priv.Size()))
}

// pkcs1Block is 0x00 0x01 PS 0x00 T for a k-byte modulus, T = digestInfo ||
// hashed: the only encoding verification may accept.
func pkcs1Block(k int, digestInfo, hashed []byte) []byte {
	t := append(append([]byte{}, digestInfo...), hashed...)
	em := make([]byte, k)
	em[1] = 1
	for i := 2; i < k-len(t)-1; i++ {
		em[i] = 0xff
	}
	copy(em[k-len(t):], t)
	return em
}

// stdlibVerify is the verification go-crypto does: crypto/rsa on the
// signature padded to the key's size.
func stdlibVerify(pub *rsa.PublicKey, h crypto.Hash, hashed, s []byte) bool {
	k := pub.Size()
	if len(s) < k {
		s = append(make([]byte, k-len(s)), s...)
	}
	return rsa.VerifyPKCS1v15(pub, h, hashed, s) == nil
}

// The fast RSA path accepts and refuses exactly what crypto/rsa does, for
// well-formed signatures and for every kind of malformed encoding that
// lenient PKCS #1 v1.5 verifiers have accepted (Bleichenbacher's 2006
// forgery hides garbage after the digest behind a short padding).
func TestVerifyPKCS1v15AgreesWithCryptoRSA(t *testing.T) {
	priv, _ := aliceRSA(t)
	pub := &priv.PublicKey
	k := pub.Size()
	for h, info := range rsaDigestInfo {
		hh := h.New()
		hh.Write([]byte("a payload"))
		hashed := hh.Sum(nil)
		good, err := rsa.SignPKCS1v15(nil, priv, h, hashed)
		if err != nil {
			t.Fatal(err)
		}
		flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 1; return c }
		short := pkcs1Block(k, info, hashed)
		garbage := append(bytes.Clone(short[:2]), short[10:]...) // PS 8 bytes shorter...
		garbage = append(garbage, make([]byte, 8)...)            // ...and 8 bytes after the digest
		other := crypto.SHA256
		if h == crypto.SHA256 {
			other = crypto.SHA512
		}
		cases := []struct {
			name   string
			hashed []byte
			sig    []byte
			want   bool
		}{
			{"good", hashed, good, true},
			{"good, leading zeros dropped as an MPI does", hashed, bytes.TrimLeft(rawSign(priv, pkcs1Block(k, info, hashed)), "\x00"), true},
			{"signature bit flipped", hashed, flip(good, k-1), false},
			{"digest bit flipped", flip(hashed, 0), good, false},
			{"digest of another length", hashed[:len(hashed)-1], good, false},
			{"longer than the modulus", hashed, append([]byte{0}, good...), false},
			{"empty", hashed, nil, false},
			{"zero", hashed, make([]byte, k), false},
			{"the modulus itself", hashed, pub.N.Bytes(), false},
			{"above the modulus", hashed, new(big.Int).Add(pub.N, big.NewInt(1)).FillBytes(make([]byte, k)), false},
			{"block type 2", hashed, rawSign(priv, func() []byte { em := pkcs1Block(k, info, hashed); em[1] = 2; return em }()), false},
			{"leading byte not zero", hashed, rawSign(priv, func() []byte { em := pkcs1Block(k, info, hashed); em[0] = 1; return em }()), false},
			{"zero inside the padding", hashed, rawSign(priv, func() []byte { em := pkcs1Block(k, info, hashed); em[20] = 0; return em }()), false},
			{"garbage after the digest", hashed, rawSign(priv, garbage), false},
			{"another digest's DigestInfo", hashed, rawSign(priv, pkcs1Block(k, rsaDigestInfo[other], hashed)), false},
			{"DigestInfo without NULL parameters", hashed, rawSign(priv, pkcs1Block(k, append([]byte{info[0], info[1] - 2, 0x30, 0x0b}, info[4:15]...), hashed)), false},
			{"no DigestInfo", hashed, rawSign(priv, pkcs1Block(k, nil, hashed)), false},
		}
		for _, c := range cases {
			got := verifyPKCS1v15(pub, h, c.hashed, c.sig)
			std := stdlibVerify(pub, h, c.hashed, c.sig)
			if got != c.want || std != c.want {
				t.Errorf("%v, %s: fast path %v, crypto/rsa %v, want %v", h, c.name, got, std, c.want)
			}
		}
	}
}

// FuzzVerifyPKCS1v15 checks that the fast RSA path and crypto/rsa agree on
// every signature and digest, for each digest the fast path takes.
func FuzzVerifyPKCS1v15(f *testing.F) {
	priv, _ := aliceRSA(f)
	pub := &priv.PublicKey
	hashes := []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512}
	for i, h := range hashes {
		hh := h.New()
		hh.Write([]byte("seed"))
		hashed := hh.Sum(nil)
		good, err := rsa.SignPKCS1v15(nil, priv, h, hashed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(byte(i), hashed, good)
		em := pkcs1Block(pub.Size(), rsaDigestInfo[h], hashed)
		em[30] = 0
		f.Add(byte(i), hashed, rawSign(priv, em))
	}
	f.Fuzz(func(t *testing.T, which byte, hashed, sig []byte) {
		h := hashes[int(which)%len(hashes)]
		got := verifyPKCS1v15(pub, h, hashed, sig)
		if std := stdlibVerify(pub, h, hashed, sig); got != std {
			t.Fatalf("%v: fast path %v, crypto/rsa %v", h, got, std)
		}
	})
}

// checkSignature's fast path and go-crypto's VerifySignature agree on whole
// OpenPGP signatures: good ones over each digest, and ones with the data,
// the hashed trailer or the signature changed. Only version 4 RSA
// signatures take the fast path; the others are go-crypto's alone.
func TestRSAFastPathAgreesWithGoCrypto(t *testing.T) {
	_, ent := aliceRSA(t)
	pk := ent.PrimaryKey
	body := []byte("a payload")
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		sign := func(flipLast bool) *packet.Signature {
			sig := &packet.Signature{Version: 4, SigType: packet.SigTypeBinary, PubKeyAlgo: pk.PubKeyAlgo, Hash: h,
				CreationTime: time.Unix(1800000000, 0), IssuerKeyId: &pk.KeyId}
			if err := sig.Sign(hashOf(h, body), ent.PrivateKey, nil); err != nil {
				t.Fatal(err)
			}
			// Read back as Verify sees it.
			var buf bytes.Buffer
			if err := sig.Serialize(&buf); err != nil {
				t.Fatal(err)
			}
			raw := buf.Bytes()
			if flipLast { // the last byte of the signature MPI
				raw[len(raw)-1] ^= 1
			}
			p, err := packet.Read(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			return p.(*packet.Signature)
		}
		cases := []struct {
			name   string
			body   []byte
			flip   bool
			change func(*packet.Signature)
			want   bool
		}{
			{"good", body, false, func(*packet.Signature) {}, true},
			{"other data", []byte("another payload"), false, func(*packet.Signature) {}, false},
			{"hashed trailer changed", body, false, func(s *packet.Signature) { s.HashSuffix[3] ^= 1 }, false},
			{"signature changed", body, true, func(*packet.Signature) {}, false},
			{"claims another digest", body, false, func(s *packet.Signature) {
				if s.Hash == crypto.SHA256 {
					s.Hash = crypto.SHA512
				} else {
					s.Hash = crypto.SHA256
				}
			}, false},
		}
		for _, c := range cases {
			sig := sign(c.flip)
			c.change(sig)
			if rsaFastKey(pk, sig) == nil {
				t.Fatalf("%v, %s: the fast path does not take it", h, c.name)
			}
			fast := verifyRSA(rsaFastKey(pk, sig), hashOf(sig.Hash, c.body), sig) == nil
			slow := pk.VerifySignature(hashOf(sig.Hash, c.body), sig) == nil
			if fast != c.want || slow != c.want {
				t.Errorf("%v, %s: fast path %v, go-crypto %v, want %v", h, c.name, fast, slow, c.want)
			}
		}
	}
	// What the fast path leaves to go-crypto.
	sig := &packet.Signature{Version: 4, PubKeyAlgo: pk.PubKeyAlgo, Hash: crypto.SHA256}
	for name, s := range map[string]*packet.Signature{
		"version 5":    {Version: 5, PubKeyAlgo: pk.PubKeyAlgo, Hash: crypto.SHA256},
		"SHA-1":        {Version: 4, PubKeyAlgo: pk.PubKeyAlgo, Hash: crypto.SHA1},
		"EdDSA claim":  {Version: 4, PubKeyAlgo: packet.PubKeyAlgoEdDSA, Hash: crypto.SHA256},
		"no signature": sig,
	} {
		if rsaFastKey(pk, s) != nil {
			t.Errorf("the fast path takes a signature with %s", name)
		}
	}
	bob := mustKeyring(t, "bob")
	for _, k := range bob.byFpr {
		if rsaFastKey(k.public, &packet.Signature{Version: 4, PubKeyAlgo: k.public.PubKeyAlgo, Hash: crypto.SHA256}) != nil {
			t.Errorf("the fast path takes bob's %v key", k.public.PubKeyAlgo)
		}
	}
}

func hashOf(h crypto.Hash, body []byte) hash.Hash {
	hh := h.New()
	hh.Write(body)
	return hh
}

package sigstore

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// benchKeys are the fixture keys by algorithm: the bare per-signature cost
// of each. Run with -cpu 1 for one core.
var benchKeys = []struct{ algo, name string }{
	{"RSA-3072", "alice"},
	{"Ed25519", "bob"},
	{"ECDSA-P256", "carol"},
}

func BenchmarkVerify(b *testing.B) {
	for _, k := range benchKeys {
		b.Run(k.algo, func(b *testing.B) {
			keys := mustKeyring(b, "alice", "bob", "carol", "dave")
			blob := mustSign(b, k.name)
			b.SetBytes(int64(len(blob)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Verify(blob, keys); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	payload, err := testPayload.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range benchKeys {
		b.Run(k.algo, func(b *testing.B) {
			signer := fixtureSigner(b, k.name)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := signer.SignMessage(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkJudgeVerified is the cheap half of Judge, for a cached Verify.
func BenchmarkJudgeVerified(b *testing.B) {
	keys := mustKeyring(b, "bob")
	sig, err := Verify(mustSign(b, "bob"), keys)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if v := JudgeVerified(loc(1), "stagex/core-gcc", sig, nil); !v.OK() {
			b.Fatal(v.Message)
		}
	}
}

func BenchmarkReadKeyring(b *testing.B) {
	var buf bytes.Buffer
	if err := mustKeyring(b, "alice", "bob", "carol", "dave", "mallory", "paula").Serialize(&buf); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadKeyring(buf.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRSA3072 compares the two ways of checking one RSA-3072
// signature over a prepared digest: go-crypto's VerifySignature (crypto/rsa,
// constant-time, the modulus rebuilt each call) and tally's fast path
// (rsa.go). The ratio is what every RSA signature of a cold verify saves.
func BenchmarkVerifyRSA3072(b *testing.B) {
	_, ent := aliceRSA(b)
	pk := ent.PrimaryKey
	msg, prob := readSignedMessage(mustSign(b, "alice"))
	if prob != nil {
		b.Fatal(prob)
	}
	pub := rsaFastKey(pk, msg.sig)
	if pub == nil {
		b.Fatal("the fast path does not take alice's signature")
	}
	b.Run("go-crypto", func(b *testing.B) {
		for b.Loop() {
			if err := pk.VerifySignature(hashOf(msg.sig.Hash, msg.body), msg.sig); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fast-path", func(b *testing.B) {
		for b.Loop() {
			if err := verifyRSA(pub, hashOf(msg.sig.Hash, msg.body), msg.sig); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkJudgeDirectory judges one directory of 200,000 files (the
// directory rules alone), given in git's tree order.
func BenchmarkJudgeDirectory(b *testing.B) {
	const n = 200000
	in := make([]Verdict, 0, n)
	for i := 1; i <= n; i++ {
		in = append(in, Verdict{Location: loc(i), Signature: Signature{Signer: strconv.Itoa(i % 7)}})
	}
	slices.SortFunc(in, func(a, b Verdict) int { return strings.Compare(a.Location.Path(), b.Location.Path()) })
	b.ReportAllocs()
	for b.Loop() {
		JudgeDirectory(in)
	}
}

package sigstore_test

import (
	"fmt"
	"log"
	"time"

	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/internal/testkeys/testsigner"
	"github.com/tally-sig/tally/sigstore"
)

// ExampleJudgeFiles signs one image digest twice with the same key and
// judges the directory: the first signature counts, the second is the same
// key's duplicate, and a signature filed under another image is invalid.
func ExampleJudgeFiles() {
	alice, err := testsigner.For("alice")
	if err != nil {
		log.Fatal(err)
	}
	keys, err := sigstore.ReadKeyring(append(testkeys.Public("alice"), testkeys.Public("bob")...))
	if err != nil {
		log.Fatal(err)
	}
	digest := "sha256:" + fmt.Sprintf("%064x", 1)
	sign := func(ref string) []byte {
		payload, err := sigstore.Payload{Reference: ref, Digest: digest}.Marshal()
		if err != nil {
			log.Fatal(err)
		}
		blob, err := alice.SignMessage(payload)
		if err != nil {
			log.Fatal(err)
		}
		return blob
	}
	now := time.Now()
	var files []sigstore.File
	for _, f := range []struct{ path, ref string }{
		{"stagex/core-gcc@sha256=" + digest[7:] + "/signature-1", "stagex/core-gcc:14.2.0"},
		{"stagex/core-gcc@sha256=" + digest[7:] + "/signature-2", "stagex/core-gcc:14.2.0"},
		{"stagex/core-zlib@sha256=" + digest[7:] + "/signature-1", "stagex/core-gcc:14.2.0"},
	} {
		loc, err := sigstore.ParseLocation(f.path)
		if err != nil {
			log.Fatal(err)
		}
		sig, verr := sigstore.Verify(sign(f.ref), keys)
		files = append(files, sigstore.File{Location: loc, Repository: loc.Repository, Signature: sig, VerifyErr: verr,
			Times: sigstore.Times{Now: now}})
	}
	for _, v := range sigstore.JudgeFiles(files, keys) {
		verdict := "counts"
		if !v.OK() {
			verdict = string(v.Severity) + ": " + string(v.Problem)
		}
		fmt.Printf("%s/signature-%d: %s\n", v.Location.Repository, v.Location.Number, verdict)
	}
	// Output:
	// stagex/core-gcc/signature-1: counts
	// stagex/core-gcc/signature-2: warning: duplicate-signer
	// stagex/core-zlib/signature-1: invalid: wrong-identity
}

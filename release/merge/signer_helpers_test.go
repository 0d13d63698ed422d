package merge_test

import (
	"testing"

	"github.com/tally-sig/tally/internal/testkeys/testsigner"
	"github.com/tally-sig/tally/sigstore"
)

// signerFor returns a KeySigner for a fixture key, made once per process;
// every test of the package signs through it.
func signerFor(t testing.TB, name string) *sigstore.KeySigner {
	t.Helper()
	s, err := testsigner.For(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

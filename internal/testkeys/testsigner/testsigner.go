// Package testsigner hands tests a sigstore.KeySigner for a fixture key of
// internal/testkeys, parsed once per process and shared by every caller
// (parsing and unlocking a key costs milliseconds; a test run signs
// thousands of times). It lives apart from testkeys because sigstore's own
// tests import testkeys, and testkeys must not import sigstore.
//
// Use For from a test helper that fails the test on error.
package testsigner

import (
	"fmt"
	"sync"

	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/sigstore"
)

var (
	mu      sync.Mutex
	signers = map[string]*sigstore.KeySigner{}
)

// For returns the KeySigner of the named fixture key (see testkeys.Names),
// made on the first call and cached for the rest of the process.
func For(name string) (*sigstore.KeySigner, error) {
	mu.Lock()
	defer mu.Unlock()
	if s, ok := signers[name]; ok {
		return s, nil
	}
	s, err := sigstore.NewKeySigner(testkeys.Secret(name), func() ([]byte, error) { return []byte(testkeys.Passphrase), nil })
	if err != nil {
		return nil, fmt.Errorf("NewKeySigner(%s): %w", name, err)
	}
	signers[name] = s
	return s, nil
}

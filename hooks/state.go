package hooks

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

// tree is a read-only view of one tree: a commit's (gitstore.Snapshot) or
// the staged index's (indexTree).
type tree interface {
	Stat(path string) (gitstore.Entry, error)
	List(dir string) ([]gitstore.Entry, error)
	ReadFile(path string) ([]byte, error)
	Blob(h plumbing.Hash) ([]byte, error)
	// BlobSize reads a blob's size from its header, without inflating it.
	BlobSize(h plumbing.Hash) (int64, error)
}

// readBlobMax reads a blob of t when it has at most max bytes; otherwise it
// returns ok false and its size, without reading its contents.
func readBlobMax(t tree, h plumbing.Hash, max int64) (data []byte, size int64, ok bool, err error) {
	size, err = t.BlobSize(h)
	if err != nil {
		return nil, 0, false, err
	}
	if size > max {
		return nil, size, false, nil
	}
	data, err = t.Blob(h)
	return data, size, err == nil, err
}

// policyState is a trust policy as one tree holds it: tally.toml, the
// keyring it names, and their bytes (what approvals sign).
type policyState struct {
	policy      policy.Policy
	keys        *sigstore.Keyring
	entities    openpgp.EntityList
	policyData  []byte
	keyringData []byte
	ids         [2]plumbing.Hash // the blob ids of tally.toml and the keyring
}

// digest names the state's two files by content, as approval statements do.
func (s *policyState) digest() string {
	return fmt.Sprintf("%s %s %s %s", policy.PolicyFile, sha256Hex(s.policyData), s.policy.Keyring, sha256Hex(s.keyringData))
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// validAt judges the lifetime of the key with this fingerprint (primary or
// subkey) in this state's keyring at t.
func (s *policyState) validAt(fpr string, t time.Time) (bool, string) {
	return s.keys.ValidAt(fpr, t)
}

// states loads and caches trust policies by the blob ids of their files:
// most commits of a range share one policy.
type states struct {
	mu      sync.Mutex
	byBlobs map[[2]plumbing.Hash]*policyState
}

// load reads the trust policy of t. A tree without tally.toml gives an error
// wrapping policy.ErrNoPolicy; an invalid policy or keyring one wrapping
// policy.ErrBadPolicy.
func (c *states) load(t tree) (*policyState, error) {
	pe, err := t.Stat(policy.PolicyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, policy.ErrNoPolicy
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", policy.PolicyFile, err)
	}
	data, size, ok, err := readBlobMax(t, pe.Hash, policy.MaxPolicySize)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: reading %s: %v", policy.ErrBadPolicy, policy.PolicyFile, err)
	case !ok:
		return nil, fmt.Errorf("%w: %s is %d bytes, more than the %d a trust policy may have", policy.ErrBadPolicy, policy.PolicyFile, size, policy.MaxPolicySize)
	}
	p, err := policy.ParsePolicy(data)
	if err != nil {
		return nil, err
	}
	ke, err := t.Stat(p.Keyring)
	if err != nil {
		return nil, fmt.Errorf("%w: reading keyring %s: %v", policy.ErrBadPolicy, p.Keyring, err)
	}
	key := [2]plumbing.Hash{pe.Hash, ke.Hash}
	c.mu.Lock()
	if s, ok := c.byBlobs[key]; ok {
		c.mu.Unlock()
		return s, nil
	}
	c.mu.Unlock()
	keyData, size, ok, err := readBlobMax(t, ke.Hash, sigstore.MaxKeyringSize)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: reading keyring %s: %v", policy.ErrBadPolicy, p.Keyring, err)
	case !ok:
		return nil, fmt.Errorf("%w: keyring %s is %d bytes, more than the %d a keyring may have", policy.ErrBadPolicy, p.Keyring, size, sigstore.MaxKeyringSize)
	}
	keys, err := sigstore.ReadKeyring(keyData)
	if err != nil {
		return nil, fmt.Errorf("%w: keyring %s: %v", policy.ErrBadPolicy, p.Keyring, err)
	}
	if err := policy.CheckThreshold(p.Threshold, len(keys.Keys())); err != nil {
		return nil, err
	}
	s := &policyState{policy: p, keys: keys, policyData: data, keyringData: keyData, ids: key}
	for _, k := range keys.Keys() {
		e, _ := keys.Entity(k.Fingerprint)
		s.entities = append(s.entities, e)
	}
	c.mu.Lock()
	if c.byBlobs == nil {
		c.byBlobs = map[[2]plumbing.Hash]*policyState{}
	}
	c.byBlobs[key] = s
	c.mu.Unlock()
	return s, nil
}

// policyIDs returns the blob ids of tally.toml and of the keyring path of
// p in t (zero ids for missing files): two trees hold the same trust policy
// when these are equal.
func policyIDs(t tree, keyring string) [2]plumbing.Hash {
	var ids [2]plumbing.Hash
	for i, p := range []string{policy.PolicyFile, keyring} {
		if e, err := t.Stat(p); err == nil && !e.IsDir() {
			ids[i] = e.Hash
		}
	}
	return ids
}

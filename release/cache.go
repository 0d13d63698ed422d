package release

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/sigstore"
)

// cacheVersion changes whenever the meaning of a cached verification changes,
// so that results of an older verifier are never reused.
const cacheVersion = "v1"

// VerifyCache remembers the outcome of sigstore.Verify per blob id for one
// keyring: git blobs are immutable, so a blob verified once under the same
// keys needs no second check. It lives in the git directory (never in the
// tree) and is safe for concurrent use. A nil *VerifyCache verifies everything.
type VerifyCache struct {
	path    string
	mu      sync.Mutex
	entries map[plumbing.Hash]cacheEntry
	added   int
}

// cacheEntry is the plain-data outcome of one Verify call.
type cacheEntry struct {
	Signature sigstore.Signature
	Kind      sigstore.Kind // "" when the signature verified
	Message   string
}

// OpenVerifyCache loads the cache of repo for keys. A repository without a git
// directory (in memory) gets a cache that is never saved; a cache file that
// cannot be read is ignored and rebuilt.
func OpenVerifyCache(repo *gitstore.Repo, keys *sigstore.Keyring) *VerifyCache {
	c := &VerifyCache{entries: map[plumbing.Hash]cacheEntry{}}
	if repo.GitDir() == "" {
		return c
	}
	c.path = filepath.Join(repo.GitDir(), "tally", "verify-"+cacheVersion+"-"+keys.ID()[:32]+".gob")
	f, err := os.Open(c.path)
	if err != nil {
		return c
	}
	defer f.Close()
	if err := gob.NewDecoder(bufio.NewReader(f)).Decode(&c.entries); err != nil {
		c.entries = map[plumbing.Hash]cacheEntry{}
	}
	return c
}

// Save writes the cache if it learned anything, atomically.
func (c *VerifyCache) Save() error {
	if c == nil || c.path == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.added == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return fmt.Errorf("saving verification cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".verify-*.tmp")
	if err != nil {
		return fmt.Errorf("saving verification cache: %w", err)
	}
	w := bufio.NewWriter(tmp)
	err = gob.NewEncoder(w).Encode(c.entries)
	if err == nil {
		err = w.Flush()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("saving verification cache: %w", err)
	}
	c.added = 0
	return nil
}

// verify returns Verify's outcome for blob, from the cache when it has it.
// fresh reports whether the cryptography ran; err is a failure to read the blob.
func (c *VerifyCache) verify(snap *gitstore.Snapshot, blob plumbing.Hash, keys *sigstore.Keyring) (sig sigstore.Signature, verr error, fresh bool, err error) {
	if c != nil {
		c.mu.Lock()
		e, ok := c.entries[blob]
		c.mu.Unlock()
		if ok {
			if e.Kind != "" {
				verr = &sigstore.Problem{Kind: e.Kind, Message: e.Message}
			}
			return e.Signature, verr, false, nil
		}
	}
	data, err := snap.Blob(blob)
	if err != nil {
		return sigstore.Signature{}, nil, false, err
	}
	sig, verr = sigstore.Verify(data, keys)
	if c != nil {
		e := cacheEntry{Signature: sig}
		var p *sigstore.Problem
		if errors.As(verr, &p) {
			e.Kind, e.Message = p.Kind, p.Message
		} else if verr != nil {
			e.Kind, e.Message = sigstore.KindGarbage, verr.Error()
		}
		c.mu.Lock()
		c.entries[blob] = e
		c.added++
		c.mu.Unlock()
	}
	return sig, verr, true, nil
}

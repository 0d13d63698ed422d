package sigstore

import "sync"

// signedRefCache remembers the signed references that parseSignedReference
// accepted. Every maintainer signs the same reference, and Verify and
// JudgeVerified both parse it, so a whole-repository verify parses each
// one several times; the regexps are the costly part. Only accepted
// references are kept (parsing is a pure function of the string, so a
// cached answer is the answer), and the cache is emptied when it holds
// maxRefCache of them, which bounds its memory.
var signedRefCache = refCache{refs: map[string]dockerReference{}}

// repositoryCache remembers, the same way, the repository names that
// NormalizeRepository accepted.
var repositoryCache = refCache{refs: map[string]dockerReference{}}

const maxRefCache = 16384

type refCache struct {
	mu   sync.Mutex
	refs map[string]dockerReference
}

func (c *refCache) get(s string) (dockerReference, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ref, ok := c.refs[s]
	return ref, ok
}

func (c *refCache) add(s string, ref dockerReference) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.refs) >= maxRefCache {
		clear(c.refs)
	}
	c.refs[s] = ref
}

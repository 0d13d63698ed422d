package gitstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// maxObjectSize bounds the objects read into memory. Signatures are a few
// hundred bytes and build records a few kilobytes; anything near this size
// is not something tally wrote.
const maxObjectSize = 256 << 20

// emptyTree is the id of the tree with no entries, which git knows without
// storing it.
var emptyTree = plumbing.NewHash("4b825dc642cb6eb9a060e54bf8d69288fbee4904")

// objectReader reads whole git objects. Implementations are safe for
// concurrent use.
type objectReader interface {
	// readObject returns the type and contents of object h, or an error
	// wrapping plumbing.ErrObjectNotFound.
	readObject(h plumbing.Hash) (plumbing.ObjectType, []byte, error)
	// objectSize returns the type and size of object h from its header,
	// without inflating its contents.
	objectSize(h plumbing.Hash) (plumbing.ObjectType, int64, error)
	// reset forgets what the reader knows about the packs in the repository,
	// after a fetch or an outside git process has repacked it.
	reset()
	close() error
}

// storerObjects reads objects through a go-git storer, which is not safe for
// concurrent use: every call holds mu, the lock the Repo uses for the storer.
type storerObjects struct {
	mu *sync.Mutex
	s  storer.EncodedObjectStorer
}

func (o *storerObjects) readObject(h plumbing.Hash) (plumbing.ObjectType, []byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	typ, data, err := readEncoded(o.s, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		// A pack written by another process since the storer last listed
		// the packs: look again once.
		if r, ok := o.s.(interface{ Reindex() }); ok {
			r.Reindex()
			typ, data, err = readEncoded(o.s, h)
		}
	}
	return typ, data, err
}

func readEncoded(s storer.EncodedObjectStorer, h plumbing.Hash) (typ plumbing.ObjectType, data []byte, err error) {
	obj, err := s.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return 0, nil, err
	}
	if obj.Size() < 0 || obj.Size() > maxObjectSize {
		return 0, nil, fmt.Errorf("object %s has %d bytes, more than the %d tally reads: %w", h, obj.Size(), maxObjectSize, ErrBadObject)
	}
	rd, err := obj.Reader()
	if err != nil {
		return 0, nil, err
	}
	defer func() {
		if cerr := rd.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	data = make([]byte, obj.Size())
	if _, err := io.ReadFull(rd, data); err != nil {
		return 0, nil, fmt.Errorf("reading object %s: %w", h, err)
	}
	return obj.Type(), data, nil
}

func (o *storerObjects) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if r, ok := o.s.(interface{ Reindex() }); ok {
		r.Reindex()
	}
}

func (o *storerObjects) close() error { return nil }

// writeObject stores an object through the storer and returns its id. A
// loose object is renamed into its fan-out directory (objects/ab/), which
// git prune-packed or gc may remove as empty between go-git creating it and
// the rename: like git, tally then tries again.
func (r *Repo) writeObject(typ plumbing.ObjectType, data []byte) (plumbing.Hash, error) {
	for attempt := 0; ; attempt++ {
		h, err := r.writeObjectOnce(typ, data)
		if err == nil || attempt == 4 || !errors.Is(err, fs.ErrNotExist) {
			return h, err
		}
	}
}

func (r *Repo) writeObjectOnce(typ plumbing.ObjectType, data []byte) (plumbing.Hash, error) {
	obj := r.storage.NewEncodedObject()
	obj.SetType(typ)
	obj.SetSize(int64(len(data)))
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(data); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	h, err := r.storage.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("writing %s object: %w", typ, err)
	}
	return h, nil
}

// object reads object h and checks that it has the wanted type.
func (r *Repo) object(want plumbing.ObjectType, h plumbing.Hash) ([]byte, error) {
	typ, data, err := r.objects.readObject(h)
	if err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", want, h, err)
	}
	if typ != want {
		return nil, fmt.Errorf("reading %s %s: object is a %s: %w", want, h, typ, ErrBadObject)
	}
	return data, nil
}

// tree returns the decoded entries of tree h, from the cache when it can.
// The zero hash and the empty tree have no entries. The returned slice is
// shared: callers must not modify it.
func (r *Repo) tree(h plumbing.Hash) ([]Entry, error) {
	if h.IsZero() || h == emptyTree {
		return nil, nil
	}
	if entries, ok := r.trees.get(h); ok {
		return entries, nil
	}
	data, err := r.object(plumbing.TreeObject, h)
	if err != nil {
		return nil, err
	}
	entries, err := parseTree(data)
	if err != nil {
		return nil, fmt.Errorf("reading tree %s: %w", h, err)
	}
	r.trees.add(h, entries, len(data)+len(entries)*entryOverhead)
	return entries, nil
}

// entryOverhead is roughly what an Entry costs in memory besides its name.
const entryOverhead = 64

// maxCachedBlob is the largest blob kept in the blob cache.
const maxCachedBlob = 64 << 10

// blob returns the contents of blob h. The returned slice is shared with the
// cache: callers must not modify it.
func (r *Repo) blob(h plumbing.Hash) ([]byte, error) {
	if data, ok := r.blobs.get(h); ok {
		return data, nil
	}
	data, err := r.object(plumbing.BlobObject, h)
	if err != nil {
		return nil, err
	}
	if len(data) <= maxCachedBlob {
		r.blobs.add(h, data, len(data)+entryOverhead)
	}
	return data, nil
}

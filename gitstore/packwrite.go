package gitstore

import (
	"fmt"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/gitstore/internal/pack"
)

// packThreshold is the number of new objects from which a commit writes
// one pack instead of loose objects, as git's transfer.unpackLimit: one
// file instead of a thousand for a release's worth of signatures.
const packThreshold = 100

// objectBatch collects the new objects of a commit, to be written together.
type objectBatch struct {
	objects []pack.Object
	seen    map[plumbing.Hash]bool
}

// add queues an object and returns its id.
func (b *objectBatch) add(typ plumbing.ObjectType, data []byte) plumbing.Hash {
	h := plumbing.ComputeHash(typ, data)
	if b.seen == nil {
		b.seen = map[plumbing.Hash]bool{}
	}
	if !b.seen[h] {
		b.seen[h] = true
		b.objects = append(b.objects, pack.Object{Type: typ, Data: data, Hash: h})
	}
	return h
}

// writeBatch stores the queued objects: as one pack on disk when there are
// many, else one by one through the storer.
func (r *Repo) writeBatch(b *objectBatch) error {
	packs, ok := r.objects.(*pack.Objects)
	if !ok || len(b.objects) < packThreshold {
		for _, o := range b.objects {
			if _, err := r.writeObject(o.Type, o.Data); err != nil {
				return err
			}
		}
		return nil
	}
	base, err := pack.WritePack(filepath.Join(r.commonDir, "objects", "pack"), b.objects, faultPoint)
	if err != nil {
		return fmt.Errorf("writing a pack of %d objects: %w", len(b.objects), err)
	}
	if err := packs.AddPack(base); err != nil {
		return err
	}
	// go-git must see the new pack too, for pushes.
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	if s, ok := r.storage.(interface{ Reindex() }); ok {
		s.Reindex()
	}
	return nil
}

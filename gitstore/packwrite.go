package gitstore

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
)

// packThreshold is the number of new objects from which a commit writes
// one pack instead of loose objects, as git's transfer.unpackLimit: one
// file instead of a thousand for a release's worth of signatures.
const packThreshold = 100

// objectBatch collects the new objects of a commit, to be written together.
type objectBatch struct {
	objects []batchObject
	seen    map[plumbing.Hash]bool
}

type batchObject struct {
	typ  plumbing.ObjectType
	data []byte
	hash plumbing.Hash
}

// add queues an object and returns its id.
func (b *objectBatch) add(typ plumbing.ObjectType, data []byte) plumbing.Hash {
	h := plumbing.ComputeHash(typ, data)
	if b.seen == nil {
		b.seen = map[plumbing.Hash]bool{}
	}
	if !b.seen[h] {
		b.seen[h] = true
		b.objects = append(b.objects, batchObject{typ, data, h})
	}
	return h
}

// writeBatch stores the queued objects: as one pack on disk when there are
// many, else one by one through the storer.
func (r *Repo) writeBatch(b *objectBatch) error {
	packs, ok := r.objects.(*packObjects)
	if !ok || len(b.objects) < packThreshold {
		for _, o := range b.objects {
			if _, err := r.writeObject(o.typ, o.data); err != nil {
				return err
			}
		}
		return nil
	}
	base, err := writePack(filepath.Join(r.commonDir, "objects", "pack"), b.objects)
	if err != nil {
		return fmt.Errorf("writing a pack of %d objects: %w", len(b.objects), err)
	}
	if err := packs.addPack(base); err != nil {
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

// writePack writes objects, undeltified, as a pack and its index in dir and
// returns the pack's path without extension. Like git it writes both under
// temporary names, then renames the pack and last the index, so that a git
// process sees a pack only once it is complete.
func writePack(dir string, objects []batchObject) (base string, err error) {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return "", err
	}
	tmpPack, err := createTemp(dir, "tmp_pack_")
	if err != nil {
		return "", err
	}
	defer func() {
		_ = tmpPack.Close()
		if err != nil {
			_ = os.Remove(tmpPack.Name())
		}
	}()
	idx := new(idxfile.Writer)
	if err := idx.OnHeader(uint32(len(objects))); err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(tmpPack, 1<<16)
	checksum, err := encodePack(w, objects, idx)
	if err != nil {
		return "", err
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	if err := tmpPack.Sync(); err != nil {
		return "", err
	}
	if err := idx.OnFooter(checksum); err != nil {
		return "", err
	}
	memIdx, err := idx.Index()
	if err != nil {
		return "", err
	}

	tmpIdx, err := createTemp(dir, "tmp_idx_")
	if err != nil {
		return "", err
	}
	defer func() {
		_ = tmpIdx.Close()
		if err != nil {
			_ = os.Remove(tmpIdx.Name())
		}
	}()
	iw := bufio.NewWriter(tmpIdx)
	if _, err := idxfile.NewEncoder(iw).Encode(memIdx); err != nil {
		return "", err
	}
	if err := iw.Flush(); err != nil {
		return "", err
	}
	if err := tmpIdx.Sync(); err != nil {
		return "", err
	}

	base = filepath.Join(dir, "pack-"+checksum.String())
	if err := os.Rename(tmpPack.Name(), base+".pack"); err != nil {
		return "", err
	}
	faultPoint("pack-written")
	if err := os.Rename(tmpIdx.Name(), base+".idx"); err != nil {
		return "", err
	}
	return base, nil
}

// encodePack writes objects, undeltified and in the order given, as a pack
// stream to w (its header, the entries and the checksum) and returns the
// checksum. When idx is set, each entry is added to it.
func encodePack(w io.Writer, objects []batchObject, idx *idxfile.Writer) (plumbing.Hash, error) {
	var checksum plumbing.Hash
	sum := sha1.New()
	mw := io.MultiWriter(w, sum)
	var header [packHeaderSize]byte
	copy(header[:], "PACK")
	binary.BigEndian.PutUint32(header[4:], 2)
	binary.BigEndian.PutUint32(header[8:], uint32(len(objects)))
	if _, err := mw.Write(header[:]); err != nil {
		return checksum, err
	}
	var entry bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&entry, zlib.DefaultCompression)
	offset := uint64(packHeaderSize)
	for _, o := range objects {
		entry.Reset()
		entry.Write(appendPackEntryHeader(nil, o.typ, int64(len(o.data))))
		zw.Reset(&entry)
		if _, err := zw.Write(o.data); err != nil {
			return checksum, err
		}
		if err := zw.Close(); err != nil {
			return checksum, err
		}
		if idx != nil {
			idx.Add(o.hash, offset, crc32.ChecksumIEEE(entry.Bytes()))
		}
		if _, err := mw.Write(entry.Bytes()); err != nil {
			return checksum, err
		}
		offset += uint64(entry.Len())
	}
	sum.Sum(checksum[:0])
	_, err := w.Write(checksum[:])
	return checksum, err
}

// createTemp creates a new file in dir, read-only like git's packs (the
// umask applies), open for writing.
func createTemp(dir, prefix string) (*os.File, error) {
	var suffix [8]byte
	_, _ = rand.Read(suffix[:])
	return os.OpenFile(filepath.Join(dir, prefix+hex.EncodeToString(suffix[:])), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
}

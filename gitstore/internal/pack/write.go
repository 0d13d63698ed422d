package pack

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
)

// Object is one object to write into a pack: its type, contents and id
// (which the caller computed, as plumbing.ComputeHash does).
type Object struct {
	Type plumbing.ObjectType
	Data []byte
	Hash plumbing.Hash
}

// WritePack writes objects, undeltified, as a pack and its index in dir and
// returns the pack's path without extension. Like git it writes both under
// temporary names, then renames the pack and last the index, so that a git
// process sees a pack only once it is complete. When reached is not nil it
// is called with "pack-written" between the two renames (gitstore's fault
// point for the crash tests).
func WritePack(dir string, objects []Object, reached func(point string)) (base string, err error) {
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
	if reached != nil {
		reached("pack-written")
	}
	if err := os.Rename(tmpIdx.Name(), base+".idx"); err != nil {
		return "", err
	}
	return base, nil
}

// EncodePack writes objects, undeltified, and in the order given, as a pack
// stream to w (its header, the entries and the checksum, as in a bundle) and
// returns the checksum.
func EncodePack(w io.Writer, objects []Object) (plumbing.Hash, error) {
	return encodePack(w, objects, nil)
}

// encodePack writes objects, undeltified and in the order given, as a pack
// stream to w (its header, the entries and the checksum) and returns the
// checksum. When idx is set, each entry is added to it.
func encodePack(w io.Writer, objects []Object, idx *idxfile.Writer) (plumbing.Hash, error) {
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
		entry.Write(AppendEntryHeader(nil, o.Type, int64(len(o.Data))))
		zw.Reset(&entry)
		if _, err := zw.Write(o.Data); err != nil {
			return checksum, err
		}
		if err := zw.Close(); err != nil {
			return checksum, err
		}
		if idx != nil {
			idx.Add(o.Hash, offset, crc32.ChecksumIEEE(entry.Bytes()))
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

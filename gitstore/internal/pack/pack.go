package pack

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/klauspost/compress/zlib"

	"github.com/tally-sig/tally/gitstore/internal/lru"
)

// Objects reads objects straight from the pack files and loose objects
// of a repository on disk. Unlike go-git's storage, which moves one file
// position per pack, it maps each pack into memory read-only (as git
// does), so any number of goroutines read at once without a system call or
// a copy per object, and each object's id is checked against its
// contents. What it cannot find, such as objects in alternates, it asks the
// fallback for.
type Objects struct {
	dir      string // the objects directory
	fallback Reader

	// mu is held for reading while a pack's memory is read, so Close
	// cannot unmap it under a reader.
	mu    sync.RWMutex
	packs []*pack
	known map[string]bool // pack names already open

	// bases caches delta bases by pack and offset.
	bases *lru.Cache[packOffset, packedObject]
}

type packOffset struct {
	pack   *pack
	offset int64
}

type packedObject struct {
	typ  plumbing.ObjectType
	data []byte
}

// pack is one open pack file and its index.
type pack struct {
	name  string
	data  []byte // the whole pack file, mapped read-only
	unmap func() error
	idx   *idxfile.MemoryIndex
}

const deltaBaseCacheSize = 32 << 20

// baseOverhead is roughly what a cached delta base costs in memory besides
// its contents.
const baseOverhead = 64

// maxDeltaDepth bounds delta chains; git writes at most 4095.
const maxDeltaDepth = 10000

// NewObjects returns a Reader of the objects in objectsDir (a repository's
// objects directory) that asks fallback for what is in no pack and not
// loose, such as objects in alternates. Packs are listed and mapped on first
// use; Close unmaps them.
func NewObjects(objectsDir string, fallback Reader) *Objects {
	return &Objects{
		dir:      objectsDir,
		fallback: fallback,
		known:    map[string]bool{},
		bases:    lru.New[packOffset, packedObject](deltaBaseCacheSize),
	}
}

// ReadObject returns the type and contents of object h, checked against h.
func (o *Objects) ReadObject(h plumbing.Hash) (plumbing.ObjectType, []byte, error) {
	if err := o.loadPacks(false); err != nil {
		return 0, nil, err
	}
	if typ, data, found, err := o.readPacked(h); found || err != nil {
		return typ, data, err
	}
	typ, data, err := o.readLoose(h)
	if !errors.Is(err, plumbing.ErrObjectNotFound) {
		return typ, data, err
	}
	// A pack may have arrived since the packs were listed.
	if err := o.loadPacks(true); err != nil {
		return 0, nil, err
	}
	if typ, data, found, err := o.readPacked(h); found || err != nil {
		return typ, data, err
	}
	return o.fallback.ReadObject(h)
}

// readPacked looks h up in every pack.
func (o *Objects) readPacked(h plumbing.Hash) (plumbing.ObjectType, []byte, bool, error) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	for _, p := range o.packs {
		off, ok := p.find(h)
		if !ok {
			continue
		}
		// An object that was a delta base is in the cache already.
		b, ok := o.bases.Get(packOffset{p, off})
		if !ok {
			typ, data, err := o.readAt(p, off, 0)
			if err != nil {
				return 0, nil, true, fmt.Errorf("reading %s from %s: %w", h, p.name, err)
			}
			b = packedObject{typ, data}
		}
		typ, data := b.typ, b.data
		if got := hashObject(typ, data); got != h {
			return 0, nil, true, fmt.Errorf("reading %s from %s: contents hash to %s: %w", h, p.name, got, ErrBadObject)
		}
		return typ, data, true, nil
	}
	return 0, nil, false, nil
}

// hashObject computes the id of an object. Plain SHA-1 is enough here: it
// checks that stored bytes were not damaged, for objects that were already
// accepted into the repository.
func hashObject(typ plumbing.ObjectType, data []byte) plumbing.Hash {
	h := sha1.New()
	var header [32]byte
	hb := append(header[:0], typ.Bytes()...)
	hb = append(hb, ' ')
	hb = strconv.AppendInt(hb, int64(len(data)), 10)
	hb = append(hb, 0)
	h.Write(hb)
	h.Write(data)
	var id plumbing.Hash
	h.Sum(id[:0])
	return id
}

// readAt reads the object at offset in p, resolving deltas.
func (o *Objects) readAt(p *pack, offset int64, depth int) (plumbing.ObjectType, []byte, error) {
	if depth > maxDeltaDepth {
		return 0, nil, fmt.Errorf("delta chain longer than %d: %w", maxDeltaDepth, ErrBadObject)
	}
	data, e, err := readPackEntry(p, offset)
	if err != nil {
		return 0, nil, err
	}
	var base packedObject
	switch e.typ {
	case plumbing.CommitObject, plumbing.TreeObject, plumbing.BlobObject, plumbing.TagObject:
		return e.typ, data, nil
	case plumbing.OFSDeltaObject:
		baseOffset := offset - e.baseDistance
		if e.baseDistance <= 0 || baseOffset < packHeaderSize {
			return 0, nil, fmt.Errorf("object at offset %d: bad delta base distance: %w", offset, ErrBadObject)
		}
		if base, err = o.base(p, baseOffset, depth); err != nil {
			return 0, nil, err
		}
	case plumbing.REFDeltaObject:
		baseOffset, ok := p.find(e.baseHash)
		if !ok {
			return 0, nil, fmt.Errorf("object at offset %d: delta base %s not in the pack: %w", offset, e.baseHash, ErrBadObject)
		}
		if base, err = o.base(p, baseOffset, depth); err != nil {
			return 0, nil, err
		}
	}
	if size, err := deltaTargetSize(data); err != nil || size > MaxObjectSize {
		return 0, nil, fmt.Errorf("object at offset %d: bad delta header: %w", offset, ErrBadObject)
	}
	target, err := packfile.PatchDelta(base.data, data)
	if err != nil {
		return 0, nil, fmt.Errorf("object at offset %d: applying delta: %w", offset, err)
	}
	return base.typ, target, nil
}

// readPackEntry parses the header of the packed object at offset and
// inflates it. The zlib stream ends where it says it does; an offset that a
// damaged index gives, one where no object starts, fails to parse or to
// inflate, or gives contents whose id is not the one asked for. Neither the
// inflated data nor the entry (whose compressed field is cleared) refers to
// the pack's memory afterwards.
func readPackEntry(p *pack, offset int64) ([]byte, packEntry, error) {
	if offset < packHeaderSize || offset >= int64(len(p.data))-packTrailerSize {
		return nil, packEntry{}, fmt.Errorf("no object starts at offset %d: %w", offset, ErrBadObject)
	}
	e, err := parsePackEntry(p.data[offset : int64(len(p.data))-packTrailerSize])
	if err != nil {
		return nil, packEntry{}, fmt.Errorf("object at offset %d: %w", offset, err)
	}
	data, err := inflate(e.compressed, e.size)
	e.compressed = nil
	if err != nil {
		return nil, packEntry{}, fmt.Errorf("object at offset %d: %w", offset, err)
	}
	return data, e, nil
}

// base returns a delta base, from the cache when it can.
func (o *Objects) base(p *pack, offset int64, depth int) (packedObject, error) {
	key := packOffset{p, offset}
	if b, ok := o.bases.Get(key); ok {
		return b, nil
	}
	typ, data, err := o.readAt(p, offset, depth+1)
	if err != nil {
		return packedObject{}, err
	}
	b := packedObject{typ, data}
	o.bases.Add(key, b, len(data)+baseOverhead)
	return b, nil
}

// deltaTargetSize reads the size of the object a delta makes, the second of
// the two little-endian base-128 numbers that start a delta.
func deltaTargetSize(delta []byte) (int64, error) {
	next := func() (int64, error) {
		var v int64
		for shift := 0; ; shift += 7 {
			if len(delta) == 0 || shift > 56 {
				return 0, fmt.Errorf("bad delta header: %w", ErrBadObject)
			}
			c := delta[0]
			delta = delta[1:]
			v |= int64(c&0x7f) << shift
			if c&0x80 == 0 {
				return v, nil
			}
		}
	}
	if _, err := next(); err != nil { // the base's size
		return 0, err
	}
	return next()
}

// find returns the offset of object h in p, as idxfile.MemoryIndex's
// FindOffset does, without what that also does on every call: record the
// offset in a reverse-lookup map under a lock, which costs time and memory
// and makes concurrent readers wait for each other. An offset that a
// damaged index gives is caught by readPackEntry.
func (p *pack) find(h plumbing.Hash) (int64, bool) {
	idx := p.idx
	k := idx.FanoutMapping[h[0]]
	if k < 0 || k >= len(idx.Names) || k >= len(idx.Offset32) {
		return 0, false
	}
	names, offsets := idx.Names[k], idx.Offset32[k]
	n := min(len(names)/hashSize, len(offsets)/4)
	i, found := sort.Find(n, func(i int) int {
		return bytes.Compare(h[:], names[i*hashSize:(i+1)*hashSize])
	})
	if !found {
		return 0, false
	}
	off := binary.BigEndian.Uint32(offsets[i*4:])
	if off&(1<<31) == 0 {
		return int64(off), true
	}
	j := 8 * uint64(off&^(1<<31))
	if l := uint64(len(idx.Offset64)); l < 8 || j > l-8 {
		return -1, true // a damaged index: no object starts there
	}
	return int64(binary.BigEndian.Uint64(idx.Offset64[j:])), true
}

const hashSize = len(plumbing.ZeroHash)

const (
	packHeaderSize  = 12
	packTrailerSize = 20
)

// packEntry is the parsed header of one object in a pack.
type packEntry struct {
	typ          plumbing.ObjectType
	size         int64         // inflated size (of the delta, for deltas)
	baseDistance int64         // OFS_DELTA: how far back the base starts
	baseHash     plumbing.Hash // REF_DELTA: the base's id
	compressed   []byte        // the zlib stream
}

// parsePackEntry parses the header of a packed object: type and size in a
// variable-length integer, then the delta base for deltas.
func parsePackEntry(buf []byte) (packEntry, error) {
	var e packEntry
	if len(buf) == 0 {
		return e, fmt.Errorf("empty object: %w", ErrBadObject)
	}
	c := buf[0]
	e.typ = plumbing.ObjectType((c >> 4) & 7)
	size := int64(c & 0x0f)
	shift := 4
	i := 1
	for c&0x80 != 0 {
		if i >= len(buf) || shift > 56 {
			return e, fmt.Errorf("bad object header: %w", ErrBadObject)
		}
		c = buf[i]
		i++
		size |= int64(c&0x7f) << shift
		shift += 7
	}
	if size < 0 || size > MaxObjectSize {
		return e, fmt.Errorf("object of %d bytes: %w", size, ErrBadObject)
	}
	e.size = size
	switch e.typ {
	case plumbing.CommitObject, plumbing.TreeObject, plumbing.BlobObject, plumbing.TagObject:
	case plumbing.OFSDeltaObject:
		// A big-endian base-128 number where each continuation adds one.
		if i >= len(buf) {
			return e, fmt.Errorf("bad delta offset: %w", ErrBadObject)
		}
		c = buf[i]
		i++
		dist := int64(c & 0x7f)
		for c&0x80 != 0 {
			if i >= len(buf) || dist >= 1<<55 {
				return e, fmt.Errorf("bad delta offset: %w", ErrBadObject)
			}
			c = buf[i]
			i++
			dist = (dist+1)<<7 | int64(c&0x7f)
		}
		e.baseDistance = dist
	case plumbing.REFDeltaObject:
		if len(buf)-i < len(e.baseHash) {
			return e, fmt.Errorf("bad delta base: %w", ErrBadObject)
		}
		copy(e.baseHash[:], buf[i:])
		i += len(e.baseHash)
	default:
		return e, fmt.Errorf("unknown object type %d: %w", e.typ, ErrBadObject)
	}
	e.compressed = buf[i:]
	return e, nil
}

// AppendEntryHeader appends the type-and-size header of a whole
// (undeltified) object, the inverse of parsePackEntry's first step. It
// appends, as strconv's Append functions do, although every caller today
// starts from nil.
func AppendEntryHeader(b []byte, typ plumbing.ObjectType, size int64) []byte {
	c := byte(typ)<<4 | byte(size&0x0f)
	size >>= 4
	for size > 0 {
		b = append(b, c|0x80)
		c = byte(size & 0x7f)
		size >>= 7
	}
	return append(b, c)
}

var zlibReaders sync.Pool

// inflate decompresses a zlib stream that must hold exactly size bytes.
func inflate(compressed []byte, size int64) ([]byte, error) {
	src := bytes.NewReader(compressed)
	var zr io.ReadCloser
	if pooled, ok := zlibReaders.Get().(io.ReadCloser); ok {
		if err := pooled.(zlib.Resetter).Reset(src, nil); err != nil {
			return nil, fmt.Errorf("inflating: %w: %w", ErrBadObject, err)
		}
		zr = pooled
	} else {
		var err error
		if zr, err = zlib.NewReader(src); err != nil {
			return nil, fmt.Errorf("inflating: %w: %w", ErrBadObject, err)
		}
	}
	defer zlibReaders.Put(zr)
	data := make([]byte, size)
	if _, err := io.ReadFull(zr, data); err != nil {
		return nil, fmt.Errorf("inflating: %w: %w", ErrBadObject, err)
	}
	// The stream must end here: no more data, and a valid checksum.
	var one [1]byte
	if n, err := zr.Read(one[:]); n != 0 || err != io.EOF {
		return nil, fmt.Errorf("inflating: more than %d bytes: %w", size, ErrBadObject)
	}
	return data, nil
}

// readLoose reads a loose object: objects/xx/yyyy..., zlib-compressed
// "<type> <size>\x00<data>".
func (o *Objects) readLoose(h plumbing.Hash) (plumbing.ObjectType, []byte, error) {
	hex := h.String()
	path := filepath.Join(o.dir, hex[:2], hex[2:])
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil, plumbing.ErrObjectNotFound
	}
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	zr, err := zlib.NewReader(bufio.NewReader(f))
	if err != nil {
		return 0, nil, fmt.Errorf("reading loose object %s: %w: %w", h, ErrBadObject, err)
	}
	defer zr.Close()
	// The header first: the contents are read into a buffer of exactly the
	// size it gives, never grown, and the stream must end there.
	br := bufio.NewReaderSize(zr, 4096)
	header, err := br.ReadSlice(0)
	if err != nil || len(header) > maxLooseHeader {
		return 0, nil, fmt.Errorf("reading loose object %s: no object header: %w", h, ErrBadObject)
	}
	typ, size, err := parseLooseHeader(header[:len(header)-1])
	if err != nil {
		return 0, nil, fmt.Errorf("reading loose object %s: %w", h, err)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(br, data); err != nil {
		return 0, nil, fmt.Errorf("reading loose object %s: %w: %w", h, ErrBadObject, err)
	}
	var one [1]byte
	if n, err := br.Read(one[:]); n != 0 || err != io.EOF {
		return 0, nil, fmt.Errorf("reading loose object %s: more than the %d bytes its header gives: %w", h, size, ErrBadObject)
	}
	if got := hashObject(typ, data); got != h {
		return 0, nil, fmt.Errorf("reading loose object %s: contents hash to %s: %w", h, got, ErrBadObject)
	}
	return typ, data, nil
}

// parseLooseObject splits an inflated loose object into type and contents.
func parseLooseObject(raw []byte) (plumbing.ObjectType, []byte, error) {
	header, data, ok := bytes.Cut(raw, []byte{0})
	if !ok || len(header) > 32 {
		return 0, nil, fmt.Errorf("no object header: %w", ErrBadObject)
	}
	typ, n, err := parseLooseHeader(header)
	if err != nil {
		return 0, nil, err
	}
	if n != int64(len(data)) {
		return 0, nil, fmt.Errorf("bad object size %d for %d bytes: %w", n, len(data), ErrBadObject)
	}
	return typ, data, nil
}

// parseLooseHeader parses the "<type> <size>" header of a loose object.
func parseLooseHeader(header []byte) (plumbing.ObjectType, int64, error) {
	name, size, ok := strings.Cut(string(header), " ")
	typ, err := plumbing.ParseObjectType(name)
	if !ok || err != nil || typ < plumbing.CommitObject || typ > plumbing.TagObject {
		return 0, 0, fmt.Errorf("bad object type %q: %w", name, ErrBadObject)
	}
	n, err := strconv.ParseUint(size, 10, 63)
	if err != nil || size != strconv.FormatUint(n, 10) || n > MaxObjectSize {
		return 0, 0, fmt.Errorf("bad object size %q: %w", size, ErrBadObject)
	}
	return typ, int64(n), nil
}

// loadPacks opens the packs not yet open; with rescan it lists the pack
// directory again even if it was listed before.
func (o *Objects) loadPacks(rescan bool) error {
	o.mu.RLock()
	listed := len(o.known) > 0
	o.mu.RUnlock()
	if listed && !rescan {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	names, err := filepath.Glob(filepath.Join(o.dir, "pack", "pack-*.idx"))
	if err != nil {
		return err
	}
	o.known[""] = true // listed, even if there are no packs
	for _, idxPath := range names {
		name := strings.TrimSuffix(filepath.Base(idxPath), ".idx")
		if o.known[name] {
			continue
		}
		p, err := openPack(filepath.Join(o.dir, "pack", name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // an index without its pack: being written, or removed
		}
		if err != nil {
			return err
		}
		o.known[name] = true
		// Newest first: recent objects are the ones asked for most.
		o.packs = append([]*pack{p}, o.packs...)
	}
	return nil
}

// openPack maps base.pack and reads base.idx.
func openPack(base string) (*pack, error) {
	f, err := os.Open(base + ".pack")
	if err != nil {
		return nil, err
	}
	// The mapping outlives the descriptor, as it outlives git gc removing
	// the file: packs are never changed in place.
	defer f.Close()
	return readPackIndex(f, base)
}

func readPackIndex(f *os.File, base string) (*pack, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() < packHeaderSize+packTrailerSize {
		return nil, fmt.Errorf("reading %s.pack: not a pack file: %w", base, ErrBadObject)
	}
	idxFile, err := os.Open(base + ".idx")
	if err != nil {
		return nil, err
	}
	defer idxFile.Close()
	idx := idxfile.NewMemoryIndex()
	if err := idxfile.NewDecoder(bufio.NewReader(idxFile)).Decode(idx); err != nil {
		return nil, fmt.Errorf("reading %s.idx: %w", base, err)
	}
	data, unmap, err := mapFile(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("reading %s.pack: %w", base, err)
	}
	switch {
	case string(data[:4]) != "PACK":
		err = fmt.Errorf("reading %s.pack: not a pack file: %w", base, ErrBadObject)
	case [packTrailerSize]byte(data[len(data)-packTrailerSize:]) != idx.PackfileChecksum:
		err = fmt.Errorf("reading %s: the pack and its index do not match: %w", base, ErrBadObject)
	}
	if err != nil {
		_ = unmap()
		return nil, err
	}
	return &pack{name: filepath.Base(base), data: data, unmap: unmap, idx: idx}, nil
}

// Reset resets the fallback and forgets nothing else: a miss lists the packs
// again anyway, packs are immutable, and a pack removed by git gc stays
// readable through its mapping.
func (o *Objects) Reset() {
	o.fallback.Reset()
}

// AddPack opens the pack base.pack with its index base.idx (as WritePack
// returns base), so that its objects are read without listing the packs
// again.
func (o *Objects) AddPack(base string) error {
	p, err := openPack(base)
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.known[p.name] = true
	o.packs = append([]*pack{p}, o.packs...)
	return nil
}

// Close unmaps the packs and closes the fallback.
func (o *Objects) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var err error
	for _, p := range o.packs {
		if cerr := p.unmap(); err == nil {
			err = cerr
		}
	}
	o.packs = nil
	o.known = map[string]bool{}
	return errors.Join(err, o.fallback.Close())
}

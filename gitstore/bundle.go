package gitstore

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
)

// ErrBadBundle is wrapped by ReadBundle's errors about the bundle itself: not
// a git bundle, damaged, truncated, or not holding the whole history of its
// references.
var ErrBadBundle = errors.New("not a complete git bundle")

// bundleSignature is the first line of a version 2 git bundle
// (gitformat-bundle(5)); tally writes and reads only this version.
const bundleSignature = "# v2 git bundle\n"

// Limits of a bundle's header: tally's bundles name a branch, HEAD and a
// tag, so anything near these is not one.
const (
	maxBundleRefs   = 1024
	maxBundleHeader = 1 << 20
)

// BundleRef is one reference a bundle holds.
type BundleRef struct {
	Name plumbing.ReferenceName
	Hash plumbing.Hash
}

// WriteBundle writes a version 2 git bundle holding refs (full names, or
// "HEAD") and every object reachable from them, with no prerequisites: a
// file `git bundle verify` accepts and `git clone` can clone. The pack is
// undeltified, objects in a fixed order, so the same refs give the same
// bytes. It returns the references written.
func (r *Repo) WriteBundle(w io.Writer, refs []plumbing.ReferenceName) ([]BundleRef, error) {
	var out []BundleRef
	var tips []plumbing.Hash
	for _, name := range refs {
		h, err := r.ResolveRef(name)
		if err != nil {
			return nil, fmt.Errorf("writing bundle: %w", err)
		}
		out = append(out, BundleRef{Name: name, Hash: h})
		tips = append(tips, h)
	}
	objects, err := r.reachable(tips)
	if err != nil {
		return nil, fmt.Errorf("writing bundle: %w", err)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	// A bufio.Writer keeps its first error and Flush returns it.
	_, _ = bw.WriteString(bundleSignature)
	for _, ref := range out {
		fmt.Fprintf(bw, "%s %s\n", ref.Hash, ref.Name)
	}
	_, _ = bw.WriteString("\n")
	if _, err := encodePack(bw, objects, nil); err != nil {
		return nil, fmt.Errorf("writing bundle: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("writing bundle: %w", err)
	}
	return out, nil
}

// ResolveRef returns what a reference points at (a commit, or a tag object
// for an annotated tag), following symbolic references such as HEAD. A
// missing reference gives an error wrapping plumbing.ErrReferenceNotFound.
func (r *Repo) ResolveRef(name plumbing.ReferenceName) (plumbing.Hash, error) {
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	for range 5 {
		ref, err := r.storage.Reference(name)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("reading %s: %w", name, err)
		}
		if ref.Type() == plumbing.HashReference {
			return ref.Hash(), nil
		}
		name = ref.Target()
	}
	return plumbing.ZeroHash, fmt.Errorf("reading %s: too many symbolic references", name)
}

// reachable returns every object reachable from tips (tags, commits, trees
// and blobs), sorted by id. A missing object is an error wrapping
// plumbing.ErrObjectNotFound.
func (r *Repo) reachable(tips []plumbing.Hash) ([]batchObject, error) {
	seen := map[plumbing.Hash]bool{}
	var out []batchObject
	queue := append([]plumbing.Hash(nil), tips...)
	for len(queue) > 0 {
		h := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if seen[h] {
			continue
		}
		seen[h] = true
		typ, data, err := r.objects.readObject(h)
		if err != nil {
			return nil, err
		}
		out = append(out, batchObject{typ: typ, data: data, hash: h})
		switch typ {
		case plumbing.TagObject:
			target, err := tagTargetOf(data)
			if err != nil {
				return nil, fmt.Errorf("tag %s: %w", h, err)
			}
			queue = append(queue, target)
		case plumbing.CommitObject:
			c, err := parseCommit(data)
			if err != nil {
				return nil, fmt.Errorf("commit %s: %w", h, err)
			}
			queue = append(queue, c.Tree)
			queue = append(queue, c.Parents...)
		case plumbing.TreeObject:
			entries, err := parseTree(data)
			if err != nil {
				return nil, fmt.Errorf("tree %s: %w", h, err)
			}
			for _, e := range entries {
				if e.Mode != filemode.Submodule {
					queue = append(queue, e.Hash)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].hash[:], out[j].hash[:]) < 0 })
	return out, nil
}

// tagTargetOf reads the object line of an annotated tag.
func tagTargetOf(data []byte) (plumbing.Hash, error) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	hex, ok := bytes.CutPrefix(line, []byte("object "))
	if !ok {
		return plumbing.ZeroHash, fmt.Errorf("no object line: %w", ErrBadObject)
	}
	h, err := parseHex(string(hex))
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("object line: %w", ErrBadObject)
	}
	return h, nil
}

// ReadBundle reads a version 2 git bundle (as WriteBundle writes it) into a
// new repository in memory whose HEAD points at the bundle's one branch. It
// refuses, with an error wrapping ErrBadBundle that says what is wrong, a
// file that is not such a bundle, whose pack is damaged or truncated (its
// checksum is checked before anything is parsed), that has prerequisites,
// or that lacks an object its references reach. It returns the references
// the bundle holds besides HEAD.
func ReadBundle(data []byte) (*Repo, []BundleRef, error) {
	refs, pack, err := parseBundleHeader(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadBundle, err)
	}
	if len(pack) < packHeaderSize+sha1.Size || !bytes.Equal(pack[:4], []byte("PACK")) {
		return nil, nil, fmt.Errorf("%w: no pack after the header (truncated?)", ErrBadBundle)
	}
	sum := sha1.Sum(pack[:len(pack)-sha1.Size])
	if !bytes.Equal(sum[:], pack[len(pack)-sha1.Size:]) {
		return nil, nil, fmt.Errorf("%w: the pack's checksum does not match its contents (damaged or truncated)", ErrBadBundle)
	}
	if err := checkPackSizes(pack); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadBundle, err)
	}
	r := NewMemory(false)
	if err := packfile.UpdateObjectStorage(r.storage, bytes.NewReader(pack)); err != nil {
		return nil, nil, fmt.Errorf("%w: reading the pack: %v", ErrBadBundle, err)
	}
	var branch plumbing.ReferenceName
	var tips []plumbing.Hash
	var out []BundleRef
	for _, ref := range refs {
		tips = append(tips, ref.Hash)
		if ref.Name == plumbing.HEAD {
			continue
		}
		if ref.Name.IsBranch() {
			if branch != "" {
				return nil, nil, fmt.Errorf("%w: it holds two branches, %s and %s", ErrBadBundle, branch.Short(), ref.Name.Short())
			}
			branch = ref.Name
		}
		out = append(out, ref)
	}
	if branch == "" {
		return nil, nil, fmt.Errorf("%w: it holds no branch", ErrBadBundle)
	}
	if _, err := r.reachable(tips); err != nil {
		return nil, nil, fmt.Errorf("%w: the history of its references is incomplete: %v", ErrBadBundle, err)
	}
	for _, ref := range out {
		if err := r.storage.SetReference(plumbing.NewHashReference(ref.Name, ref.Hash)); err != nil {
			return nil, nil, fmt.Errorf("setting %s: %w", ref.Name, err)
		}
	}
	if err := r.storage.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, branch)); err != nil {
		return nil, nil, fmt.Errorf("setting HEAD: %w", err)
	}
	for _, ref := range refs {
		if ref.Name == plumbing.HEAD {
			if h, _ := r.ResolveRef(plumbing.HEAD); h != ref.Hash {
				return nil, nil, fmt.Errorf("%w: its HEAD %s is not its branch %s", ErrBadBundle, ref.Hash, branch.Short())
			}
		}
	}
	return r, out, nil
}

// maxBundleInflated bounds what a bundle's objects inflate to, all
// together: a 500-image release is a few megabytes, ten years of releases
// some hundreds; a small file that inflates to more is a decompression bomb.
const maxBundleInflated = 2 << 30

// checkPackSizes walks the entries of a pack (whose checksum was checked)
// before anything is stored: each object, and each object a delta makes, at
// most maxObjectSize; all of them together at most maxBundleInflated; each
// zlib stream exactly its declared size; the entries exactly fill the pack.
func checkPackSizes(pack []byte) error {
	if v := binary.BigEndian.Uint32(pack[4:8]); v != 2 {
		return fmt.Errorf("pack version %d, want 2", v)
	}
	count := binary.BigEndian.Uint32(pack[8:12])
	body := pack[packHeaderSize : len(pack)-sha1.Size]
	var total int64
	var zr io.ReadCloser
	for i := uint32(0); i < count; i++ {
		if len(body) == 0 {
			return fmt.Errorf("the pack ends after %d of its %d objects", i, count)
		}
		e, err := parsePackEntry(body)
		if err != nil {
			return fmt.Errorf("object %d of the pack: %w", i, err)
		}
		src := bytes.NewReader(e.compressed)
		if zr == nil {
			if zr, err = zlib.NewReader(src); err != nil {
				return fmt.Errorf("object %d of the pack: %v", i, err)
			}
		} else if err := zr.(zlib.Resetter).Reset(src, nil); err != nil {
			return fmt.Errorf("object %d of the pack: %v", i, err)
		}
		var head bytes.Buffer
		n, err := io.Copy(&limitedHead{buf: &head, keep: 20}, io.LimitReader(zr, e.size+1))
		if err != nil {
			return fmt.Errorf("object %d of the pack: %v", i, err)
		}
		if n != e.size {
			return fmt.Errorf("object %d of the pack inflates to %d bytes, not the %d it declares", i, n, e.size)
		}
		if _, err := zr.Read(make([]byte, 1)); err != io.EOF {
			return fmt.Errorf("object %d of the pack: its zlib stream does not end where it should", i)
		}
		total += e.size
		if e.typ == plumbing.OFSDeltaObject || e.typ == plumbing.REFDeltaObject {
			target, err := deltaTargetSize(head.Bytes())
			if err != nil {
				return fmt.Errorf("object %d of the pack: %w", i, err)
			}
			if target > maxObjectSize {
				return fmt.Errorf("object %d of the pack makes an object of %d bytes: %w", i, target, ErrBadObject)
			}
			total += target
		}
		if total > maxBundleInflated {
			return fmt.Errorf("the pack's objects inflate to more than %d bytes", int64(maxBundleInflated))
		}
		body = e.compressed[len(e.compressed)-src.Len():]
	}
	if len(body) != 0 {
		return fmt.Errorf("%d bytes after the pack's %d objects", len(body), count)
	}
	return nil
}

// limitedHead is a writer that keeps the first keep bytes written to it and
// counts the rest.
type limitedHead struct {
	buf  *bytes.Buffer
	keep int
}

func (w *limitedHead) Write(p []byte) (int, error) {
	if room := w.keep - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// parseBundleHeader splits a bundle into its references and its pack.
func parseBundleHeader(data []byte) ([]BundleRef, []byte, error) {
	if !bytes.HasPrefix(data, []byte(bundleSignature)) {
		if bytes.HasPrefix(data, []byte("# v3 git bundle\n")) {
			return nil, nil, errors.New("a version 3 bundle: tally reads version 2 (git bundle create --version=2)")
		}
		return nil, nil, errors.New("it does not start with " + strings.TrimSpace(bundleSignature))
	}
	rest := data[len(bundleSignature):]
	var refs []BundleRef
	names := map[plumbing.ReferenceName]bool{}
	read := len(bundleSignature)
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return nil, nil, errors.New("the header ends before its blank line (truncated?)")
		}
		line := string(rest[:i])
		rest = rest[i+1:]
		read += i + 1
		if read > maxBundleHeader {
			return nil, nil, fmt.Errorf("the header is longer than %d bytes", maxBundleHeader)
		}
		if line == "" {
			break
		}
		if strings.HasPrefix(line, "-") {
			return nil, nil, errors.New("it has prerequisites: it holds only part of a history")
		}
		hex, name, ok := strings.Cut(line, " ")
		h, err := parseHex(hex)
		if !ok || err != nil {
			return nil, nil, fmt.Errorf("bad reference line %q", truncate(line, 80))
		}
		ref := plumbing.ReferenceName(name)
		if ref != plumbing.HEAD && (!strings.HasPrefix(name, "refs/") || ref.Validate() != nil) {
			return nil, nil, fmt.Errorf("bad reference name %q", truncate(name, 80))
		}
		if names[ref] {
			return nil, nil, fmt.Errorf("reference %s appears twice", ref)
		}
		names[ref] = true
		refs = append(refs, BundleRef{Name: ref, Hash: h})
		if len(refs) > maxBundleRefs {
			return nil, nil, fmt.Errorf("more than %d references", maxBundleRefs)
		}
	}
	if len(refs) == 0 {
		return nil, nil, errors.New("it holds no references")
	}
	return refs, rest, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

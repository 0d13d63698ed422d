// Package pack is gitstore's own object store on disk: it reads git objects
// from pack files and loose objects, and writes packs. It knows nothing of
// tally; gitstore is its only user.
//
// Start with NewObjects on a repository's objects directory, with a
// fallback Reader (gitstore passes its go-git storer) for what is in no pack
// and not loose, such as objects in alternates:
//
//	objs := pack.NewObjects(filepath.Join(gitDir, "objects"), fallback)
//	defer objs.Close()
//	typ, data, err := objs.ReadObject(h)  // contents, checked against h
//	typ, size, err := objs.ObjectSize(h)  // from the header, nothing inflated
//
// WritePack writes undeltified objects as one pack and its index, the way
// git does (temporary names, the index renamed last); AddPack then makes
// the Objects read them without listing the pack directory again.
// EncodePack writes the same stream to any writer (a bundle's pack), and
// CheckSizes walks a pack stream that came from outside (a bundle), checking
// every size and zlib stream before anything is stored.
//
// # Reading
//
// Each pack is mapped into memory read-only, as git does, so any number of
// goroutines read at once without a system call or a lock on a file
// position. Objects are found through the index's fan-out table by binary
// search, delta chains (OFS_DELTA and REF_DELTA) are resolved with a cache
// of delta bases bounded at 32 MiB, and every object read, packed or loose,
// is hashed and compared with its id. Headers, sizes and zlib streams are
// parsed strictly; a damaged pack, index or loose object gives an error
// wrapping ErrBadObject, never a read outside the pack, and no object over
// MaxObjectSize is inflated. A miss lists the pack directory again once, so
// packs that git or a fetch wrote meanwhile are found.
//
// # Platforms
//
// Mapping uses golang.org/x/sys/unix (mmap.go), so the package builds on
// Linux and the other Unix systems (macOS, the BSDs). It has no build tag
// and no fallback: on other systems (Windows, Plan 9, js/wasm) it does not
// compile, and neither does gitstore, whose repository lock uses flock.
package pack

package gitstore

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/internal/interop"
)

// bundleRepo is a repository with two commits on main and a tag on the
// first, and the bundle of main, HEAD and the tag.
func bundleRepo(t testing.TB, r *Repo) (first, second, tag plumbing.Hash, bundle []byte) {
	t.Helper()
	first = mustCommit(t, r, plumbing.ZeroHash, "first", write("a/b", "x"), write("c", "y"))
	var err error
	tag, err = r.CreateTag(TagRequest{Name: "2025.06.0", Target: first, Message: "release", Tagger: testAuthor()})
	if err != nil {
		t.Fatal(err)
	}
	second = mustCommit(t, r, first, "second", write("a/d", "z"))
	var buf bytes.Buffer
	if _, err := r.WriteBundle(&buf, []plumbing.ReferenceName{plumbing.HEAD, "refs/heads/main", "refs/tags/2025.06.0"}); err != nil {
		t.Fatal(err)
	}
	return first, second, tag, buf.Bytes()
}

func TestBundleRoundTrip(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := b.open(t)
			_, second, tag, data := bundleRepo(t, r)
			got, refs, err := ReadBundle(data)
			if err != nil {
				t.Fatal(err)
			}
			branch, tip, err := got.Head()
			if err != nil || branch != "refs/heads/main" || tip != second {
				t.Fatalf("Head() = %s %s %v, want main %s", branch, tip, err, second)
			}
			want := []BundleRef{{"refs/heads/main", second}, {"refs/tags/2025.06.0", tag}}
			if len(refs) != 2 || refs[0] != want[0] || refs[1] != want[1] {
				t.Fatalf("refs = %v, want %v", refs, want)
			}
			if h, err := got.ResolveRevision("refs/tags/2025.06.0"); err != nil || h.IsZero() {
				t.Fatalf("resolving the tag: %s %v", h, err)
			}
			snap, err := got.Snapshot(second)
			if err != nil {
				t.Fatal(err)
			}
			for p, want := range map[string]string{"a/b": "x", "c": "y", "a/d": "z"} {
				if data, err := snap.ReadFile(p); err != nil || string(data) != want {
					t.Errorf("%s = %q, %v; want %q", p, data, err, want)
				}
			}
			// The same references give the same bytes.
			var again bytes.Buffer
			if _, err := r.WriteBundle(&again, []plumbing.ReferenceName{plumbing.HEAD, "refs/heads/main", "refs/tags/2025.06.0"}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), data) {
				t.Error("writing the bundle twice gave different bytes")
			}
		})
	}
}

// TestReadBundleTruncated cuts the bundle at every length: none reads.
func TestReadBundleTruncated(t *testing.T) {
	t.Parallel()
	_, _, _, data := bundleRepo(t, memRepo(false))
	for n := range len(data) {
		if _, _, err := ReadBundle(data[:n]); !errors.Is(err, ErrBadBundle) {
			t.Fatalf("a bundle cut at %d of %d bytes: err = %v, want ErrBadBundle", n, len(data), err)
		}
	}
}

// TestReadBundleDamaged flips every byte of the pack: none reads.
func TestReadBundleDamaged(t *testing.T) {
	t.Parallel()
	_, _, _, data := bundleRepo(t, memRepo(false))
	start := bytes.Index(data, []byte("\n\nPACK")) + 2
	for i := start; i < len(data); i++ {
		bad := bytes.Clone(data)
		bad[i] ^= 0x40
		if _, _, err := ReadBundle(bad); !errors.Is(err, ErrBadBundle) {
			t.Fatalf("byte %d flipped: err = %v, want ErrBadBundle", i, err)
		}
	}
}

func TestReadBundleRefusals(t *testing.T) {
	t.Parallel()
	r := memRepo(false)
	first, second, _, data := bundleRepo(t, r)
	header, pack, _ := bytes.Cut(data, []byte("\n\n"))
	pack = append([]byte(nil), pack...)
	withHeader := func(h string) []byte { return append([]byte(h+"\n"), pack...) }
	// A pack holding only the second commit's new objects: an incomplete history.
	partial := func() []byte {
		objs, err := r.reachable([]plumbing.Hash{second})
		if err != nil {
			t.Fatal(err)
		}
		keep, err := r.reachable([]plumbing.Hash{first})
		if err != nil {
			t.Fatal(err)
		}
		old := map[plumbing.Hash]bool{}
		for _, o := range keep {
			old[o.hash] = true
		}
		var only []batchObject
		for _, o := range objs {
			if !old[o.hash] {
				only = append(only, o)
			}
		}
		var b bytes.Buffer
		b.WriteString(bundleSignature + second.String() + " refs/heads/main\n\n")
		if _, err := encodePack(&b, only, nil); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}()
	// A pack of one blob that declares size and holds the zlib of data.
	onePack := func(size int64, data []byte) []byte {
		var b bytes.Buffer
		b.WriteString(bundleSignature + second.String() + " refs/heads/main\n\n")
		start := b.Len()
		b.Write([]byte{'P', 'A', 'C', 'K', 0, 0, 0, 2, 0, 0, 0, 1})
		b.Write(appendPackEntryHeader(nil, plumbing.BlobObject, size))
		zw := zlib.NewWriter(&b)
		_, _ = zw.Write(data)
		_ = zw.Close()
		sum := sha1.Sum(b.Bytes()[start:])
		b.Write(sum[:])
		return b.Bytes()
	}
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"huge object", "object of 1073741824 bytes", onePack(1<<30, []byte("x"))},
		{"inflates to more", "inflates to 3 bytes, not the 2", onePack(2, []byte("xyz"))},
		{"inflates to less", "inflates to 1 bytes, not the 2", onePack(2, []byte("x"))},
		{"empty", "does not start with", nil},
		{"v3", "version 3", []byte("# v3 git bundle\n@object-format=sha1\n\n")},
		{"not a bundle", "does not start with", []byte("PACK....")},
		{"no blank line", "ends before", []byte(string(header))},
		{"prerequisite", "prerequisites", withHeader(bundleSignature + "-" + first.String() + " first\n" + second.String() + " refs/heads/main\n")},
		{"bad ref line", "bad reference line", withHeader(bundleSignature + "zz refs/heads/main\n")},
		{"bad ref name", "bad reference name", withHeader(bundleSignature + second.String() + " main\n")},
		{"ref twice", "appears twice", withHeader(bundleSignature + second.String() + " refs/heads/main\n" + second.String() + " refs/heads/main\n")},
		{"no refs", "no references", withHeader(bundleSignature)},
		{"no branch", "no branch", withHeader(bundleSignature + second.String() + " refs/tags/x\n")},
		{"two branches", "two branches", withHeader(bundleSignature + second.String() + " refs/heads/main\n" + first.String() + " refs/heads/old\n")},
		{"HEAD elsewhere", "its HEAD", withHeader(bundleSignature + first.String() + " HEAD\n" + second.String() + " refs/heads/main\n")},
		{"missing object", "incomplete", withHeader(bundleSignature + strings.Repeat("ab", 20) + " refs/heads/main\n")},
		{"partial history", "incomplete", partial},
		{"no pack", "no pack", []byte(bundleSignature + second.String() + " refs/heads/main\n\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadBundle(tc.data)
			if !errors.Is(err, ErrBadBundle) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrBadBundle saying %q", err, tc.want)
			}
		})
	}
}

// TestInteropBundleGit: git verifies and clones what WriteBundle writes,
// and ReadBundle reads what git bundle create writes.
func TestInteropBundleGit(t *testing.T) {
	t.Parallel()
	interop.Require(t, "git")
	r := diskRepo(t, true)
	_, second, _, data := bundleRepo(t, r)
	dir := t.TempDir()
	file := filepath.Join(dir, "sigs.bundle")
	if err := os.WriteFile(file, data, 0o666); err != nil {
		t.Fatal(err)
	}
	// git verifies a bundle inside a repository: an empty one, so that
	// nothing but the bundle can supply an object.
	empty := filepath.Join(dir, "empty")
	interop.Git(t, dir, nil, "init", "-q", "--bare", empty)
	interop.Git(t, empty, nil, "bundle", "verify", file)
	interop.Git(t, dir, nil, "clone", "-q", file, "clone")
	if got := strings.TrimSpace(interop.Git(t, filepath.Join(dir, "clone"), nil, "rev-parse", "HEAD")); got != second.String() {
		t.Fatalf("the clone's HEAD is %s, want %s", got, second)
	}
	interop.Git(t, filepath.Join(dir, "clone"), nil, "fsck", "--strict", "--no-dangling")

	// git's own bundle (deltified, another object order) reads too.
	gitFile := filepath.Join(dir, "git.bundle")
	interop.Git(t, filepath.Join(dir, "clone"), nil, "bundle", "create", "-q", "--version=2", gitFile, "main", "2025.06.0")
	gitData, err := os.ReadFile(gitFile)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := ReadBundle(gitData)
	if err != nil {
		t.Fatal(err)
	}
	if _, tip, err := got.Head(); err != nil || tip != second {
		t.Fatalf("git's bundle: HEAD %s %v, want %s", tip, err, second)
	}
}

// FuzzReadBundle: a bundle that reads holds every object its references
// reach, and writing those references again reads back to the same refs.
func FuzzReadBundle(f *testing.F) {
	_, _, _, data := bundleRepo(f, memRepo(false))
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add([]byte(bundleSignature + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, refs, err := ReadBundle(data)
		if err != nil {
			if !errors.Is(err, ErrBadBundle) && !strings.HasPrefix(err.Error(), "setting ") {
				t.Fatalf("error not wrapping ErrBadBundle: %v", err)
			}
			return
		}
		names := []plumbing.ReferenceName{}
		for _, ref := range refs {
			names = append(names, ref.Name)
		}
		var buf bytes.Buffer
		if _, err := r.WriteBundle(&buf, names); err != nil {
			t.Fatalf("writing back a bundle that read: %v", err)
		}
		_, again, err := ReadBundle(buf.Bytes())
		if err != nil {
			t.Fatalf("reading back: %v", err)
		}
		if len(again) != len(refs) {
			t.Fatalf("refs %v, then %v", refs, again)
		}
		for i := range refs {
			if again[i] != refs[i] {
				t.Fatalf("refs %v, then %v", refs, again)
			}
		}
	})
}

// FuzzReadBundlePack fuzzes the pack behind a valid header, with its
// checksum made right, so that the pack parser sees what a checksum would
// otherwise stop: nothing panics, and a pack that reads is complete.
func FuzzReadBundlePack(f *testing.F) {
	r := memRepo(false)
	_, second, _, data := bundleRepo(f, r)
	_, pack, _ := bytes.Cut(data, []byte("\n\n"))
	f.Add(bytes.Clone(pack[:len(pack)-sha1Size]))
	f.Fuzz(func(t *testing.T, body []byte) {
		sum := sha1Sum(body)
		in := append([]byte(bundleSignature+second.String()+" refs/heads/main\n\n"), body...)
		in = append(in, sum[:]...)
		got, _, err := ReadBundle(in)
		if err != nil {
			if !errors.Is(err, ErrBadBundle) {
				t.Fatalf("error not wrapping ErrBadBundle: %v", err)
			}
			return
		}
		if _, err := got.reachable([]plumbing.Hash{second}); err != nil {
			t.Fatalf("a bundle that read is incomplete: %v", err)
		}
	})
}

const sha1Size = sha1.Size

func sha1Sum(b []byte) [sha1.Size]byte { return sha1.Sum(b) }

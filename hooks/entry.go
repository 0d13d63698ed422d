package hooks

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/tally-sig/tally/gitstore"
)

// ErrBadHookInput is wrapped by the error of a hook entry point when git
// gave it input it cannot read.
var ErrBadHookInput = errors.New("unexpected hook input")

// ServerOptions are what git gives the pre-receive hook.
type ServerOptions struct {
	// GitDir is the receiving repository ($GIT_DIR, or the hook's working
	// directory).
	GitDir string
	// ObjectDir is $GIT_OBJECT_DIRECTORY: where git quarantines the pushed
	// objects until the hook accepts them. Empty when git does not
	// quarantine them.
	ObjectDir string
	// AlternateObjectDirs is $GIT_ALTERNATE_OBJECT_DIRECTORIES, split.
	AlternateObjectDirs []string
	// Input is the hook's standard input: "<old> <new> <ref>" lines.
	Input io.Reader
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// PreReceive is the server hook: it judges a push into a bare repository as
// CheckPush does, reading the pushed objects from git's quarantine.
func PreReceive(opts ServerOptions) (*Result, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// "<old> <new> <ref>" per updated ref.
	updates, err := readUpdates(opts.Input, "pre-receive", 3, "<old> <new> <ref>", func(f []string) (string, string, string) {
		return f[2], f[0], f[1]
	})
	if err != nil {
		return nil, err
	}
	gitDir, err := filepath.Abs(opts.GitDir)
	if err != nil {
		return nil, err
	}
	refs, head, err := readRefs(gitDir, nil)
	if err != nil {
		return nil, err
	}
	dir := gitDir
	if opts.ObjectDir != "" && !sameDir(opts.ObjectDir, filepath.Join(commonDir(gitDir), "objects")) {
		view, cleanup, err := quarantineView(gitDir, opts.ObjectDir, opts.AlternateObjectDirs)
		if err != nil {
			return nil, fmt.Errorf("reading the pushed objects: %w", err)
		}
		defer cleanup()
		dir = view
	}
	repo, err := gitstore.Open(dir)
	if err != nil {
		return nil, err
	}
	defer repo.Close()
	return CheckPush(repo, Push{Refs: refs, Head: head, Updates: updates}, Options{Now: opts.Now})
}

// ClientOptions are what git gives the client hooks.
type ClientOptions struct {
	// Dir is the clone (the hook's working directory).
	Dir string
	// Remote is the name of the remote pushed to (pre-push's first argument).
	Remote string
	// Input is pre-push's standard input:
	// "<local ref> <local sha> <remote ref> <remote sha>" lines.
	Input io.Reader
	// IndexFile is the index a pre-commit hook judges ($GIT_INDEX_FILE);
	// the repository's own index when empty.
	IndexFile string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// PreCommit is the client pre-commit hook: it judges the staged changes as
// CheckStaged does.
func PreCommit(opts ClientOptions) (*Result, error) {
	repo, err := gitstore.Open(opts.Dir)
	if err != nil {
		return nil, err
	}
	defer repo.Close()
	file := opts.IndexFile
	if file == "" {
		file = filepath.Join(repo.GitDir(), "index")
	} else if !filepath.IsAbs(file) {
		file = filepath.Join(opts.Dir, file)
	}
	return CheckStaged(repo, file, Options{Now: opts.Now})
}

// PrePush is the client pre-push hook: it judges a push as the server would,
// with what the clone knows of the remote (its remote-tracking references).
func PrePush(opts ClientOptions) (*Result, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// The remote ref moves from what the remote has to what is pushed.
	updates, err := readUpdates(opts.Input, "pre-push", 4, "<local ref> <local sha> <remote ref> <remote sha>", func(f []string) (string, string, string) {
		return f[2], f[3], f[1]
	})
	if err != nil {
		return nil, err
	}
	repo, err := gitstore.Open(opts.Dir)
	if err != nil {
		return nil, err
	}
	defer repo.Close()
	gitDir := repo.GitDir()
	prefix := "refs/remotes/" + opts.Remote + "/"
	refs, _, err := readRefs(gitDir, func(name string) (string, bool) {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok || opts.Remote == "" || rest == "HEAD" {
			return "", false
		}
		return "refs/heads/" + rest, true
	})
	if err != nil {
		return nil, err
	}
	head, err := remoteHead(gitDir, prefix)
	if err != nil {
		head = plumbing.ZeroHash // the remote's HEAD is not known: judge by each update's old tip
	}
	for _, u := range updates {
		if !u.Old.IsZero() {
			refs = append(refs, Ref{Name: u.Name, Hash: u.Old})
		}
	}
	return CheckPush(repo, Push{Refs: refs, Head: head, Updates: updates}, Options{Now: opts.Now})
}

func parseHash(s string) (plumbing.Hash, error) {
	if len(s) != 40 || strings.Trim(s, "0123456789abcdef") != "" {
		return plumbing.ZeroHash, fmt.Errorf("bad object id %q", s)
	}
	return plumbing.NewHash(s), nil
}

// commonDir returns the directory holding a repository's objects and refs.
func commonDir(gitDir string) string {
	b, err := os.ReadFile(filepath.Join(gitDir, "commondir"))
	if err != nil {
		return gitDir
	}
	dir := strings.TrimSpace(string(b))
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(gitDir, dir)
	}
	return filepath.Clean(dir)
}

func sameDir(a, b string) bool {
	ai, err1 := os.Stat(a)
	bi, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(ai, bi)
}

// readRefs lists the references of the repository at gitDir that point at
// objects, renamed by rename (nil keeps every name; false drops a
// reference), and the tip HEAD points at (zero when unborn).
func readRefs(gitDir string, rename func(string) (string, bool)) ([]Ref, plumbing.Hash, error) {
	st := filesystem.NewStorage(osfs.New(commonDir(gitDir)), cache.NewObjectLRU(1<<20))
	defer st.Close()
	iter, err := st.IterReferences()
	if err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("reading references: %w", err)
	}
	var refs []Ref
	byName := map[plumbing.ReferenceName]plumbing.Hash{}
	err = iter.ForEach(func(r *plumbing.Reference) error {
		if r.Type() != plumbing.HashReference {
			return nil
		}
		byName[r.Name()] = r.Hash()
		name := r.Name().String()
		if rename != nil {
			n, ok := rename(name)
			if !ok {
				return nil
			}
			name = n
		}
		refs = append(refs, Ref{Name: name, Hash: r.Hash()})
		return nil
	})
	if err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("reading references: %w", err)
	}
	head := plumbing.ZeroHash
	if r, err := st.Reference(plumbing.HEAD); err == nil {
		if r.Type() == plumbing.SymbolicReference {
			head = byName[r.Target()]
		} else {
			head = r.Hash()
		}
	}
	return refs, head, nil
}

// remoteHead resolves refs/remotes/<remote>/HEAD.
func remoteHead(gitDir, prefix string) (plumbing.Hash, error) {
	st := filesystem.NewStorage(osfs.New(commonDir(gitDir)), cache.NewObjectLRU(1<<20))
	defer st.Close()
	r, err := st.Reference(plumbing.ReferenceName(prefix + "HEAD"))
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if r.Type() == plumbing.SymbolicReference {
		if r, err = st.Reference(r.Target()); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	return r.Hash(), nil
}

// quarantineView builds a throwaway bare repository, inside gitDir, that
// holds the repository's own objects and the quarantined pushed ones as hard
// links: go-git reads neither $GIT_OBJECT_DIRECTORY nor
// $GIT_ALTERNATE_OBJECT_DIRECTORIES, and follows no link out of a
// repository. Hard links cost one directory entry per object file (git keeps
// loose objects few: it packs them past gc.auto), keep the objects alive
// while a concurrent gc runs, and change nothing in the repository or the
// quarantine.
func quarantineView(gitDir, quarantine string, alternates []string) (string, func(), error) {
	common := commonDir(gitDir)
	objects := filepath.Join(common, "objects")
	for _, a := range alternates {
		if a != "" && !sameDir(a, objects) && !sameDir(a, quarantine) {
			return "", nil, fmt.Errorf("the repository borrows objects from %s (alternates), which the tally hook does not read", a)
		}
	}
	if _, err := os.Stat(filepath.Join(objects, "info", "alternates")); err == nil {
		return "", nil, errors.New("the repository borrows objects through objects/info/alternates, which the tally hook does not read")
	}
	view, err := os.MkdirTemp(common, "tally-hook-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(view) }
	fail := func(err error) (string, func(), error) {
		cleanup()
		return "", nil, err
	}
	for _, d := range []string{"refs/heads", "refs/tags", "objects/pack", "objects/info"} {
		if err := os.MkdirAll(filepath.Join(view, d), 0o755); err != nil {
			return fail(err)
		}
	}
	if err := os.WriteFile(filepath.Join(view, "HEAD"), []byte("ref: refs/heads/main\n"), 0o644); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(view, "config"), []byte("[core]\n\trepositoryformatversion = 0\n\tbare = true\n"), 0o644); err != nil {
		return fail(err)
	}
	for _, dir := range []string{objects, quarantine} {
		if err := linkObjects(dir, filepath.Join(view, "objects")); err != nil {
			return fail(fmt.Errorf("linking the objects of %s: %w", dir, err))
		}
	}
	return view, cleanup, nil
}

// linkObjects hard-links the loose objects and pack files of the object
// directory src into dst.
func linkObjects(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		switch {
		case n == "pack":
		case len(n) == 2 && strings.Trim(n, "0123456789abcdef") == "" && e.IsDir():
		default:
			continue
		}
		files, err := os.ReadDir(filepath.Join(src, n))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dst, n), 0o755); err != nil {
			return err
		}
		for _, f := range files {
			if !f.Type().IsRegular() || strings.HasPrefix(f.Name(), "tmp_") || strings.HasPrefix(f.Name(), ".") {
				continue
			}
			err := os.Link(filepath.Join(src, n, f.Name()), filepath.Join(dst, n, f.Name()))
			if err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// readUpdates reads the ref updates a hook gets on its standard input, one
// line of want fields per ref, in the form format describes; pick returns a
// line's ref name, old and new object ids.
func readUpdates(r io.Reader, hook string, want int, format string, pick func(fields []string) (name, old, nw string)) ([]Update, error) {
	var updates []Update
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != want {
			return nil, fmt.Errorf("%w: %s line %q is not \"%s\"", ErrBadHookInput, hook, sc.Text(), format)
		}
		name, o, n := pick(f)
		old, err1 := parseHash(o)
		nw, err2 := parseHash(n)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%w: %s line %q: bad object id", ErrBadHookInput, hook, sc.Text())
		}
		updates = append(updates, Update{Name: name, Old: old, New: nw})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the %s input: %w", hook, err)
	}
	return updates, nil
}

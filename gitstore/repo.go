package gitstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/filesystem/dotgit"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/tally-sig/tally/gitstore/internal/lru"
	"github.com/tally-sig/tally/gitstore/internal/pack"
)

// Cache sizes. The object cache is go-git's, for packed delta bases and loose
// objects; trees and blobs are decoded once and kept by id in tally's own
// caches, shared by every Snapshot of a Repo.
const (
	objectCacheSize = 96 << 20
	treeCacheSize   = 64 << 20
	blobCacheSize   = 64 << 20
)

// DefaultBranch is the branch Init points HEAD at when given none.
const DefaultBranch = "main"

// Repo is a git repository holding signatures: bare, with a working tree on
// disk, or in memory. Its methods are safe for concurrent use; writers that
// must not interleave with other processes take Lock first.
type Repo struct {
	gitDir    string // "" in memory
	commonDir string // where objects, refs and config live; gitDir unless a linked worktree
	workDir   string // "" when bare or in memory

	storage  storage.Storer
	repo     *git.Repository
	worktree billy.Filesystem // nil when bare

	// storeMu serialises every use of storage and repo: go-git's storers
	// are not safe for concurrent use.
	storeMu sync.Mutex
	objects pack.Reader
	trees   *lru.Cache[plumbing.Hash, []Entry]
	blobs   *lru.Cache[plumbing.Hash, []byte]

	// refMu serialises this process's reference updates on disk, which
	// other processes see as git's lock files.
	refMu sync.Mutex
	// worktreeMu serialises the goroutines that commit to the checked-out
	// branch, from checking the working tree to writing the index.
	worktreeMu sync.Mutex
	// memLock stands in for the lock file of a repository in memory.
	memLock chan struct{}
	// now is the clock for commits and tags that give no time.
	now func() time.Time

	// remoteOut receives the remote's lines during Fetch and Push.
	remoteMu  sync.Mutex
	remoteOut io.Writer
}

func newRepo(s storage.Storer, wt billy.Filesystem) *Repo {
	r := &Repo{
		storage:  s,
		worktree: wt,
		trees:    lru.New[plumbing.Hash, []Entry](treeCacheSize),
		blobs:    lru.New[plumbing.Hash, []byte](blobCacheSize),
		memLock:  make(chan struct{}, 1),
		now:      time.Now,
	}
	r.objects = &storerObjects{mu: &r.storeMu, s: s}
	return r
}

// Open opens the repository at path: a working tree with a .git directory, a
// linked working tree with a .git file, or a bare repository. Any other path
// gives an error wrapping ErrNotRepository. Open does not look in parent
// directories. Close the Repo when done: it keeps pack files open.
func Open(path string) (*Repo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	gitDir, workDir, err := findGitDir(abs)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	commonDir, err := readCommonDir(gitDir)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if !isGitDir(gitDir, commonDir) {
		return nil, fmt.Errorf("opening %s: %w", path, ErrNotRepository)
	}

	repoFS := osfs.New(gitDir)
	if commonDir != gitDir {
		repoFS = dotgit.NewRepositoryFilesystem(repoFS, osfs.New(commonDir))
	}
	st := filesystem.NewStorageWithOptions(repoFS, cache.NewObjectLRU(objectCacheSize),
		filesystem.Options{KeepDescriptors: true})
	var wt billy.Filesystem
	if workDir != "" {
		wt = osfs.New(workDir)
	}
	gr, err := git.Open(st, wt)
	if err != nil {
		_ = st.Close()
		if errors.Is(err, git.ErrRepositoryNotExists) {
			return nil, fmt.Errorf("opening %s: %w", path, ErrNotRepository)
		}
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if workDir == "" {
		cfg, err := st.Config()
		if err != nil {
			_ = st.Close()
			return nil, fmt.Errorf("opening %s: reading config: %w", path, err)
		}
		if !cfg.Core.IsBare {
			_ = st.Close()
			return nil, fmt.Errorf("opening %s: a git directory with core.bare=false: open its working tree instead: %w", path, ErrNotRepository)
		}
	}

	r := newRepo(st, wt)
	r.repo = gr
	r.gitDir, r.commonDir, r.workDir = gitDir, commonDir, workDir
	r.objects = pack.NewObjects(filepath.Join(commonDir, "objects"), r.objects)
	return r, nil
}

// findGitDir finds the git directory for path: path/.git, the directory a
// .git file names, or path itself when it looks like a bare repository.
func findGitDir(path string) (gitDir, workDir string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("%w: %w", ErrNotRepository, err)
		}
		return "", "", err
	}
	if !fi.IsDir() {
		return "", "", fmt.Errorf("not a directory: %w", ErrNotRepository)
	}
	dotGit := filepath.Join(path, ".git")
	fi, err = os.Lstat(dotGit)
	switch {
	case err == nil && fi.IsDir():
		return dotGit, path, nil
	case err == nil && fi.Mode().IsRegular():
		b, err := os.ReadFile(dotGit)
		if err != nil {
			return "", "", err
		}
		target, ok := strings.CutPrefix(string(b), "gitdir: ")
		if !ok {
			return "", "", fmt.Errorf(".git file does not start with %q: %w", "gitdir: ", ErrNotRepository)
		}
		target = strings.TrimSpace(target)
		if !filepath.IsAbs(target) {
			target = filepath.Join(path, target)
		}
		return filepath.Clean(target), path, nil
	case err == nil:
		return "", "", fmt.Errorf(".git is neither a directory nor a file: %w", ErrNotRepository)
	case errors.Is(err, fs.ErrNotExist):
		return path, "", nil
	default:
		return "", "", err
	}
}

// readCommonDir returns the directory holding the objects and refs shared by
// linked working trees, named by gitDir/commondir, or gitDir itself.
func readCommonDir(gitDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(gitDir, "commondir"))
	if errors.Is(err, fs.ErrNotExist) {
		return gitDir, nil
	}
	if err != nil {
		return "", err
	}
	dir := strings.TrimSpace(string(b))
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(gitDir, dir)
	}
	return filepath.Clean(dir), nil
}

// isGitDir applies git's own test: a HEAD file, and objects and refs
// directories in the common directory.
func isGitDir(gitDir, commonDir string) bool {
	if fi, err := os.Stat(filepath.Join(gitDir, "HEAD")); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	for _, d := range []string{"objects", "refs"} {
		if fi, err := os.Stat(filepath.Join(commonDir, d)); err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// Init creates a repository at path, bare or with a working tree, whose
// HEAD points at branch (DefaultBranch when empty), and opens it. It fails
// if path already holds a repository.
func Init(path string, bare bool, branch string) (*Repo, error) {
	name, err := branchName(branch)
	if err != nil {
		return nil, fmt.Errorf("initializing %s: %w", path, err)
	}
	if _, err := git.PlainInitWithOptions(path, &git.PlainInitOptions{
		Bare:        bare,
		InitOptions: git.InitOptions{DefaultBranch: name},
	}); err != nil {
		return nil, fmt.Errorf("initializing %s: %w", path, err)
	}
	return Open(path)
}

// NewMemory returns an empty repository in memory whose HEAD points at
// DefaultBranch, with a working tree in memory when worktree is true. It is
// meant for fast tests.
func NewMemory(worktree bool) *Repo {
	st := memory.NewStorage()
	var wt billy.Filesystem
	if worktree {
		wt = memfs.New()
	}
	gr, err := git.InitWithOptions(st, wt, git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(DefaultBranch)})
	if err != nil {
		// Initialising empty memory storage cannot fail.
		panic(fmt.Sprintf("gitstore: initializing memory repository: %v", err))
	}
	r := newRepo(st, wt)
	r.repo = gr
	return r
}

// Close releases the files the Repo keeps open. The Repo must not be used
// afterwards.
func (r *Repo) Close() error {
	err := r.objects.Close()
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	if c, ok := r.storage.(interface{ Close() error }); ok {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Bare reports whether the repository has no working tree.
func (r *Repo) Bare() bool { return r.worktree == nil }

// GitDir returns the absolute path of the git directory ("" in memory). For
// a linked working tree it is the per-worktree directory.
func (r *Repo) GitDir() string { return r.gitDir }

// WorkDir returns the absolute path of the working tree ("" when bare or in
// memory).
func (r *Repo) WorkDir() string { return r.workDir }

// Head returns the branch HEAD points at and that branch's tip. An unborn
// branch has the zero tip; a detached HEAD has an empty branch name.
func (r *Repo) Head() (branch plumbing.ReferenceName, tip plumbing.Hash, err error) {
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	head, err := r.storage.Reference(plumbing.HEAD)
	if err != nil {
		return "", plumbing.ZeroHash, fmt.Errorf("reading HEAD: %w", err)
	}
	if head.Type() == plumbing.HashReference {
		return "", head.Hash(), nil
	}
	branch = head.Target()
	ref, err := r.storage.Reference(branch)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return branch, plumbing.ZeroHash, nil
	}
	if err != nil {
		return "", plumbing.ZeroHash, fmt.Errorf("reading %s: %w", branch, err)
	}
	if ref.Type() != plumbing.HashReference {
		return "", plumbing.ZeroHash, fmt.Errorf("reading %s: a symbolic reference to %s", branch, ref.Target())
	}
	return branch, ref.Hash(), nil
}

// Branch returns the tip of a branch, given as a full reference name
// ("refs/heads/main") or a short branch name ("main"). A missing branch
// gives an error wrapping plumbing.ErrReferenceNotFound.
func (r *Repo) Branch(name plumbing.ReferenceName) (plumbing.Hash, error) {
	full, err := branchName(string(name))
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return r.reference(full)
}

// reference reads a reference that must hold a hash.
func (r *Repo) reference(name plumbing.ReferenceName) (plumbing.Hash, error) {
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	ref, err := r.storage.Reference(name)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("reading %s: %w", name, err)
	}
	if ref.Type() != plumbing.HashReference {
		return plumbing.ZeroHash, fmt.Errorf("reading %s: a symbolic reference to %s", name, ref.Target())
	}
	return ref.Hash(), nil
}

// branchName turns a short or full branch name into a valid full reference
// name under refs/heads/.
func branchName(name string) (plumbing.ReferenceName, error) {
	if name == "" {
		name = DefaultBranch
	}
	full := plumbing.ReferenceName(name)
	if !strings.HasPrefix(name, "refs/") {
		full = plumbing.NewBranchReferenceName(name)
	}
	if !full.IsBranch() || full.Validate() != nil {
		return "", fmt.Errorf("bad branch name %q", name)
	}
	return full, nil
}

// ResolveRevision resolves a revision such as "main", "HEAD~2", a tag or a
// hash prefix to a commit, the way go-git understands revisions (a subset
// of gitrevisions(7)).
func (r *Repo) ResolveRevision(rev string) (plumbing.Hash, error) {
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	h, err := r.repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("resolving %q: %w", rev, err)
	}
	return *h, nil
}

package release

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"golang.org/x/sys/unix"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
)

// LookasideMarker is the file that ExportLookaside writes at the top of
// the tree it exports, holding the commit exported: it tells a later
// export that the directory is tally's to replace, and whether it is
// current already.
const LookasideMarker = ".tally-lookaside"

// ErrNotLookaside means the export directory exists but is not one that
// ExportLookaside wrote: tally does not replace a directory it did not make.
var ErrNotLookaside = errors.New("the directory exists and is not a lookaside tree tally exported")

// LookasideOptions says what to export and where.
type LookasideOptions struct {
	// Dir is the directory a web server serves: it is replaced as a whole,
	// by a new directory swapped in, so the server never serves half a tree.
	Dir string
	// Revision is the commit to export (a branch, tag or commit); empty
	// means HEAD (a bare repository's default branch).
	Revision string
	// Force writes the tree even when Dir says it holds that commit
	// already: it repairs a served tree that was changed by hand.
	Force bool
}

// LookasideExport is what ExportLookaside did (JSON for tally lookaside
// export --json).
type LookasideExport struct {
	Dir        string `json:"dir"`
	Commit     string `json:"commit"`
	Files      int    `json:"files"`
	Signatures int    `json:"signatures"`
	// Unchanged is set when Dir held that commit already: nothing was written.
	Unchanged bool `json:"unchanged"`
}

// ExportLookaside writes into opts.Dir the tree stock clients read from
// one commit of a bare or non-bare signatures repository: the lookaside
// files under the namespace, tally.toml, the keyring and the release
// manifests (not build records, approvals or other files), plus
// LookasideMarker. The new tree is written beside Dir and swapped in with
// one rename (an atomic exchange when Dir exists), so a web server serving
// Dir sees the old tree or the new one, never a mix. Exports of one Dir
// are serialised by a lock file beside it, and the revision is resolved
// under that lock, so the last export to run wins with the latest commit.
func ExportLookaside(repo *gitstore.Repo, opts LookasideOptions) (*LookasideExport, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("%w: no directory to export into", ErrBadPolicyOptions)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("exporting the lookaside: %w", err)
	}
	unlock, err := lockExport(filepath.Join(parent, "."+base+".tally-lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	rev := opts.Revision
	if rev == "" {
		rev = "HEAD"
	}
	commit, err := repo.ResolveRevision(rev)
	if err != nil {
		return nil, fmt.Errorf("exporting the lookaside: revision %q: %w", rev, err)
	}
	res := &LookasideExport{Dir: dir, Commit: commit.String()}
	existing, err := markerCommit(dir)
	if err != nil {
		return nil, err
	}
	if existing == commit.String() && !opts.Force {
		res.Unchanged = true
		return res, nil
	}
	st, err := policy.LoadCommit(repo, commit)
	if err != nil {
		return nil, fmt.Errorf("exporting the lookaside of %s: %w", commit, err)
	}

	tmp, err := os.MkdirTemp(parent, "."+base+".tally-new-")
	if err != nil {
		return nil, fmt.Errorf("exporting the lookaside: %w", err)
	}
	defer os.RemoveAll(tmp) // the new tree after a failure, the old one after the swap
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	write := func(p string, data []byte) error {
		full := filepath.Join(tmp, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		res.Files++
		return os.WriteFile(full, data, 0o644)
	}
	copyFile := func(p string) error {
		data, err := st.Snap.ReadFile(p)
		if err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		return write(p, data)
	}
	if err := copyFile(policy.PolicyFile); err != nil {
		return nil, err
	}
	if err := copyFile(st.Policy.Keyring); err != nil {
		return nil, err
	}
	walk := func(top string, count bool) error {
		err := st.Snap.Walk(top, func(p string, e gitstore.Entry) error {
			if e.IsDir() {
				return nil
			}
			data, err := st.Snap.Blob(e.Hash)
			if err != nil {
				return fmt.Errorf("reading %s: %w", p, err)
			}
			if count && strings.HasPrefix(path.Base(p), "signature-") {
				res.Signatures++
			}
			return write(p, data)
		})
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := walk(st.Policy.Namespace, true); err != nil {
		return nil, fmt.Errorf("exporting the lookaside: %w", err)
	}
	if err := walk(policy.ReleasesDir, false); err != nil {
		return nil, fmt.Errorf("exporting the lookaside: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, LookasideMarker), []byte(commit.String()+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := syncDir(tmp); err != nil {
		return nil, err
	}
	if err := swapDir(tmp, dir); err != nil {
		return nil, fmt.Errorf("exporting the lookaside: %w", err)
	}
	return res, nil
}

// markerCommit reads the commit a previous export left in dir: "" when dir
// does not exist or is empty; ErrNotLookaside when it holds something else.
func markerCommit(dir string) (string, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if fi.Mode()&fs.ModeSymlink == 0 && !fi.IsDir() {
		return "", fmt.Errorf("%s: %w (not a directory)", dir, ErrNotLookaside)
	}
	data, err := os.ReadFile(filepath.Join(dir, LookasideMarker))
	if errors.Is(err, fs.ErrNotExist) {
		entries, rerr := os.ReadDir(dir)
		if rerr == nil && len(entries) == 0 {
			return "", nil
		}
		return "", fmt.Errorf("%s: %w (no %s in it)", dir, ErrNotLookaside, LookasideMarker)
	}
	if err != nil {
		return "", err
	}
	h := string(bytes.TrimSpace(data))
	if !plumbing.IsHash(h) {
		return "", fmt.Errorf("%s: %w (%s holds %q)", dir, ErrNotLookaside, LookasideMarker, h)
	}
	return h, nil
}

// syncDir flushes the files of a freshly written tree, so a crash after
// the swap cannot leave empty files behind.
func syncDir(top string) error {
	return filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		serr := f.Sync()
		if cerr := f.Close(); serr == nil {
			serr = cerr
		}
		return serr
	})
}

// lockExport takes an flock on path, waiting as long as it takes: exports
// are short, and a post-receive hook must not give up.
func lockExport(p string) (func(), error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking the lookaside export: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("locking the lookaside export: %w", err)
	}
	return func() { _ = f.Close() }, nil
}

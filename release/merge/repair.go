package merge

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

// ErrPublished means an operation would move files that others may
// already have fetched by path.
var ErrPublished = errors.New("refusing to move published signatures")

// RepairOptions says who signs the repair commit and whether published
// files may move.
type RepairOptions struct {
	// Signer signs the repair commit; it must be a maintainer key. It is
	// needed only when there is something to repair (ErrNoSigner).
	Signer sigstore.Signer
	// Force moves files even when they are published.
	Force bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// LockWait bounds how long to wait for another tally working on the
	// repository; 0 waits as long as ctx allows.
	LockWait time.Duration
}

// RepairResult is what a repair did.
type RepairResult struct {
	Branch string `json:"branch"`
	Commit string `json:"commit,omitempty"` // "" when there was no gap
	// Moved lists every file that moved down to close a gap, in path order.
	Moved []Renumbered `json:"moved"`
	// Published is true when some moved file was published (moved anyway
	// because of Force).
	Published bool `json:"published,omitempty"`
	// Ignored lists files of the lookaside tree whose names are not
	// signature-N: readers never look at them, and repair leaves them alone.
	Ignored []string `json:"ignored,omitempty"`
}

// Repair closes the numbering gaps of the lookaside tree on the checked-out
// branch, which other tools (a hand edit, a bad merge) can leave: readers
// stop at the first missing signature-N, so every signature after a gap is
// invisible to them. In each directory with a gap the files keep their
// order and bytes and move down to signature-1..k, as one commit signed by
// opts.Signer whose message lists every move. Files that are already
// published (in the tree of the branch's upstream as last fetched, or any
// file of a bare repository, which is what others fetch) are not moved
// unless opts.Force: the error wraps ErrPublished. Repair is never run
// implicitly.
func Repair(ctx context.Context, repo *gitstore.Repo, opts RepairOptions) (*RepairResult, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	st, unlock, err := policy.LockHead(ctx, repo, opts.LockWait)
	if err != nil {
		return nil, err
	}
	defer unlock() //nolint:errcheck // releasing a flock cannot lose data
	res := &RepairResult{Branch: st.Branch.Short(), Moved: []Renumbered{}}

	type file struct {
		num  int
		path string
		blob plumbing.Hash
	}
	byDir := map[string][]file{}
	err = st.Snap.Walk(st.Policy.Namespace, func(p string, e gitstore.Entry) error {
		if e.IsDir() {
			return nil
		}
		dir, name := cutLastSlash(p)
		n, ok := signatureNumber(name)
		if _, derr := sigstore.ParseLocationDir(dir); !ok || derr != nil || !e.Mode.IsFile() {
			res.Ignored = append(res.Ignored, p)
			return nil
		}
		byDir[dir] = append(byDir[dir], file{num: n, path: p, blob: e.Hash})
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading the lookaside tree: %w", err)
	}
	dirs := make([]string, 0, len(byDir))
	for d := range byDir {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	var changes []gitstore.Change
	var from []file
	for _, dir := range dirs {
		files := byDir[dir]
		sort.Slice(files, func(i, j int) bool { return files[i].num < files[j].num })
		if files[len(files)-1].num == len(files) {
			continue // contiguous
		}
		for i, f := range files {
			want := i + 1
			if f.num == want {
				continue
			}
			data, err := st.Snap.Blob(f.blob)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", f.path, err)
			}
			to := dir + "/signature-" + strconv.Itoa(want)
			changes = append(changes, gitstore.Change{Path: to, Data: data})
			res.Moved = append(res.Moved, Renumbered{From: f.path, To: to})
			from = append(from, f)
			if f.num > len(files) {
				changes = append(changes, gitstore.Change{Path: f.path, Delete: true})
			}
		}
	}
	if len(res.Moved) == 0 {
		return res, nil
	}

	published, where, err := publishedFiles(repo, st.Branch)
	if err != nil {
		return nil, err
	}
	if published != nil {
		var hit []string
		for _, f := range from {
			if published(f.path, f.blob) {
				hit = append(hit, f.path)
			}
		}
		if len(hit) > 0 {
			res.Published = true
			if !opts.Force {
				return res, fmt.Errorf("%w: %d file(s) to move are published (%s), and readers may have fetched them by path, first %s",
					ErrPublished, len(hit), where, hit[0])
			}
		}
	}

	now := opts.Now().UTC().Truncate(time.Second)
	who, err := maintainer(st.Keys, opts.Signer, now)
	if err != nil {
		return res, err
	}
	paths := make([]string, len(changes))
	for i, ch := range changes {
		paths[i] = ch.Path
	}
	if err := repo.CheckPaths(paths); err != nil {
		return res, err
	}
	hash, err := repo.Commit(gitstore.CommitRequest{
		Branch:    st.Branch,
		Parents:   []plumbing.Hash{st.Tip},
		Changes:   changes,
		Message:   repairMessage(res, opts.Signer.Fingerprint()),
		Author:    who,
		Committer: who,
		Sign:      opts.Signer.SignDetached,
		Context:   ctx,
	})
	if err != nil {
		return res, err
	}
	res.Commit = hash.String()
	return res, nil
}

// publishedFiles returns a test for "this file is published" on branch and
// says where it looked; nil when nothing is known to be published (no
// upstream, or one never fetched).
func publishedFiles(repo *gitstore.Repo, branch plumbing.ReferenceName) (func(path string, blob plumbing.Hash) bool, string, error) {
	if repo.Bare() {
		return func(string, plumbing.Hash) bool { return true }, "this is a bare repository, which others fetch from", nil
	}
	remote, merge, err := repo.Upstream(branch)
	if errors.Is(err, gitstore.ErrNoUpstream) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	tracking := trackingRef(remote, merge)
	tip, err := repo.ResolveRevision(tracking.String())
	if err != nil {
		return nil, "", nil // never fetched: nothing known to be published
	}
	snap, err := repo.Snapshot(tip)
	if err != nil {
		return nil, "", err
	}
	where := "on " + strings.TrimPrefix(tracking.String(), "refs/remotes/")
	return func(path string, blob plumbing.Hash) bool {
		e, err := snap.Stat(path)
		return err == nil && e.Hash == blob
	}, where, nil
}

// repairMessage is the commit message of a repair: every move.
func repairMessage(res *RepairResult, signer string) string {
	dirs := map[string]bool{}
	for _, m := range res.Moved {
		d, _ := cutLastSlash(m.From)
		dirs[d] = true
	}
	var b strings.Builder
	fmt.Fprintf(&b, "repair: close the numbering gaps of %d signature director(ies)\n\n", len(dirs))
	b.WriteString("Readers stop at the first missing signature-N, so these signatures were\n")
	b.WriteString("invisible to them. Each moved down, keeping its bytes and its order:\n\n")
	for _, m := range res.Moved {
		fmt.Fprintf(&b, "%s -> %s\n", m.From, m.To)
	}
	if res.Published {
		b.WriteString("\nSome of these files were published (moved with --force).\n")
	}
	fmt.Fprintf(&b, "\nSigner: %s\n", signer)
	return b.String()
}

package merge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/quorum"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// ErrConflict means a file other than a signature or a build record was
// changed differently on both sides of a merge or a replay: tally merges
// signatures and build records by their rules, everything else only when
// one side left it alone.
var ErrConflict = errors.New("conflicting changes")

// ErrNoSigner means an operation makes commits and needs a maintainer's key
// to sign them.
var ErrNoSigner = errors.New("a maintainer key is needed to sign the commit")

// ErrBadSource means a merge source is neither a ref or commit of the
// repository nor another repository.
var ErrBadSource = errors.New("bad merge source")

// MergeOptions says what to merge and who signs the merge commit.
type MergeOptions struct {
	// Sources are the lines of signing work to merge, in order: a branch or
	// remote-tracking ref of the repository ("bob", "origin/main",
	// "refs/heads/bob"), a commit, or another repository's path or URL with
	// an optional "#branch" (its HEAD otherwise).
	Sources []string
	// Signer signs the merge commit; it must be a maintainer key.
	Signer sigstore.Signer
	// AllowInvalid merges incoming files that fail the judgement too (they
	// are still reported).
	AllowInvalid bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// LockWait bounds how long to wait for another tally working on the
	// repository; 0 waits as long as ctx allows.
	LockWait time.Duration
}

// MergedSource is one source of a merge.
type MergedSource struct {
	Source string `json:"source"`
	Commit string `json:"commit"`
	Base   string `json:"base,omitempty"` // the merge base; "" when the histories are unrelated
	// UpToDate is true when the branch already contains the source.
	UpToDate bool `json:"up_to_date,omitempty"`
}

// MergedFile is an incoming signature that was added.
type MergedFile struct {
	Source string `json:"source"`
	From   string `json:"from"` // its path in the source
	Path   string `json:"path"` // its path now
	Signer string `json:"signer,omitempty"`
	// Invalid is true for a file that failed the judgement and was merged
	// because of AllowInvalid.
	Invalid bool `json:"invalid,omitempty"`
}

// DroppedFile is an incoming file that was not added because the branch
// has it already, in substance.
type DroppedFile struct {
	Source   string `json:"source"`
	From     string `json:"from"`
	Reason   string `json:"reason"`             // DropIdentical, DropSameKey, DropDeleted, DropPathTaken, DropRefused
	Existing string `json:"existing,omitempty"` // the file that makes it redundant
}

// Reasons an incoming signature is not added.
const (
	DropIdentical = "identical"  // a file with the same bytes is there
	DropSameKey   = "same-key"   // the same primary key signed this digest already
	DropDeleted   = "deleted"    // the source deleted it; signatures are never deleted
	DropPathTaken = "path-taken" // an invalid file whose name cannot be renumbered, and its path is taken
	// DropRefused: sync only: a replayed signature file that fails the
	// judgement now, or would not count where it lands (Existing then says
	// its kind and why): the guard would refuse it.
	DropRefused = "refused"
)

// RejectedFile is an incoming file that failed the judgement.
type RejectedFile struct {
	Source   string `json:"source"`
	From     string `json:"from"`
	Kind     string `json:"kind"`     // a sigstore.Kind (or "bad-record")
	Severity string `json:"severity"` // "invalid" or "warning"
	Error    string `json:"error"`
	// Merged is true when AllowInvalid let it in anyway.
	Merged bool `json:"merged"`
}

// MergeResult is what a merge did.
type MergeResult struct {
	Branch   string         `json:"branch"`
	Commit   string         `json:"commit,omitempty"` // "" when every source was merged already
	Sources  []MergedSource `json:"sources"`
	Added    []MergedFile   `json:"added"`
	Dropped  []DroppedFile  `json:"dropped"`
	Rejected []RejectedFile `json:"rejected"`
	// Records are the build records that gained lines; Files the other
	// files taken from a source.
	Records []string `json:"records,omitempty"`
	Files   []string `json:"files,omitempty"`
	// Verified is how many signature files were checked.
	Verified int `json:"verified"`

	verifyTime time.Duration
}

// Invalid reports whether an incoming file failed the judgement with the
// severity "invalid" (whether or not AllowInvalid merged it).
func (r *MergeResult) Invalid() bool {
	for _, f := range r.Rejected {
		if f.Severity == string(sigstore.SeverityInvalid) {
			return true
		}
	}
	return false
}

// UpToDate reports whether there was nothing to merge.
func (r *MergeResult) UpToDate() bool { return r.Commit == "" }

// Merge merges other lines of signing work into the checked-out branch, as
// one merge commit whose parents are the branch and every source not merged
// yet, signed by opts.Signer like a sign commit. The branch's signature files
// keep their names and bytes. Each incoming signature the branch lacks (no
// file with the same bytes and no good signature by the same primary key for
// that digest) is added at the first free number of its directory, in a
// fixed order: sources as given, then directory, then incoming number.
// Incoming files that fail sigstore's judgement as the guard would judge
// the merge commit (format, location, the signature's expiry and the key's
// lifetime now, then the directory rules where they land) are reported and
// left out unless opts.AllowInvalid. Build records merge as the union of their runs; other
// files merge when only one side changed them (ErrConflict otherwise).
// Merging a source the branch already contains changes nothing. Only the
// trees the sources changed since their merge base are read.
func Merge(ctx context.Context, repo *gitstore.Repo, opts MergeOptions) (*MergeResult, error) {
	if len(opts.Sources) == 0 {
		return nil, fmt.Errorf("%w: nothing to merge: name at least one source", ErrBadSource)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	st, unlock, err := policy.LockHead(ctx, repo, opts.LockWait)
	if err != nil {
		return nil, err
	}
	defer unlock() //nolint:errcheck // releasing a flock cannot lose data
	now := opts.Now().UTC().Truncate(time.Second)
	who, err := maintainer(st.Keys, opts.Signer, now)
	if err != nil {
		return nil, err
	}
	res := &MergeResult{Branch: st.Branch.Short(), Added: []MergedFile{}, Dropped: []DroppedFile{}, Rejected: []RejectedFile{}}

	// Resolve the sources and keep those the branch does not contain yet.
	type incoming struct {
		name   string
		commit plumbing.Hash
		snap   *gitstore.Snapshot
		diff   []gitstore.DiffEntry
	}
	var todo []incoming
	parents := []plumbing.Hash{st.Tip}
	for _, spec := range opts.Sources {
		commit, err := ResolveSource(ctx, repo, spec)
		if err != nil {
			return nil, err
		}
		ms := MergedSource{Source: spec, Commit: commit.String()}
		contained := false
		for _, p := range parents {
			if ok, err := repo.IsAncestor(commit, p); err != nil {
				return nil, err
			} else if ok {
				contained = true
				break
			}
		}
		if contained {
			ms.UpToDate = true
			res.Sources = append(res.Sources, ms)
			continue
		}
		base, err := repo.MergeBase(st.Tip, commit)
		if err != nil {
			return nil, err
		}
		if !base.IsZero() {
			ms.Base = base.String()
		}
		baseTree := plumbing.ZeroHash
		if !base.IsZero() {
			c, err := repo.ReadCommit(base)
			if err != nil {
				return nil, err
			}
			baseTree = c.Tree
		}
		snap, err := repo.Snapshot(commit)
		if err != nil {
			return nil, err
		}
		diff, err := repo.Diff(baseTree, snap.Tree())
		if err != nil {
			return nil, fmt.Errorf("comparing %s with its merge base: %w", spec, err)
		}
		res.Sources = append(res.Sources, ms)
		todo = append(todo, incoming{name: spec, commit: commit, snap: snap, diff: diff})
		parents = append(parents, commit)
	}
	if len(todo) == 0 {
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	a := newAssembly(repo, st.Snap, st.Policy, st.Keys, now)
	// Files that are neither signatures nor build records first: the trust
	// policy the incoming signatures are judged by may be among them.
	for _, in := range todo {
		for _, d := range in.diff {
			if a.isLookaside(d.Path) || isRecord(d.Path) {
				continue
			}
			changed, err := a.threeWay(d, in.snap.Blob)
			if err != nil {
				return nil, fmt.Errorf("merging %s: %w", in.name, err)
			}
			if changed {
				res.Files = append(res.Files, d.Path)
			}
		}
	}
	if err := a.reloadPolicy(); err != nil {
		return nil, fmt.Errorf("merging the trust policy: %w", err)
	}

	// Check every incoming signature and the files already in the
	// directories they go to, in parallel.
	type candidate struct {
		src int
		d   gitstore.DiffEntry
		dir string
		num int
	}
	var cands []candidate
	var refs []blobRef
	dirs := map[string]bool{}
	for i, in := range todo {
		for _, d := range in.diff {
			if !a.isLookaside(d.Path) {
				continue
			}
			if d.Action == gitstore.Deleted {
				res.Dropped = append(res.Dropped, DroppedFile{Source: in.name, From: d.Path, Reason: DropDeleted})
				continue
			}
			c := candidate{src: i, d: d}
			c.dir, _ = cutLastSlash(d.Path)
			_, name := cutLastSlash(d.Path)
			c.num, _ = signatureNumber(name)
			cands = append(cands, c)
			refs = append(refs, blobRef{d.NewHash, d.Path})
			dirs[c.dir] = true
		}
	}
	for dir := range dirs {
		entries, err := st.Snap.List(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reading %s: %w", dir, err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				refs = append(refs, blobRef{e.Hash, dir + "/" + e.Name})
			}
		}
	}
	if err := a.verifyAll(refs); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(cands, func(i, j int) bool {
		x, y := cands[i], cands[j]
		if x.src != y.src {
			return x.src < y.src
		}
		if x.dir != y.dir {
			return x.dir < y.dir
		}
		if x.num != y.num {
			return x.num < y.num
		}
		return x.d.Path < y.d.Path
	})
	for _, c := range cands {
		in := todo[c.src]
		v := a.judge(c.d.Path, c.d.NewMode, c.d.NewHash)
		good := v.OK()
		if !good {
			// Only regular files can be merged, even with AllowInvalid: a
			// symbolic link or submodule would become a file.
			allow := opts.AllowInvalid && quorum.IsRegular(c.d.NewMode)
			rf := RejectedFile{Source: in.name, From: c.d.Path, Kind: string(v.Problem), Severity: string(v.Severity), Error: v.Message, Merged: allow}
			res.Rejected = append(res.Rejected, rf)
			if !allow {
				continue
			}
		}
		data, err := in.snap.Blob(c.d.NewHash)
		if err != nil {
			return nil, fmt.Errorf("reading %s of %s: %w", c.d.Path, in.name, err)
		}
		var pl placement
		if c.num > 0 && v.Problem != sigstore.KindMalformedPath {
			pl, err = a.place(c.dir, c.d.NewHash, data, v, good)
		} else {
			pl, err = a.placeAt(c.d.Path, c.d.NewHash, data)
		}
		if err != nil {
			return nil, err
		}
		if pl.path == "" {
			res.Dropped = append(res.Dropped, DroppedFile{Source: in.name, From: c.d.Path, Reason: pl.reason, Existing: pl.existing})
			continue
		}
		res.Added = append(res.Added, MergedFile{Source: in.name, From: c.d.Path, Path: pl.path,
			Signer: v.Signature.Signer, Invalid: !good})
	}

	// The directory rules over what the merge leaves: an added file that
	// would not count there (a directory an earlier file poisons, say) is
	// what the guard refuses, so it is left out and reported too.
	if err := a.dropRefused(res, opts.AllowInvalid); err != nil {
		return nil, err
	}

	// Build records: the union of what every side recorded.
	recs := map[string]bool{}
	for _, in := range todo {
		for _, d := range in.diff {
			if !isRecord(d.Path) || d.Action == gitstore.Deleted {
				continue
			}
			data, err := in.snap.Blob(d.NewHash)
			if err != nil {
				return nil, fmt.Errorf("reading %s of %s: %w", d.Path, in.name, err)
			}
			cur, ok, err := a.read(d.Path)
			if err != nil {
				return nil, err
			}
			if !ok {
				if _, err := record.ParseBuildRecord(data); err != nil {
					res.Rejected = append(res.Rejected, RejectedFile{Source: in.name, From: d.Path, Kind: "bad-record",
						Severity: string(sigstore.SeverityWarning), Error: err.Error()})
					continue
				}
				a.set(gitstore.Change{Path: d.Path, Data: data})
				recs[d.Path] = true
				continue
			}
			merged, changed, err := record.UnionRecord(cur, data)
			if err != nil {
				res.Rejected = append(res.Rejected, RejectedFile{Source: in.name, From: d.Path, Kind: "bad-record",
					Severity: string(sigstore.SeverityWarning), Error: err.Error()})
				continue
			}
			if changed {
				a.set(gitstore.Change{Path: d.Path, Data: merged})
				recs[d.Path] = true
			}
		}
	}
	for p := range recs {
		res.Records = append(res.Records, p)
	}
	sort.Strings(res.Records)
	res.Verified, res.verifyTime = a.verifiedCount, a.verifyTime

	changes := a.sortedChanges()
	paths := make([]string, len(changes))
	for i, ch := range changes {
		paths[i] = ch.Path
	}
	if err := repo.CheckPaths(paths); err != nil {
		return nil, err
	}
	hash, err := repo.Commit(gitstore.CommitRequest{
		Branch:    st.Branch,
		Parents:   parents,
		Changes:   changes,
		Message:   mergeMessage(res, opts.Signer.Fingerprint()),
		Author:    who,
		Committer: who,
		Sign:      opts.Signer.SignDetached,
		Context:   ctx,
	})
	if err != nil {
		return nil, err
	}
	res.Commit = hash.String()
	return res, nil
}

// dropRefused takes out of the merge the good incoming files that the
// directory rules refuse where they landed (with allowInvalid they stay,
// reported), and reports them as rejected.
func (a *assembly) dropRefused(res *MergeResult, allowInvalid bool) error {
	added := map[string]bool{}
	for _, f := range res.Added {
		if !f.Invalid {
			added[f.Path] = true
		}
	}
	if len(added) == 0 {
		return nil
	}
	refused, err := a.refusedAdded(added)
	if err != nil || len(refused) == 0 {
		return err
	}
	kept := res.Added[:0]
	for _, f := range res.Added {
		v, bad := refused[f.Path]
		if !bad {
			kept = append(kept, f)
			continue
		}
		res.Rejected = append(res.Rejected, RejectedFile{Source: f.Source, From: f.From, Kind: string(v.Problem),
			Severity: string(v.Severity), Error: v.Message, Merged: allowInvalid})
		if allowInvalid {
			f.Invalid = true
			kept = append(kept, f)
			continue
		}
		delete(a.changes, f.Path)
	}
	res.Added = kept
	return nil
}

// mergeMessage is the commit message of a merge: what came from where.
func mergeMessage(res *MergeResult, signer string) string {
	var b strings.Builder
	var names []string
	for _, s := range res.Sources {
		if !s.UpToDate {
			names = append(names, s.Source)
		}
	}
	fmt.Fprintf(&b, "merge %s into %s: %d new signature(s)\n\n", strings.Join(names, ", "), res.Branch, len(res.Added))
	fmt.Fprintf(&b, "Signer: %s\n", signer)
	for _, s := range res.Sources {
		if !s.UpToDate {
			fmt.Fprintf(&b, "Source: %s %s\n", s.Source, s.Commit)
		}
	}
	if len(res.Added) > 0 {
		b.WriteString("\nAdded:\n")
		for _, f := range res.Added {
			fmt.Fprintf(&b, "%s <- %s:%s\n", f.Path, f.Source, f.From)
		}
	}
	if len(res.Dropped) > 0 {
		b.WriteString("\nAlready here:\n")
		for _, f := range res.Dropped {
			fmt.Fprintf(&b, "%s:%s %s %s\n", f.Source, f.From, f.Reason, f.Existing)
		}
	}
	if len(res.Rejected) > 0 {
		b.WriteString("\nFailed the judgement:\n")
		for _, f := range res.Rejected {
			state := "not merged"
			if f.Merged {
				state = "merged anyway"
			}
			fmt.Fprintf(&b, "%s:%s %s (%s): %s\n", f.Source, f.From, f.Kind, state, f.Error)
		}
	}
	if len(res.Records) > 0 {
		b.WriteString("\nBuild records:\n" + strings.Join(res.Records, "\n") + "\n")
	}
	if len(res.Files) > 0 {
		b.WriteString("\nFiles:\n" + strings.Join(res.Files, "\n") + "\n")
	}
	return b.String()
}

// sourceRefPrefix is where ResolveSource keeps what it fetched from other
// repositories: one ref per repository and branch, replaced at each fetch.
const sourceRefPrefix = "refs/tally/sources/"

// ResolveSource finds the commit a merge source names: a branch,
// remote-tracking ref, tag or commit of repo, or another repository (a
// path, a file:// or network URL, or user@host:path) with an optional
// "#branch", which it fetches into a ref under refs/tally/sources/ (its
// HEAD when no branch is given).
func ResolveSource(ctx context.Context, repo *gitstore.Repo, spec string) (plumbing.Hash, error) {
	if spec == "" || strings.HasPrefix(spec, "-") || strings.ContainsAny(spec, "\x00\n") {
		return plumbing.ZeroHash, fmt.Errorf("%w: %q", ErrBadSource, spec)
	}
	location, branch, hasBranch := strings.Cut(spec, "#")
	if !looksLikeRepository(location) {
		if hasBranch {
			return plumbing.ZeroHash, fmt.Errorf("%w: %q: #branch goes after a repository path or URL", ErrBadSource, spec)
		}
		for _, candidate := range []string{spec, "refs/heads/" + spec, "refs/remotes/" + spec} {
			if h, err := repo.ResolveRevision(candidate); err == nil {
				return h, nil
			}
		}
		if fi, err := os.Stat(spec); err != nil || !fi.IsDir() {
			return plumbing.ZeroHash, fmt.Errorf("%w: %q is neither a branch or commit of this repository nor a repository", ErrBadSource, spec)
		}
	}
	if hasBranch && (branch == "" || plumbing.NewBranchReferenceName(branch).Validate() != nil) {
		return plumbing.ZeroHash, fmt.Errorf("%w: %q: bad branch name %q", ErrBadSource, spec, branch)
	}
	url := location
	if !strings.Contains(url, "://") && !isSCPLike(url) {
		abs, err := filepath.Abs(url)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("%w: %q: %v", ErrBadSource, spec, err)
		}
		url = abs
	}
	src := "HEAD"
	if hasBranch {
		src = "refs/heads/" + strings.TrimPrefix(branch, "refs/heads/")
	}
	sum := sha256.Sum256([]byte(url + "#" + src))
	dst := sourceRefPrefix + hex.EncodeToString(sum[:8])
	if err := repo.Fetch(ctx, url, "+"+src+":"+dst); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("%w: fetching %s: %w", ErrBadSource, spec, err)
	}
	h, err := repo.ResolveRevision(dst)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("%w: fetching %s: %w", ErrBadSource, spec, err)
	}
	return h, nil
}

// looksLikeRepository reports whether a source is spelled as a path or URL
// rather than a ref.
func looksLikeRepository(s string) bool {
	return strings.Contains(s, "://") || isSCPLike(s) || filepath.IsAbs(s) ||
		strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") || s == "." || s == ".."
}

// isSCPLike recognises git's user@host:path form.
func isSCPLike(s string) bool {
	colon := strings.IndexByte(s, ':')
	slash := strings.IndexByte(s, '/')
	return colon > 0 && (slash < 0 || colon < slash) && !strings.Contains(s, "://")
}

// assembly is a tree under construction: a base snapshot plus the changes
// a merge or a replayed commit makes to it. It knows, for every lookaside
// directory it touched, which numbers are taken, which blobs are there and
// which primary keys already signed, so that it can place an incoming
// signature by the merge rules. Signature checks are done once per blob.
type assembly struct {
	repo   *gitstore.Repo
	base   *gitstore.Snapshot
	policy policy.Policy
	keys   *sigstore.Keyring
	now    time.Time

	changes map[string]gitstore.Change
	dirs    map[string]*sigDir

	verified map[plumbing.Hash]verifyOutcome
	// verifyTime is the wall time spent in signature checks.
	verifyTime time.Duration
	// verifiedCount is how many signature files were checked.
	verifiedCount int
}

// sigDir is what an assembly knows of one lookaside directory.
type sigDir struct {
	used    map[int]bool
	blobs   map[plumbing.Hash]string // blob -> the path holding it
	signers map[string]string        // primary fingerprint -> its good signature's path
}

// verifyOutcome is what sigstore.Verify said about one blob.
type verifyOutcome struct {
	sig sigstore.Signature
	err error
}

func newAssembly(repo *gitstore.Repo, base *gitstore.Snapshot, policy policy.Policy, keys *sigstore.Keyring, now time.Time) *assembly {
	return &assembly{repo: repo, base: base, policy: policy, keys: keys, now: now,
		changes: map[string]gitstore.Change{}, dirs: map[string]*sigDir{},
		verified: map[plumbing.Hash]verifyOutcome{}}
}

// isLookaside reports whether path is in the lookaside tree.
func (a *assembly) isLookaside(path string) bool {
	return strings.HasPrefix(path, a.policy.Namespace+"/")
}

// isRecord reports whether path is a build record, builds/<release>/<name>.txt.
func isRecord(path string) bool {
	parts := strings.Split(path, "/")
	return len(parts) == 3 && parts[0] == policy.BuildsDir && policy.CheckReleaseName(parts[1]) == nil &&
		strings.HasSuffix(parts[2], ".txt") && len(parts[2]) > len(".txt")
}

// entry returns the blob id of the file at path in the assembled tree,
// zero when there is none.
func (a *assembly) entry(path string) (plumbing.Hash, error) {
	if ch, ok := a.changes[path]; ok {
		if ch.Delete {
			return plumbing.ZeroHash, nil
		}
		return plumbing.ComputeHash(plumbing.BlobObject, ch.Data), nil
	}
	e, err := a.base.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if e.IsDir() {
		return plumbing.ZeroHash, fmt.Errorf("%s is a directory", path)
	}
	return e.Hash, nil
}

// read returns the contents of the file at path in the assembled tree; ok is
// false when there is none.
func (a *assembly) read(path string) (data []byte, ok bool, err error) {
	if ch, found := a.changes[path]; found {
		return ch.Data, !ch.Delete, nil
	}
	data, err = a.base.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return data, err == nil, err
}

// set records a change to path.
func (a *assembly) set(ch gitstore.Change) { a.changes[ch.Path] = ch }

// sortedChanges returns the changes in path order.
func (a *assembly) sortedChanges() []gitstore.Change {
	out := make([]gitstore.Change, 0, len(a.changes))
	for _, ch := range a.changes {
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// threeWay applies one side's change to a file that is neither a signature
// nor a build record: taken when the assembled tree still has the old
// version, nothing when it has the new one already, a conflict otherwise.
// It reports whether the file changed.
func (a *assembly) threeWay(d gitstore.DiffEntry, read func(plumbing.Hash) ([]byte, error)) (bool, error) {
	cur, err := a.entry(d.Path)
	if err != nil {
		return false, err
	}
	switch {
	case cur == d.NewHash:
		return false, nil
	case cur != d.OldHash:
		return false, fmt.Errorf("%s: %w: both sides changed it; merge it with git, then run tally again", d.Path, ErrConflict)
	case d.Action == gitstore.Deleted:
		a.set(gitstore.Change{Path: d.Path, Delete: true})
		return true, nil
	case d.NewMode != filemode.Regular && d.NewMode != filemode.Executable:
		return false, fmt.Errorf("%s: %w: it is a %s, and tally writes only regular files", d.Path, ErrConflict, d.NewMode)
	}
	data, err := read(d.NewHash)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", d.Path, err)
	}
	a.set(gitstore.Change{Path: d.Path, Data: data})
	return true, nil
}

// reloadPolicy reads the trust policy and keyring of the assembled tree,
// which a merged or replayed change may have changed.
func (a *assembly) reloadPolicy() error {
	_, policyChanged := a.changes[policy.PolicyFile]
	_, keysChanged := a.changes[a.policy.Keyring]
	if !policyChanged && !keysChanged {
		return nil
	}
	data, ok, err := a.read(policy.PolicyFile)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: the merged tree has no %s", policy.ErrBadPolicy, policy.PolicyFile)
	}
	p, err := policy.ParsePolicy(data)
	if err != nil {
		return err
	}
	keyData, ok, err := a.read(p.Keyring)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: the merged tree has no keyring %s", policy.ErrBadPolicy, p.Keyring)
	}
	keys, err := sigstore.ReadKeyring(keyData)
	if err != nil {
		return fmt.Errorf("%w: keyring %s: %v", policy.ErrBadPolicy, p.Keyring, err)
	}
	if err := policy.CheckThreshold(p.Threshold, len(keys.Keys())); err != nil {
		return err
	}
	if p.Namespace != a.policy.Namespace {
		return fmt.Errorf("%w: the namespace changes from %s to %s", ErrConflict, a.policy.Namespace, p.Namespace)
	}
	a.policy, a.keys = p, keys
	clear(a.verified) // judged under other keys
	clear(a.dirs)
	return nil
}

// blobRef names a blob to verify.
type blobRef struct {
	hash plumbing.Hash
	path string // for error messages
}

// verifyAll checks every blob not checked yet, in parallel over all cores.
func (a *assembly) verifyAll(blobs []blobRef) error {
	var todo []blobRef
	seen := map[plumbing.Hash]bool{}
	for _, b := range blobs {
		if _, done := a.verified[b.hash]; done || seen[b.hash] {
			continue
		}
		seen[b.hash] = true
		todo = append(todo, b)
	}
	if len(todo) == 0 {
		return nil
	}
	start := time.Now()
	defer func() { a.verifyTime += time.Since(start) }()
	out := make([]verifyOutcome, len(todo))
	errs := make([]error, len(todo))
	workers := min(runtime.GOMAXPROCS(0), len(todo))
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				data, err := a.base.Blob(todo[i].hash)
				if err != nil {
					errs[i] = fmt.Errorf("reading %s: %w", todo[i].path, err)
					continue
				}
				out[i].sig, out[i].err = sigstore.Verify(data, a.keys)
			}
		}()
	}
	for i := range todo {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, b := range todo {
		if errs[i] != nil {
			return errs[i]
		}
		a.verified[b.hash] = out[i]
	}
	a.verifiedCount += len(todo)
	return nil
}

// judge gives the verdict on a signature file at path: steps 1-3 of
// sigstore's judgement, with the file entering at the assembly's time (the
// key must be valid then, and the signature not expired). The directory
// rules come after placement (judgeDirs). The blob must have been verified
// (verifyAll) unless the path is malformed.
func (a *assembly) judge(path string, mode filemode.FileMode, blob plumbing.Hash) sigstore.Verdict {
	ns := a.policy.Namespace
	loc, err := sigstore.ParseLocation(path)
	switch {
	case mode != filemode.Regular && mode != filemode.Executable && mode != filemode.Deprecated:
		return quorum.Malformed(path, fmt.Sprintf("not a regular file (mode %s): the lookaside tree holds only signature files", mode))
	case err != nil:
		return quorum.Malformed(path, err.Error())
	case !strings.HasPrefix(loc.Repository, ns+"/"):
		return quorum.Malformed(path, fmt.Sprintf("repository %s is not below the namespace %s", loc.Repository, ns))
	}
	out, ok := a.verified[blob]
	if !ok {
		// Not prefetched: check it now.
		if err := a.verifyAll([]blobRef{{blob, path}}); err != nil {
			return sigstore.Verdict{Location: loc, Problem: sigstore.KindGarbage, Severity: sigstore.SeverityInvalid, Message: err.Error()}
		}
		out = a.verified[blob]
	}
	name := strings.TrimPrefix(loc.Repository, ns+"/")
	v := sigstore.JudgeVerified(loc, a.policy.Repository(name), out.sig, out.err)
	return sigstore.JudgeLifetime(v, a.keys, sigstore.Times{Now: a.now, KeyNow: true})
}

// refusedAdded judges the directories that gained files in the assembly as
// the guard judges a commit (sigstore's directory rules over the assembled
// directory) and returns the added paths that would not count there, with
// their verdicts: a file the guard would refuse.
func (a *assembly) refusedAdded(added map[string]bool) (map[string]sigstore.Verdict, error) {
	dirs := map[string]bool{}
	for p := range added {
		dir, _ := cutLastSlash(p)
		dirs[dir] = true
	}
	out := map[string]sigstore.Verdict{}
	for dir := range dirs {
		entries, err := a.base.List(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reading %s: %w", dir, err)
		}
		var verdicts []sigstore.Verdict
		paths := map[int]string{}
		seen := map[string]bool{}
		judge := func(p string, mode filemode.FileMode, blob plumbing.Hash) error {
			if err := a.verifyAll([]blobRef{{blob, p}}); err != nil {
				return err
			}
			v := a.judge(p, mode, blob)
			if v.Problem == sigstore.KindMalformedPath {
				return nil
			}
			paths[v.Location.Number] = p
			verdicts = append(verdicts, v)
			return nil
		}
		for p, ch := range a.changes {
			if parent, _ := cutLastSlash(p); parent == dir {
				seen[p] = true
				if !ch.Delete {
					if err := judge(p, filemode.Regular, plumbing.ComputeHash(plumbing.BlobObject, ch.Data)); err != nil {
						return nil, err
					}
				}
			}
		}
		for _, e := range entries {
			if p := dir + "/" + e.Name; !e.IsDir() && !seen[p] {
				if err := judge(p, e.Mode, e.Hash); err != nil {
					return nil, err
				}
			}
		}
		for _, v := range sigstore.JudgeDirectory(verdicts) {
			if p := paths[v.Location.Number]; added[p] && !v.OK() {
				out[p] = v
			}
		}
	}
	return out, nil
}

// dir returns what the assembly knows of a lookaside directory, reading and
// judging the base tree's files there the first time.
func (a *assembly) dir(dir string) (*sigDir, error) {
	if d, ok := a.dirs[dir]; ok {
		return d, nil
	}
	d := &sigDir{used: map[int]bool{}, blobs: map[plumbing.Hash]string{}, signers: map[string]string{}}
	entries, err := a.base.List(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	var refs []blobRef
	for _, e := range entries {
		if !e.IsDir() {
			refs = append(refs, blobRef{e.Hash, dir + "/" + e.Name})
		}
	}
	if err := a.verifyAll(refs); err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		p := dir + "/" + e.Name
		if n, ok := signatureNumber(e.Name); ok {
			d.used[n] = true
		}
		d.blobs[e.Hash] = p
		if v := a.judge(p, e.Mode, e.Hash); v.OK() {
			if _, dup := d.signers[v.Signature.Signer]; !dup {
				d.signers[v.Signature.Signer] = p
			}
		}
	}
	// Changes made earlier in this assembly (a replay reloads its base).
	for p, ch := range a.changes {
		if parent, name := cutLastSlash(p); parent == dir {
			a.noteChange(d, p, name, ch)
		}
	}
	a.dirs[dir] = d
	return d, nil
}

// noteChange updates d for a change already in the assembly.
func (a *assembly) noteChange(d *sigDir, p, name string, ch gitstore.Change) {
	if ch.Delete {
		return
	}
	h := plumbing.ComputeHash(plumbing.BlobObject, ch.Data)
	if n, ok := signatureNumber(name); ok {
		d.used[n] = true
	}
	d.blobs[h] = p
}

// placement is where an incoming signature went, or why it did not.
type placement struct {
	path     string // the new path; "" when dropped
	reason   string // DropIdentical or DropSameKey when dropped
	existing string // the file that made it redundant
}

// place files an incoming signature blob into its directory by the merge
// rules: dropped when a file with the same bytes or a good signature by the
// same primary key is there, otherwise added at the first free number. good
// says whether v is a good signature whose signer counts for the rule.
func (a *assembly) place(dir string, blob plumbing.Hash, data []byte, v sigstore.Verdict, good bool) (placement, error) {
	d, err := a.dir(dir)
	if err != nil {
		return placement{}, err
	}
	if p, ok := d.blobs[blob]; ok {
		return placement{reason: DropIdentical, existing: p}, nil
	}
	if good {
		if p, ok := d.signers[v.Signature.Signer]; ok {
			return placement{reason: DropSameKey, existing: p}, nil
		}
	}
	n := 1
	for d.used[n] {
		n++
	}
	p := dir + "/signature-" + strconv.Itoa(n)
	a.set(gitstore.Change{Path: p, Data: data})
	d.used[n] = true
	d.blobs[blob] = p
	if good {
		d.signers[v.Signature.Signer] = p
	}
	return placement{path: p}, nil
}

// placeAt files an incoming blob at exactly path (an invalid file whose name
// is not a signature number), when the path is free.
func (a *assembly) placeAt(path string, blob plumbing.Hash, data []byte) (placement, error) {
	cur, err := a.entry(path)
	if err != nil {
		return placement{}, err
	}
	switch {
	case cur == blob:
		return placement{reason: DropIdentical, existing: path}, nil
	case !cur.IsZero():
		return placement{reason: DropPathTaken, existing: path}, nil
	}
	a.set(gitstore.Change{Path: path, Data: data})
	return placement{path: path}, nil
}

// signatureNumber parses "signature-N" the way readers count (N from 1,
// no leading zeros).
func signatureNumber(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "signature-")
	if !ok || s == "" || s[0] == '0' || len(s) > 10 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}

// cutLastSlash splits p at its last "/": dir is "" when there is none.
func cutLastSlash(p string) (dir, name string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// maintainer checks that signer is a maintainer whose key may sign now and
// returns the git identity its commits carry.
func maintainer(keys *sigstore.Keyring, signer sigstore.Signer, now time.Time) (object.Signature, error) {
	if signer == nil {
		return object.Signature{}, ErrNoSigner
	}
	fpr := signer.Fingerprint()
	key, ok := keys.Key(fpr)
	if !ok {
		return object.Signature{}, fmt.Errorf("%w: %s", policy.ErrUntrustedSigner, fpr)
	}
	if ok, why := keys.ValidAt(fpr, now); !ok {
		return object.Signature{}, fmt.Errorf("signing key %s cannot sign now: %s", fpr, why)
	}
	return policy.Author(key.Name, now), nil
}

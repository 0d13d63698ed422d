package gitstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// WriteCommit writes the commit that Commit would write for req (the
// changes applied to the tree of the first parent, signed with req.Sign)
// but moves no branch: req.Branch must be empty. It is how a caller builds a
// chain of commits, such as commits replayed onto another tip, before
// moving a branch to the last one with SetBranch.
func (r *Repo) WriteCommit(req CommitRequest) (plumbing.Hash, error) {
	if req.Branch != "" {
		return plumbing.ZeroHash, fmt.Errorf("writing a commit: WriteCommit moves no branch, but the request names %s", req.Branch)
	}
	c, changes, err := r.prepareCommit(req)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("writing a commit: %w", err)
	}
	h, err := r.writeCommit(c, changes, req.Sign)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("writing a commit: %w", err)
	}
	return h, nil
}

// BranchUpdate describes a move of a branch for SetBranch.
type BranchUpdate struct {
	// Branch is the branch to move, "refs/heads/..." or a short name.
	Branch plumbing.ReferenceName
	// Old is the branch's expected current tip; zero means the branch must
	// not exist yet.
	Old plumbing.Hash
	// New is the commit the branch moves to; it must exist.
	New plumbing.Hash
	// Who and Why go into the reflog.
	Who object.Signature
	Why string
	// Context, when set, stops the move while the branch has not moved
	// yet (an error wrapping ErrInterrupted), as for CommitRequest.
	Context context.Context
}

// SetBranch moves a branch from u.Old to u.New, which need not descend from
// it (a fast-forward, or a move onto replayed commits), with a
// compare-and-swap: if the branch is not at u.Old the error wraps ErrRaced
// and nothing moves. When HEAD is the branch in a repository with a working
// tree, the paths that differ between the two trees are checked first (an
// error wrapping ErrDirty when that would overwrite uncommitted work) and
// brought up to date in the working tree and the index afterwards, as
// Commit does; only regular files can be written there. If that last step
// fails the error wraps ErrStaleWorktree and the branch has moved.
func (r *Repo) SetBranch(u BranchUpdate) error {
	branch, err := branchName(string(u.Branch))
	if err != nil {
		return fmt.Errorf("moving a branch: %w", err)
	}
	if u.New.IsZero() {
		return fmt.Errorf("moving %s: no commit to move to", branch)
	}
	next, err := r.ReadCommit(u.New)
	if err != nil {
		return fmt.Errorf("moving %s: %w", branch, err)
	}
	cur, err := r.refOrZero(branch)
	if err != nil {
		return fmt.Errorf("moving %s: %w", branch, err)
	}
	if err := checkOld(refUpdate{name: branch, old: u.Old}, cur); err != nil {
		return err
	}
	if u.Who.When.IsZero() {
		u.Who.When = r.now()
	}
	if u.Who.Name == "" {
		u.Who.Name = "tally"
	}

	wt, err := r.worktreeFor(branch)
	if err != nil {
		return fmt.Errorf("moving %s: %w", branch, err)
	}
	var changes []Change
	if wt != nil {
		defer wt.close()
		oldTree := plumbing.ZeroHash
		if !u.Old.IsZero() {
			c, err := r.ReadCommit(u.Old)
			if err != nil {
				return fmt.Errorf("moving %s: %w", branch, err)
			}
			oldTree = c.Tree
		}
		diff, err := r.Diff(oldTree, next.Tree)
		if err != nil {
			return fmt.Errorf("moving %s: %w", branch, err)
		}
		paths := make([]string, 0, len(diff))
		for _, d := range diff {
			ch := Change{Path: d.Path, Delete: d.Action == Deleted}
			if !ch.Delete {
				if d.NewMode != filemode.Regular {
					return fmt.Errorf("moving %s: %s is a %s, which tally does not write into a working tree: %w", branch, d.Path, modeName(d.NewMode), ErrUnsafePath)
				}
				if ch.Data, err = r.blob(d.NewHash); err != nil {
					return fmt.Errorf("moving %s: reading %s: %w", branch, d.Path, err)
				}
			}
			changes = append(changes, ch)
			paths = append(paths, d.Path)
		}
		if err := wt.check(paths); err != nil {
			return fmt.Errorf("moving %s: %w", branch, err)
		}
	}
	why := u.Why
	if why == "" {
		why = "tally: moving to " + u.New.String()
	}
	why, _, _ = strings.Cut(why, "\n")
	moved, err := r.moveCheckedOut(u.Context, wt, refUpdate{name: branch, old: u.Old, new: u.New, who: u.Who, why: why}, next.Tree, changes)
	if !moved {
		return err
	}
	if err != nil {
		return fmt.Errorf("moving %s to %s: %w: %w (the next tally command finishes the checkout)", branch, u.New, ErrStaleWorktree, err)
	}
	return nil
}

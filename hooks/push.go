package hooks

import (
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/gitstore"
)

// DefaultProtectedRefs is what is protected when the trust policy sets no
// protected_refs: every branch. Tags are always immutable.
var DefaultProtectedRefs = []string{"refs/heads/"}

// Ref is a reference and the object it points at.
type Ref struct {
	Name string
	Hash plumbing.Hash
}

// Update is one reference a push changes, from Old to New; a zero Old
// creates the reference, a zero New deletes it.
type Update struct {
	Name     string
	Old, New plumbing.Hash
}

// Push is a push as the receiving repository sees it.
type Push struct {
	// Refs are the repository's references before the push. None at all
	// means an empty repository: the push establishes the trust root, and
	// the commits before the one creating tally.toml are accepted unjudged
	// (Options.Bootstrap).
	Refs []Ref
	// Head is the tip of the repository's default branch before the push.
	// Its trust policy names the current maintainers and the protected
	// references; zero means each update's old tip's.
	Head plumbing.Hash
	// Updates are the reference changes of the push.
	Updates []Update
}

// CheckPush judges a push: every update of a protected reference must be a
// fast-forward and no protected branch may be deleted; tags are never moved
// or deleted; only branches and tags may be pushed; and every commit the
// push brings that no reference of the repository already holds is judged
// as Check judges a commit, with the current maintainers those of the trust
// policy at Head.
func CheckPush(repo *gitstore.Repo, push Push, opts Options) (*Result, error) {
	if len(push.Refs) == 0 {
		opts.Bootstrap = true
	}
	c := newChecker(repo, opts)
	head, err := c.baseAt(push.Head)
	if err != nil {
		return nil, err
	}
	protected := DefaultProtectedRefs
	if head != nil && head.policy.ProtectedRefs != "" {
		protected = head.policy.ProtectedRefs.List()
	}
	var known map[plumbing.Hash]bool
	judged := map[plumbing.Hash]bool{}
	type contain struct {
		ref      string
		old, new plumbing.Hash
	}
	var (
		list     []*pending
		contains []contain
	)
	for _, u := range push.Updates {
		refuse := func(rule Rule, format string, args ...any) {
			c.res.refuse(Refusal{Ref: u.Name, Rule: rule, Reason: fmt.Sprintf(format, args...)})
		}
		isTag := strings.HasPrefix(u.Name, "refs/tags/")
		isBranch := strings.HasPrefix(u.Name, "refs/heads/")
		switch {
		case !isTag && !isBranch:
			refuse(RuleHistory, "only branches (refs/heads/) and tags (refs/tags/) may be pushed to a signatures repository")
			continue
		case isTag && !u.Old.IsZero() && u.New.IsZero():
			refuse(RuleHistory, "deleting a tag: tags are never deleted, users rely on what they name")
			continue
		case isTag && !u.Old.IsZero():
			refuse(RuleHistory, "moving a tag: tags are never moved; tag a new release instead")
			continue
		case u.New.IsZero() && isProtected(protected, u.Name):
			refuse(RuleHistory, "deleting a protected branch: published history is never removed")
			continue
		case u.New.IsZero():
			continue
		}
		newCommit, why, err := c.peel(u.New)
		if err != nil {
			return nil, err
		}
		if why != "" {
			refuse(RuleObject, "%s", why)
			continue
		}
		if isBranch && newCommit != u.New {
			refuse(RuleObject, "a branch must point at a commit, not at a tag object")
			continue
		}
		if !u.Old.IsZero() && isProtected(protected, u.Name) {
			if _, err := repo.ReadCommit(u.Old); err != nil {
				refuse(RuleHistory, "it is at %s, which this repository does not have: fetch and merge it first", short(u.Old))
				continue
			}
			ok, err := repo.IsAncestor(u.Old, newCommit)
			if err != nil {
				return nil, err
			}
			if !ok {
				refuse(RuleHistory, "non-fast-forward update from %s to %s: it would drop published commits (force-push); fetch, merge and push again", short(u.Old), short(newCommit))
				continue
			}
			contains = append(contains, contain{u.Name, u.Old, newCommit})
		}
		if known == nil {
			if known, err = c.reachable(push.Refs); err != nil {
				return nil, err
			}
		}
		base := head
		if base == nil && !u.Old.IsZero() {
			if base, err = c.baseAt(u.Old); err != nil {
				return nil, err
			}
		}
		tip, err := repo.Snapshot(newCommit)
		if err != nil {
			return nil, err
		}
		commits, err := c.newCommits(newCommit, known, judged)
		if err != nil {
			return nil, err
		}
		// What the updated reference published: a merge must keep it.
		old := u.Old
		published := func(h plumbing.Hash) (bool, error) {
			if old.IsZero() || !known[h] {
				return false, nil
			}
			return repo.IsAncestor(h, old)
		}
		for _, info := range commits {
			judged[info.Hash] = true
			list = append(list, &pending{info: info, ref: u.Name, tip: tip, base: base, published: published})
		}
	}
	// Signatures and references first; content only when they pass.
	ok, err := c.judgeAll(list)
	if err != nil || !ok {
		return c.res, err
	}
	for _, k := range contains {
		if err := c.judgeContainment(k.ref, k.old, k.new); err != nil {
			return nil, err
		}
	}
	return c.res, nil
}

// isProtected reports whether ref matches an entry of protected: the same
// name, or a prefix ending in "/".
func isProtected(protected []string, ref string) bool {
	for _, p := range protected {
		if ref == p || strings.HasSuffix(p, "/") && strings.HasPrefix(ref, p) {
			return true
		}
	}
	return false
}

// reachable returns every commit reachable from refs (tags peeled); refs to
// anything else are ignored.
func (c *checker) reachable(refs []Ref) (map[plumbing.Hash]bool, error) {
	seen := map[plumbing.Hash]bool{}
	var queue []plumbing.Hash
	for _, r := range refs {
		h, why, err := c.peel(r.Hash)
		if err != nil {
			return nil, err
		}
		if why == "" && !seen[h] {
			seen[h] = true
			queue = append(queue, h)
		}
	}
	for len(queue) > 0 {
		h := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		info, err := c.repo.ReadCommit(h)
		if err != nil {
			return nil, fmt.Errorf("walking the history of the repository's references: %w", err)
		}
		for _, p := range info.Parents {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return seen, nil
}

// newCommits returns the commits reachable from tip that are neither known
// nor judged, parents before children.
func (c *checker) newCommits(tip plumbing.Hash, known, judged map[plumbing.Hash]bool) ([]*gitstore.CommitInfo, error) {
	if known[tip] || judged[tip] {
		return nil, nil
	}
	type frame struct {
		c    *gitstore.CommitInfo
		next int
	}
	first, err := c.repo.ReadCommit(tip)
	if err != nil {
		return nil, err
	}
	var out []*gitstore.CommitInfo
	visited := map[plumbing.Hash]bool{tip: true}
	stack := []frame{{c: first}}
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if top.next < len(top.c.Parents) {
			p := top.c.Parents[top.next]
			top.next++
			if known[p] || judged[p] || visited[p] {
				continue
			}
			visited[p] = true
			info, err := c.repo.ReadCommit(p)
			if err != nil {
				return nil, err
			}
			stack = append(stack, frame{c: info})
			continue
		}
		out = append(out, top.c)
		stack = stack[:len(stack)-1]
	}
	return out, nil
}

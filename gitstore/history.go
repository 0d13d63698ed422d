package gitstore

import (
	"fmt"
	"sort"

	"github.com/go-git/go-git/v5/plumbing"
)

// parents returns the parents of commit h.
func (r *Repo) parents(h plumbing.Hash) ([]plumbing.Hash, error) {
	c, err := r.ReadCommit(h)
	if err != nil {
		return nil, err
	}
	return c.Parents, nil
}

// ancestors returns the set of commits reachable from tip, tip included;
// the zero hash has none.
func (r *Repo) ancestors(tip plumbing.Hash) (map[plumbing.Hash]bool, error) {
	seen := map[plumbing.Hash]bool{}
	if tip.IsZero() {
		return seen, nil
	}
	queue := []plumbing.Hash{tip}
	seen[tip] = true
	for len(queue) > 0 {
		h := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		ps, err := r.parents(h)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return seen, nil
}

// IsAncestor reports whether commit a is an ancestor of commit b or b
// itself, that is whether moving a branch from a to b is a fast-forward.
// The zero hash is an ancestor of everything.
func (r *Repo) IsAncestor(a, b plumbing.Hash) (bool, error) {
	if a.IsZero() || a == b {
		return true, nil
	}
	if b.IsZero() {
		return false, nil
	}
	seen := map[plumbing.Hash]bool{b: true}
	queue := []plumbing.Hash{b}
	for len(queue) > 0 {
		h := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		ps, err := r.parents(h)
		if err != nil {
			return false, fmt.Errorf("walking history of %s: %w", b, err)
		}
		for _, p := range ps {
			if p == a {
				return true, nil
			}
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return false, nil
}

// MergeBase returns a best common ancestor of commits a and b: one that is
// not an ancestor of another common ancestor. When there are several (criss-
// cross merges) it returns the one committed last, then the smallest hash.
// It returns the zero hash when a and b share no history.
func (r *Repo) MergeBase(a, b plumbing.Hash) (plumbing.Hash, error) {
	if a.IsZero() || b.IsZero() {
		return plumbing.ZeroHash, nil
	}
	ofA, err := r.ancestors(a)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("walking history of %s: %w", a, err)
	}
	// Walk b's history, stopping at commits a also reaches: those are the
	// common ancestors nearest to b.
	var common []plumbing.Hash
	seen := map[plumbing.Hash]bool{b: true}
	queue := []plumbing.Hash{b}
	for len(queue) > 0 {
		h := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if ofA[h] {
			common = append(common, h)
			continue
		}
		ps, err := r.parents(h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("walking history of %s: %w", b, err)
		}
		for _, p := range ps {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	// Drop the candidates that are ancestors of other candidates.
	var best []plumbing.Hash
	for _, c := range common {
		dominated := false
		for _, d := range common {
			if d == c {
				continue
			}
			if ok, err := r.IsAncestor(c, d); err != nil {
				return plumbing.ZeroHash, err
			} else if ok {
				dominated = true
				break
			}
		}
		if !dominated {
			best = append(best, c)
		}
	}
	if len(best) == 0 {
		return plumbing.ZeroHash, nil
	}
	when := map[plumbing.Hash]int64{}
	for _, h := range best {
		c, err := r.ReadCommit(h)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		when[h] = c.Committer.When.Unix()
	}
	sort.Slice(best, func(i, j int) bool {
		if when[best[i]] != when[best[j]] {
			return when[best[i]] > when[best[j]]
		}
		return best[i].String() < best[j].String()
	})
	return best[0], nil
}

// CommitsBetween returns the commits reachable from newTip but not from
// oldTip (all of newTip's history when oldTip is zero), oldest first: every
// commit comes after its parents, and a merge's first-parent line comes
// before the line it merged.
func (r *Repo) CommitsBetween(oldTip, newTip plumbing.Hash) ([]*CommitInfo, error) {
	if newTip.IsZero() {
		return nil, nil
	}
	stop, err := r.ancestors(oldTip)
	if err != nil {
		return nil, fmt.Errorf("walking history of %s: %w", oldTip, err)
	}
	// An iterative depth-first walk that emits a commit once all its
	// parents are emitted (or excluded).
	type frame struct {
		c    *CommitInfo
		next int // index of the next parent to visit
	}
	var out []*CommitInfo
	done := map[plumbing.Hash]bool{}
	if stop[newTip] {
		return nil, nil
	}
	first, err := r.ReadCommit(newTip)
	if err != nil {
		return nil, err
	}
	stack := []frame{{c: first}}
	onStack := map[plumbing.Hash]bool{newTip: true}
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if top.next < len(top.c.Parents) {
			p := top.c.Parents[top.next]
			top.next++
			if stop[p] || done[p] || onStack[p] {
				continue
			}
			c, err := r.ReadCommit(p)
			if err != nil {
				return nil, err
			}
			onStack[p] = true
			stack = append(stack, frame{c: c})
			continue
		}
		done[top.c.Hash] = true
		out = append(out, top.c)
		stack = stack[:len(stack)-1]
	}
	return out, nil
}

package release

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/quorum"
	"github.com/tally-sig/tally/release/record"
)

// recordName matches the file name of a build record, <FINGERPRINT>.txt.
var recordName = regexp.MustCompile(`^[0-9A-F]{40}\.txt$`)

// Errors of a scope that names nothing: a gate must never pass on an empty
// or mistyped scope.
var (
	// ErrUnknownImage: a NAME in scope matches no image of the repository
	// (no signature directory and no build record; within --release, none
	// of that release's build records).
	ErrUnknownImage = errors.New("no such image")
	// ErrUnknownRelease: the release in scope has no build records.
	ErrUnknownRelease = errors.New("no such release")
)

// checkScope refuses a scope that names what the repository at st does not
// hold: a release without build records, or an image name with no
// signature directory or build record (in that release, when one is
// given). The error names it and the closest existing names.
func checkScope(st *policy.State, scope quorum.Scope) error {
	if scope.Release == "" && len(scope.Names) == 0 {
		return nil
	}
	releases, err := listReleases(st)
	if err != nil {
		return err
	}
	if scope.Release != "" && !slices.Contains(releases, scope.Release) {
		if len(releases) == 0 {
			return fmt.Errorf("%w: release %s: no release has build records yet (tally sign --release %s records one)", ErrUnknownRelease, scope.Release, scope.Release)
		}
		return fmt.Errorf("%w: release %s has no build records%s; the releases are %s", ErrUnknownRelease,
			scope.Release, didYouMean(scope.Release, releases), shortList(releases, 10))
	}
	if len(scope.Names) == 0 {
		return nil
	}
	names := map[string]bool{}
	recorded := func(rel string) error {
		dir := policy.BuildsDir + "/" + rel
		entries, err := st.Snap.List(dir)
		if err != nil {
			return nil // judged elsewhere (bad-record)
		}
		for _, e := range entries {
			if !recordName.MatchString(e.Name) || e.IsDir() {
				continue
			}
			data, err := st.Snap.Blob(e.Hash)
			if err != nil {
				return fmt.Errorf("reading %s/%s: %w", dir, e.Name, err)
			}
			rec, err := record.ParseBuildRecord(data)
			if err != nil {
				continue
			}
			for _, b := range rec.Built {
				names[b.Name] = true
			}
		}
		return nil
	}
	if scope.Release != "" {
		if err := recorded(scope.Release); err != nil {
			return err
		}
	} else {
		for _, rel := range releases {
			if err := recorded(rel); err != nil {
				return err
			}
		}
		if e, err := st.Snap.Stat(st.Policy.Namespace); err == nil && e.IsDir() {
			if err := signedNames(st, st.Policy.Namespace, "", e.Hash, names); err != nil {
				return err
			}
		}
	}
	var missing []string
	for _, n := range scope.Names {
		if !names[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	all := make([]string, 0, len(names))
	for n := range names {
		all = append(all, n)
	}
	slices.Sort(all)
	where := "the repository"
	if scope.Release != "" {
		where = "release " + scope.Release
	}
	var parts []string
	for _, n := range missing {
		parts = append(parts, fmt.Sprintf("%s%s", n, didYouMean(n, all)))
	}
	return fmt.Errorf("%w: %s has no image named %s", ErrUnknownImage, where, strings.Join(parts, ", "))
}

// listReleases lists the releases with a directory of build records.
func listReleases(st *policy.State) ([]string, error) {
	entries, err := st.Snap.List(policy.BuildsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", policy.BuildsDir, err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && policy.CheckReleaseName(e.Name) == nil {
			out = append(out, e.Name)
		}
	}
	return out, nil
}

// signedNames adds the image names of the signature directories below dir
// (rel: its path below the namespace; tree: its tree). Entries whose names
// are not safe paths are left out, as Evaluate judges them.
func signedNames(st *policy.State, dir, rel string, tree plumbing.Hash, names map[string]bool) error {
	entries, _, err := st.Snap.ListTree(tree)
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		r := e.Name
		if rel != "" {
			r = rel + "/" + e.Name
		}
		if name, _, ok := strings.Cut(r, "@"); ok {
			names[name] = true
			continue
		}
		if strings.Count(r, "/") < 4 {
			if err := signedNames(st, dir+"/"+e.Name, r, e.Hash, names); err != nil {
				return err
			}
		}
	}
	return nil
}

// didYouMean is " (did you mean X?)" for the candidates closest to s, or
// "" when none is close.
func didYouMean(s string, candidates []string) string {
	best, bestD := []string(nil), max(2, len(s)/3)+1
	for _, c := range candidates {
		d := editDistance(s, c)
		switch {
		case d < bestD:
			best, bestD = []string{c}, d
		case d == bestD && len(best) > 0 && len(best) < 3:
			best = append(best, c)
		}
	}
	if len(best) == 0 {
		return ""
	}
	return " (did you mean " + strings.Join(best, " or ") + "?)"
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// shortList joins up to n items, counting the rest.
func shortList(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

package release

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
)

// ErrBadBundle is gitstore.ErrBadBundle: the file is not a complete git
// bundle (damaged, truncated, or missing history).
var ErrBadBundle = gitstore.ErrBadBundle

// ErrBundleRelease means a bundle does not hold the release asked for, or
// holds several and none was asked for.
var ErrBundleRelease = errors.New("the bundle does not hold that release")

// BundleOptions says what CreateBundle writes.
type BundleOptions struct {
	// Release is the cut release the bundle is for.
	Release string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// BundleResult describes a written bundle.
type BundleResult struct {
	File    string `json:"file"`
	Release string `json:"release"`
	Branch  string `json:"branch"`
	Commit  string `json:"commit"` // the branch tip the bundle holds
	Tagged  string `json:"tagged"` // the commit the release tag points at
	Tag     string `json:"tag"`    // the tag object
	Size    int64  `json:"size"`   // bytes
}

// CreateBundle writes to file a git bundle (version 2, no prerequisites)
// of the checked-out branch, HEAD and the release's signed tag: the whole
// history of the signatures repository up to its tip, so the bundle holds
// the release manifest, every signature file with the commit it entered
// in, the trust policy and its keyring. It first checks the release as
// publish does (loadCut: tag in the branch's history, quorum still met at
// the tagged commit, manifest and digest list exactly what met quorum) and
// refuses otherwise; nothing is written then. The file is replaced
// atomically.
func CreateBundle(ctx context.Context, repo *gitstore.Repo, file string, opts BundleOptions) (*BundleResult, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cut, err := loadCut(ctx, repo, opts.Release, opts.Now)
	if err != nil {
		return nil, err
	}
	if cut.head.Branch == "" {
		return nil, ErrDetached
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".tally-bundle-*")
	if err != nil {
		return nil, fmt.Errorf("writing bundle: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	refs, err := repo.WriteBundle(tmp, []plumbing.ReferenceName{plumbing.HEAD, cut.head.Branch, plumbing.NewTagReferenceName(opts.Release)})
	if err != nil {
		_ = tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return nil, fmt.Errorf("writing bundle: %w", err)
	}
	fi, err := tmp.Stat()
	if err != nil {
		_ = tmp.Close()
		return nil, fmt.Errorf("writing bundle: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("writing bundle: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return nil, fmt.Errorf("writing bundle: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return nil, fmt.Errorf("writing bundle: %w", err)
	}
	return &BundleResult{
		File: file, Release: opts.Release, Branch: cut.head.Branch.Short(), Commit: cut.head.Tip.String(),
		Tagged: cut.commit.String(), Tag: refs[2].Hash.String(), Size: fi.Size(),
	}, nil
}

// Bundle is a bundle read into a repository in memory whose HEAD is the
// bundle's branch: Status, Verify and ExportPolicy judge it as they judge
// a repository.
type Bundle struct {
	Repo *gitstore.Repo
	// Releases are the release tags the bundle holds, sorted.
	Releases []string
}

// OpenBundle reads the bundle in file (see gitstore.ReadBundle): a damaged,
// truncated or incomplete bundle gives an error wrapping ErrBadBundle.
func OpenBundle(file string) (*Bundle, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading bundle: %w", err)
	}
	repo, refs, err := gitstore.ReadBundle(data)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", file, err)
	}
	b := &Bundle{Repo: repo}
	for _, ref := range refs {
		if ref.Name.IsTag() && policy.CheckReleaseName(ref.Name.Short()) == nil {
			b.Releases = append(b.Releases, ref.Name.Short())
		}
	}
	slices.Sort(b.Releases)
	return b, nil
}

// Release returns the release a check of the bundle is about: want, which
// the bundle must hold, or, when want is "", the bundle's only release. It
// checks that the release's tag points into the history of the bundle's
// branch and that the release manifest at the tagged commit names it.
func (b *Bundle) Release(want string) (string, error) {
	if want == "" {
		switch len(b.Releases) {
		case 0:
			return "", fmt.Errorf("%w: it holds no release tag", ErrBundleRelease)
		case 1:
			want = b.Releases[0]
		default:
			return "", fmt.Errorf("%w: it holds releases %s: choose one", ErrBundleRelease, strings.Join(b.Releases, ", "))
		}
	}
	if !slices.Contains(b.Releases, want) {
		return "", fmt.Errorf("%w: no tag %s (it holds %s)", ErrBundleRelease, want, orNone(b.Releases))
	}
	head, err := policy.LoadHead(b.Repo)
	if err != nil {
		return "", err
	}
	commit, ok := tagTarget(b.Repo, want)
	if !ok {
		return "", fmt.Errorf("%w: tag %s does not point at a commit", ErrBadBundle, want)
	}
	if in, err := b.Repo.IsAncestor(commit, head.Tip); err != nil {
		return "", fmt.Errorf("%w: reading history: %v", ErrBadBundle, err)
	} else if !in {
		return "", fmt.Errorf("%w: tag %s points at %s, not in the history of the bundle's branch %s", ErrNotOnBranch, want, commit, head.Branch.Short())
	}
	snap, err := b.Repo.Snapshot(commit)
	if err != nil {
		return "", fmt.Errorf("%w: reading commit %s: %v", ErrBadBundle, commit, err)
	}
	data, err := snap.ReadFile(ManifestPath(want, ManifestFile))
	if err != nil {
		return "", fmt.Errorf("%w: reading %s at %s: %v", ErrBadManifest, ManifestPath(want, ManifestFile), commit, err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", ManifestPath(want, ManifestFile), err)
	}
	if m.Release != want {
		return "", fmt.Errorf("%w: %s names release %s", ErrBadManifest, ManifestPath(want, ManifestFile), m.Release)
	}
	return want, nil
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}

// VerifyBundle is Verify over a bundle, with no network: the release in
// scope is opts.Scope.Release or the bundle's only release (Bundle.Release
// checks it), and registry references are refused.
func VerifyBundle(ctx context.Context, b *Bundle, opts VerifyOptions) (*VerifyResult, error) {
	if len(opts.Registry) > 0 {
		return nil, fmt.Errorf("%w: a bundle is verified offline: check registry images against a repository", ErrBadBundleOptions)
	}
	rel, err := b.Release(opts.Scope.Release)
	if err != nil {
		return nil, err
	}
	opts.Scope.Release = rel
	return Verify(ctx, b.Repo, opts)
}

// ErrBadBundleOptions means options that a bundle cannot honour.
var ErrBadBundleOptions = errors.New("bad options for a bundle")

// ExtractResult describes a lookaside laid out by ExtractBundle.
type ExtractResult struct {
	Dir string `json:"dir"`
	// Lookaside is the file:// URL of Dir, for tally policy export
	// --lookaside and registries.d.
	Lookaside string `json:"lookaside"`
	Release   string `json:"release"`
	Files     int    `json:"files"`
}

// ExtractBundle lays out in dir the lookaside tree of the bundle's branch
// tip, the signature files exactly as a checkout of the repository serves
// them (<namespace>/<name>@sha256=<hex>/signature-N), so that stock podman
// and skopeo read them from a file:// lookaside. dir must be empty or not
// exist; nothing outside it is written. release is as for Bundle.Release.
func ExtractBundle(b *Bundle, release, dir string) (*ExtractResult, error) {
	rel, err := b.Release(release)
	if err != nil {
		return nil, err
	}
	st, err := policy.LoadHead(b.Repo)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("extracting bundle: %w", err)
	}
	if entries, err := os.ReadDir(abs); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%w: %s is not empty", ErrExtractTarget, dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %v", ErrExtractTarget, err)
	}
	res := &ExtractResult{Dir: abs, Lookaside: "file://" + filepath.ToSlash(abs), Release: rel}
	ns := st.Policy.Namespace
	if _, err := st.Snap.Stat(ns); err != nil {
		return res, os.MkdirAll(abs, 0o755)
	}
	err = st.Snap.Walk(ns, func(p string, e gitstore.Entry) error {
		if e.IsDir() {
			return nil
		}
		info := policy.ClassifyPath(st.Policy, p)
		if info.Class != policy.ClassLookaside || info.Problem != "" || (!e.Mode.IsRegular() && e.Mode != filemode.Executable) {
			return nil
		}
		data, err := st.Snap.Blob(e.Hash)
		if err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		out := filepath.Join(abs, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(out, data, 0o644); err != nil {
			return err
		}
		res.Files++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("extracting bundle: %w", err)
	}
	return res, nil
}

// ErrExtractTarget means the directory to extract into is in the way.
var ErrExtractTarget = errors.New("cannot extract into that directory")

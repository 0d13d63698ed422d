package release

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/sigstore"
)

// ErrUntrustedSigner means the signing key is not in the repository's keyring,
// so its signatures would count for nothing.
var ErrUntrustedSigner = errors.New("signing key is not a maintainer key of this repository")

// ErrDetached means HEAD is not on a branch, so there is no branch to move.
var ErrDetached = errors.New("HEAD is detached: check out the signing branch first")

// SignOptions says what to sign and with which key.
type SignOptions struct {
	Release  string           // the release version the build belongs to (e.g. 2026.11.0)
	Images   []buildout.Image // what the build produced (buildout.Read)
	Signer   sigstore.Signer  // the maintainer's key
	Run      Run              // the build's provenance (DescribeRun)
	Now      func() time.Time // the clock; time.Now when nil
	Creator  string           // written as the payload's optional.creator, e.g. "tally 0.1.0"
	Parallel int              // signatures made at once; GOMAXPROCS when 0
	Progress func(done, total int)
}

// SignedImage is one per-platform manifest digest that a sign run looked at.
type SignedImage struct {
	Name      string `json:"name"`
	Tag       string `json:"tag"`
	Platform  string `json:"platform"`
	Digest    string `json:"digest"`
	Reference string `json:"reference"`
	Path      string `json:"path"` // the signature file (existing one when skipped)
}

// SignResult is what a sign run did.
type SignResult struct {
	Release   string        `json:"release"`
	Signer    string        `json:"signer"` // primary key fingerprint
	Images    int           `json:"images"`
	Platforms int           `json:"platforms"`
	Signed    []SignedImage `json:"signed"`  // new signatures
	Skipped   []SignedImage `json:"skipped"` // digests this key had already signed
	Commit    string        `json:"commit,omitempty"`
	Branch    string        `json:"branch,omitempty"`
	Warnings  []string      `json:"warnings,omitempty"`
}

// Sign signs every per-platform manifest digest of the images with the
// maintainer's key, files each signature at the first free signature-N of its
// lookaside directory, records what was built, and commits it all as one
// commit signed by the same key. Digests this key already signed are skipped,
// so a rerun after a failure finishes the job. On any error the branch does not
// move and no file is written.
func Sign(ctx context.Context, repo *gitstore.Repo, opts SignOptions) (*SignResult, error) {
	if err := CheckReleaseName(opts.Release); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	unlock, err := repo.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock() //nolint:errcheck // releasing a flock cannot lose data

	st, err := LoadHead(repo)
	if err != nil {
		return nil, err
	}
	if st.Branch == "" {
		return nil, ErrDetached
	}
	fpr := opts.Signer.Fingerprint()
	key, ok := st.Keys.Key(fpr)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUntrustedSigner, fpr)
	}
	now := opts.Now().UTC().Truncate(time.Second)
	if ok, why := st.Keys.ValidAt(fpr, now); !ok {
		return nil, fmt.Errorf("signing key %s cannot sign now: %s", fpr, why)
	}

	res := &SignResult{Release: opts.Release, Signer: fpr, Branch: st.Branch.Short(), Images: len(opts.Images)}
	todo, err := planSignatures(st, fpr, opts.Images, res)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	blobs, err := signAll(ctx, opts, todo, now)
	if err != nil {
		return nil, err
	}
	changes := make([]gitstore.Change, 0, len(todo)+1)
	for i, t := range todo {
		changes = append(changes, gitstore.Change{Path: t.Path, Data: blobs[i]})
	}
	res.Signed = todo

	// The build record lists everything this run built, including digests
	// signed earlier: the record says what this maintainer's build produced.
	recPath := BuildRecordPath(opts.Release, fpr)
	var rec BuildRecord
	if data, err := st.Snap.ReadFile(recPath); err == nil {
		if rec, err = ParseBuildRecord(data); err != nil {
			return nil, fmt.Errorf("reading %s: %w", recPath, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", recPath, err)
	}
	var built []Built
	for _, img := range opts.Images {
		for _, m := range img.Manifests {
			built = append(built, Built{Name: img.Name, Tag: img.Tag, Platform: platformOrUnknown(m.Platform), Digest: m.Digest})
		}
	}
	opts.Run.Time = now
	if rec.Append(opts.Run, built) > 0 {
		changes = append(changes, gitstore.Change{Path: recPath, Data: rec.Marshal()})
	}
	if len(changes) == 0 {
		return res, nil
	}

	paths := make([]string, len(changes))
	for i, c := range changes {
		paths[i] = c.Path
	}
	if err := repo.CheckPaths(paths); err != nil {
		return nil, err
	}
	who := authorOf(key.Name, now)
	hash, err := repo.Commit(gitstore.CommitRequest{
		Branch:    st.Branch,
		Parents:   []plumbing.Hash{st.Tip},
		Changes:   changes,
		Message:   signMessage(opts, key, res),
		Author:    who,
		Committer: who,
		Sign:      opts.Signer.SignDetached,
	})
	if err != nil {
		return nil, err
	}
	res.Commit = hash.String()
	return res, nil
}

// planSignatures decides, for every manifest digest, whether this key already
// signed it and otherwise which signature-N the new signature takes.
func planSignatures(st *State, fpr string, images []buildout.Image, res *SignResult) ([]SignedImage, error) {
	var todo []SignedImage
	seen := map[string]bool{}
	for _, img := range images {
		for _, m := range img.Manifests {
			res.Platforms++
			repoPath := st.Policy.Namespace + "/" + img.Name
			loc := sigstore.Location{Repository: repoPath, Digest: m.Digest, Number: 1}
			item := SignedImage{Name: img.Name, Tag: img.Tag, Platform: platformOrUnknown(m.Platform),
				Digest: m.Digest, Reference: st.Policy.Reference(img.Name, img.Tag)}
			if seen[loc.Dir()] {
				// The same digest twice in one build (two tags of one image): one signature.
				continue
			}
			seen[loc.Dir()] = true
			existing, err := st.Snap.List(loc.Dir())
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("reading %s: %w", loc.Dir(), err)
			}
			used := map[int]bool{}
			done := ""
			for _, e := range existing {
				l, err := sigstore.ParseLocation(loc.Dir() + "/" + e.Name)
				if err != nil {
					continue
				}
				used[l.Number] = true
				if done != "" || !e.Mode.IsFile() {
					continue
				}
				blob, err := st.Snap.Blob(e.Hash)
				if err != nil {
					return nil, fmt.Errorf("reading %s/%s: %w", loc.Dir(), e.Name, err)
				}
				sig, err := sigstore.Verify(blob, st.Keys)
				if err == nil && sig.Signer == fpr && sig.Payload.Digest == m.Digest {
					done = loc.Dir() + "/" + e.Name
				}
			}
			if done != "" {
				item.Path = done
				res.Skipped = append(res.Skipped, item)
				continue
			}
			for loc.Number = 1; used[loc.Number]; loc.Number++ {
			}
			item.Path = loc.Path()
			todo = append(todo, item)
		}
	}
	return todo, nil
}

// signAll makes the signatures, several at once for key files (the Signer
// serialises what must be serial, such as a smart card).
func signAll(ctx context.Context, opts SignOptions, todo []SignedImage, now time.Time) ([][]byte, error) {
	out := make([][]byte, len(todo))
	workers := opts.Parallel
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var (
		mu       sync.Mutex
		firstErr error
		done     int
		wg       sync.WaitGroup
		next     = make(chan int)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				p := sigstore.Payload{Reference: todo[i].Reference, Digest: todo[i].Digest,
					Creator: opts.Creator, Timestamp: now.Unix()}
				data, err := p.Marshal()
				var blob []byte
				if err == nil {
					blob, err = opts.Signer.SignMessage(data)
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("signing %s (%s): %w", todo[i].Reference, todo[i].Digest, err)
				}
				out[i] = blob
				done++
				if opts.Progress != nil {
					opts.Progress(done, len(todo))
				}
				mu.Unlock()
			}
		}()
	}
	for i := range todo {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func platformOrUnknown(p string) string {
	if p == "" {
		return "unknown"
	}
	return p
}

// authorOf turns a key's user ID ("Name (comment) <email>") into a git identity.
func authorOf(userID string, when time.Time) object.Signature {
	name, email := userID, ""
	if i := strings.LastIndex(userID, "<"); i >= 0 && strings.HasSuffix(userID, ">") {
		name, email = strings.TrimSpace(userID[:i]), userID[i+1:len(userID)-1]
	}
	if j := strings.Index(name, " ("); j > 0 && strings.HasSuffix(name, ")") {
		name = name[:j]
	}
	if name == "" {
		name = "tally"
	}
	return object.Signature{Name: name, Email: email, When: when}
}

// signMessage is the commit message of a sign run: a summary line, the
// provenance, and every new signature.
func signMessage(opts SignOptions, key sigstore.Key, res *SignResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "sign %s: %d new signature(s) by %s\n\n", opts.Release, len(res.Signed), authorOf(key.Name, time.Time{}).Name)
	fmt.Fprintf(&b, "Signer: %s\n", key.Fingerprint)
	fmt.Fprintf(&b, "Source: %s (dirty: %s)\n", opts.Run.Source, opts.Run.Dirty)
	fmt.Fprintf(&b, "Builder: %s, %s %s\n", opts.Run.Platform, opts.Run.CPUVendor, opts.Run.CPUModel)
	fmt.Fprintf(&b, "Images: %d, platforms: %d, already signed: %d\n", res.Images, res.Platforms, len(res.Skipped))
	if len(res.Signed) > 0 {
		b.WriteString("\n")
		lines := make([]string, 0, len(res.Signed))
		for _, s := range res.Signed {
			lines = append(lines, fmt.Sprintf("%s %s %s", s.Reference, s.Platform, s.Digest))
		}
		sort.Strings(lines)
		b.WriteString(strings.Join(lines, "\n"))
		b.WriteString("\n")
	}
	return b.String()
}

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
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// ErrUntrustedSigner is policy.ErrUntrustedSigner, kept here for callers of Sign.
var ErrUntrustedSigner = policy.ErrUntrustedSigner

// ErrDetached is policy.ErrDetached, kept here for callers of the verbs.
var ErrDetached = policy.ErrDetached

// ErrOutsideNamespace means an image's lookaside directory would not be a
// repository directly below the policy's namespace (an image name with a
// slash, "..", upper case, or anything else a docker repository path
// cannot hold), so no stock client would ever look there.
var ErrOutsideNamespace = errors.New("image is not a repository directly below the namespace")

// SignOptions says what to sign and with which key.
type SignOptions struct {
	Release  string           // the release version the build belongs to (e.g. 2026.11.0)
	Images   []buildout.Image // what the build produced (buildout.Read)
	Signer   sigstore.Signer  // the maintainer's key
	Run      record.Run       // the build's provenance (DescribeRun)
	Now      func() time.Time // the clock; time.Now when nil
	Creator  string           // written as the payload's optional.creator, e.g. "tally 0.1.0"
	Parallel int              // signatures made at once; GOMAXPROCS when 0
	// LockWait bounds how long Sign waits for another writer of the
	// repository (another tally) to finish; then it fails with an error
	// wrapping gitstore.ErrLocked. 0 waits as long as ctx allows.
	LockWait time.Duration
	// Progress, when set, is called after each new signature with the
	// number made so far and the number to make; never concurrently.
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
	// Resigned says why the key signed again although it has a signature
	// file for the digest: none of its files there counts (expired, a key
	// lifetime, behind a numbering gap, the wrong identity...). "" otherwise.
	Resigned string `json:"resigned,omitempty"`
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
// so a rerun after a failure finishes the job.
//
// Everything that can be checked is checked before the first signature is
// made: the release name, the lock, the policy, that the key is a current
// maintainer key, every image name and identity, and that no path Sign
// writes holds uncommitted work in the checkout (an error wrapping
// gitstore.ErrDirty). On any error the branch does not move and no file is
// written.
func Sign(ctx context.Context, repo *gitstore.Repo, opts SignOptions) (*SignResult, error) {
	if err := policy.CheckReleaseName(opts.Release); err != nil {
		return nil, err
	}
	if opts.Signer == nil {
		return nil, errors.New("signing: no signer")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	st, unlock, err := lockHead(ctx, repo, opts.LockWait)
	if err != nil {
		return nil, err
	}
	defer unlock() //nolint:errcheck // releasing a flock cannot lose data
	fpr := opts.Signer.Fingerprint()
	key, ok := st.Keys.Key(fpr)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUntrustedSigner, fpr)
	}
	now := opts.Now().UTC().Truncate(time.Second)
	if err := checkSigningKeyOf(st.Keys, fpr, signingKey(opts.Signer), now); err != nil {
		return nil, err
	}

	res := &SignResult{Release: opts.Release, Signer: fpr, Branch: st.Branch.Short(), Images: len(opts.Images),
		Signed: []SignedImage{}, Skipped: []SignedImage{}}
	todo, err := planSignatures(st, fpr, opts.Images, res, now)
	if err != nil {
		return nil, err
	}
	payloads := make([][]byte, len(todo))
	for i, t := range todo {
		p := sigstore.Payload{Reference: t.Reference, Digest: t.Digest, Creator: opts.Creator, Timestamp: now.Unix()}
		if payloads[i], err = p.Marshal(); err != nil {
			return nil, fmt.Errorf("signing %s (%s): %w", t.Reference, t.Digest, err)
		}
	}

	// The build record lists everything this run built, including digests
	// signed earlier: the record says what this maintainer's build produced.
	recPath := policy.BuildRecordPath(opts.Release, fpr)
	var rec record.BuildRecord
	if data, err := st.Snap.ReadFile(recPath); err == nil {
		if rec, err = record.ParseBuildRecord(data); err != nil {
			return nil, fmt.Errorf("reading %s: %w", recPath, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", recPath, err)
	}
	var built []record.Built
	for _, img := range opts.Images {
		for _, m := range img.Manifests {
			built = append(built, record.Built{Name: img.Name, Tag: img.Tag, Platform: platformOrUnknown(m.Platform), Digest: m.Digest})
		}
	}
	opts.Run.Time = now
	var recChange []gitstore.Change
	if rec.Append(opts.Run, built) > 0 {
		recChange = []gitstore.Change{{Path: recPath, Data: rec.Marshal()}}
	}
	if len(todo) == 0 && len(recChange) == 0 {
		return res, nil
	}

	// Refuse a dirty checkout now, not after minutes of smart-card signing.
	paths := make([]string, 0, len(todo)+1)
	for _, t := range todo {
		paths = append(paths, t.Path)
	}
	for _, c := range recChange {
		paths = append(paths, c.Path)
	}
	if err := repo.CheckPaths(paths); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	blobs, err := signAll(ctx, opts.Signer, opts.Parallel, opts.Progress, todo, payloads)
	if err != nil {
		return nil, err
	}
	changes := make([]gitstore.Change, 0, len(todo)+1)
	for i, t := range todo {
		changes = append(changes, gitstore.Change{Path: t.Path, Data: blobs[i]})
	}
	changes = append(changes, recChange...)
	res.Signed = append(res.Signed, todo...)

	// The commit's time is taken now, after the slow signing: the commit
	// signature must not come long after the time the commit claims.
	who := authorOf(key.Name, opts.Now().UTC().Truncate(time.Second))
	hash, err := repo.Commit(gitstore.CommitRequest{
		Branch:    st.Branch,
		Parents:   []plumbing.Hash{st.Tip},
		Changes:   changes,
		Message:   signMessage(opts, key, res),
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

// signingKey returns the fingerprint of the key (primary or subkey) a
// signer signs with, when it says; else its primary fingerprint.
func signingKey(s sigstore.Signer) string {
	if k, ok := s.(interface{ SigningKey() string }); ok && k.SigningKey() != "" {
		return k.SigningKey()
	}
	return s.Fingerprint()
}

// checkSigningKeyOf refuses a key whose signatures would not count if made
// now: expired, revoked, or not valid yet according to the repository's
// keyring (which may know of an expiry or revocation that the secret key
// file does not). Errors wrap sigstore.ErrKeyExpired or ErrKeyRevoked where
// that is the reason.
//
// signWith is the key (primary or subkey) of the maintainer key fpr that
// makes the signatures: a subkey the repository's keyring says is revoked
// or expired is refused too, before anything is signed.
func checkSigningKeyOf(keys *sigstore.Keyring, fpr, signWith string, now time.Time) error {
	if _, found := keys.Entity(fpr); !found {
		return fmt.Errorf("%w: %s", ErrUntrustedSigner, fpr)
	}
	if k, _, err := keys.Resolve(signWith); err != nil || k.Fingerprint != fpr {
		return fmt.Errorf("%w: %s signs with %s, which the repository's keyring does not hold as its key", ErrUntrustedSigner, fpr, signWith)
	}
	if err := keys.CanSign(signWith, now); err != nil {
		return fmt.Errorf("signing key %s cannot sign at %s: %w (the repository's keyring says so)", fpr, now.Format(time.RFC3339), err)
	}
	if ok, why := keys.ValidAt(signWith, now); !ok {
		return fmt.Errorf("signing key %s cannot sign now: %s", fpr, why)
	}
	return nil
}

// planSignatures decides, for every manifest digest, whether this key already
// has a signature of it that counts and otherwise which signature-N the new
// signature takes. It reads only the lookaside directories of the images'
// digests.
func planSignatures(st *policy.State, fpr string, images []buildout.Image, res *SignResult, now time.Time) ([]SignedImage, error) {
	var todo []SignedImage
	seen := map[string]bool{}
	for _, img := range images {
		repoPath := st.Policy.Namespace + "/" + img.Name
		if err := checkImageName(st.Policy.Namespace, img.Name); err != nil {
			return nil, err
		}
		for _, m := range img.Manifests {
			res.Platforms++
			loc := sigstore.Location{Repository: repoPath, Digest: m.Digest, Number: 1}
			if err := loc.Validate(); err != nil {
				return nil, fmt.Errorf("image %s: %w", img.Name, err)
			}
			item := SignedImage{Name: img.Name, Tag: img.Tag, Platform: platformOrUnknown(m.Platform),
				Digest: m.Digest, Reference: st.Policy.Reference(img.Name, img.Tag)}
			if err := (sigstore.Payload{Reference: item.Reference, Digest: m.Digest}).Validate(); err != nil {
				return nil, fmt.Errorf("image %s:%s: %w", img.Name, img.Tag, err)
			}
			if seen[loc.Dir()] {
				// The same digest twice in one build (two tags of one image): one signature.
				continue
			}
			seen[loc.Dir()] = true
			done, used, why, err := ownSignature(st, loc, img.Name, fpr, now)
			if err != nil {
				return nil, err
			}
			if done != nil {
				item.Path = done.Location.Path()
				if done.Signature.Payload.Reference != item.Reference {
					res.Warnings = append(res.Warnings, fmt.Sprintf(
						"%s already signed %s as %s, not as %s: one key signs a digest once, so a pull of %s by that tag passes only a policy that matches by repository (tally policy export --any-tag, which uses exactRepository and works when pulling from another registry too)",
						fpr, m.Digest, done.Signature.Payload.Reference, item.Reference, item.Reference))
				}
				res.Skipped = append(res.Skipped, item)
				continue
			}
			item.Resigned = why
			for loc.Number = 1; used[loc.Number]; loc.Number++ {
			}
			item.Path = loc.Path()
			todo = append(todo, item)
		}
	}
	return todo, nil
}

// ownSignature judges the signature directory of loc (sigstore.JudgeFiles,
// with the key's files entering now, as a new one would) and returns the
// key fpr's file that counts there, or nil. used holds the signature
// numbers taken (any file named signature-N, whatever it holds). When the
// key has files there but none counts, why says why (the first such file
// and its problem), and a new signature is made at the first free number.
// A file that does not verify (corrupt, another key, legacy) keeps its
// number and is otherwise left alone.
func ownSignature(st *policy.State, loc sigstore.Location, name, fpr string, now time.Time) (done *sigstore.Verdict, used map[int]bool, why string, err error) {
	entries, err := st.Snap.List(loc.Dir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, "", fmt.Errorf("reading %s: %w", loc.Dir(), err)
	}
	used = map[int]bool{}
	var files []sigstore.File
	for _, e := range entries {
		l, perr := sigstore.ParseLocation(loc.Dir() + "/" + e.Name)
		if perr != nil {
			continue // not a signature-N name: readers never look at it
		}
		used[l.Number] = true
		f := sigstore.File{Location: l, Repository: st.Policy.Repository(name), Times: sigstore.Times{Now: now, KeyNow: true}}
		if !e.Mode.IsFile() {
			f.Malformed = fmt.Sprintf("not a regular file (mode %s)", e.Mode)
		} else {
			blob, err := st.Snap.Blob(e.Hash)
			if err != nil {
				return nil, nil, "", fmt.Errorf("reading %s/%s: %w", loc.Dir(), e.Name, err)
			}
			f.Signature, f.VerifyErr = sigstore.Verify(blob, st.Keys)
		}
		files = append(files, f)
	}
	for _, v := range sigstore.JudgeFiles(files, st.Keys) {
		if v.Signature.Signer != fpr {
			continue
		}
		// In a poisoned directory no signature counts, and a new one would
		// not either: the key's file stands (tally status names the poison).
		if v.OK() || v.Problem == sigstore.KindPoisoned {
			return &v, used, "", nil
		}
		if why == "" && v.Problem != sigstore.KindDuplicateSigner {
			why = fmt.Sprintf("%s does not count: %s: %s", v.Location.Path(), v.Problem, v.Message)
		}
	}
	return nil, used, why, nil
}

// checkImageName refuses an image name that would put its lookaside
// directory anywhere but directly below the namespace.
func checkImageName(namespace, name string) error {
	if name == "" || strings.Contains(name, "/") || !policy.NamespacePattern.MatchString(namespace+"/"+name) {
		return fmt.Errorf("%w: %q would be the repository %q", ErrOutsideNamespace, name, namespace+"/"+name)
	}
	return nil
}

// signAll signs the payloads, several at once (the Signer serialises what
// must be serial, such as a smart card), and stops at the first error or
// when ctx is done.
func signAll(ctx context.Context, signer sigstore.Signer, parallel int, progress func(done, total int), todo []SignedImage, payloads [][]byte) ([][]byte, error) {
	out := make([][]byte, len(todo))
	workers := parallel
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(todo))
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
				blob, err := signer.SignMessage(payloads[i])
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("signing %s (%s): %w", todo[i].Reference, todo[i].Digest, err)
				}
				out[i] = blob
				done++
				if progress != nil && err == nil {
					progress(done, len(todo))
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

// authorOf is policy.Author: a key's user ID ("Name (comment) <email>") as a git identity.
func authorOf(userID string, when time.Time) object.Signature { return policy.Author(userID, when) }

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

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

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/sigstore"
)

// JudgedFile is one file of the lookaside tree with the judgement on it.
type JudgedFile struct {
	Path    string
	Blob    plumbing.Hash
	Name    string // image name: the repository path below the namespace ("core-gcc")
	Verdict sigstore.Verdict
	// Counts is true when the file is a valid signature by a trusted key whose
	// lifetime covered the time the file entered the repository, and the first
	// one of its signer in its directory.
	Counts bool
	// Reason says why a valid signature does not count ("" when it counts).
	Reason string
}

// Evaluation is every lookaside file of one commit, judged once. Status,
// verify, merge and the hooks all read their answers from it.
type Evaluation struct {
	Policy    Policy
	Threshold int
	Keys      *sigstore.Keyring
	Files     []JudgedFile // sorted by path
	// Records are the build records, by release and signer fingerprint.
	Records map[string]map[string]BuildRecord
	// RecordProblems are build records that could not be read.
	RecordProblems []Problem
	// Verified counts the signatures whose cryptography was checked in this
	// run; the others came from the verification cache.
	Verified int
}

// EvaluateOptions lets a consumer bring their own trust root.
type EvaluateOptions struct {
	Keys      *sigstore.Keyring // nil: the repository's keyring
	Threshold int               // 0: the repository's threshold
	Cache     *VerifyCache      // nil: no cache
	Parallel  int               // 0: GOMAXPROCS
	Now       func() time.Time  // the clock; time.Now when nil
}

// Evaluate judges every file of the lookaside tree of st and reads the build
// records. Signature checks run in parallel over all cores and reuse the
// verification cache, so a second run verifies only what is new.
func Evaluate(ctx context.Context, st *State, opts EvaluateOptions) (*Evaluation, error) {
	ev := &Evaluation{Policy: st.Policy, Threshold: st.Policy.Threshold, Keys: st.Keys}
	if opts.Keys != nil {
		ev.Keys = opts.Keys
	}
	if opts.Threshold != 0 {
		ev.Threshold = opts.Threshold
	}
	if err := CheckThreshold(ev.Threshold, len(ev.Keys.Keys())); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}

	type item struct {
		idx  int
		loc  sigstore.Location
		want string
	}
	var work []item
	ns := st.Policy.Namespace
	err := st.Snap.Walk(ns, func(p string, e gitstore.Entry) error {
		f := JudgedFile{Path: p, Blob: e.Hash}
		loc, perr := sigstore.ParseLocation(p)
		switch {
		case !e.Mode.IsFile() || e.Mode.IsMalformed():
			f.Verdict = malformed(p, fmt.Sprintf("not a regular file (mode %s): the lookaside tree holds only signature files", e.Mode))
		case perr != nil:
			f.Verdict = malformed(p, perr.Error())
		case !strings.HasPrefix(loc.Repository, ns+"/"):
			f.Verdict = malformed(p, fmt.Sprintf("repository %s is not below the namespace %s", loc.Repository, ns))
		default:
			f.Name = strings.TrimPrefix(loc.Repository, ns+"/")
			work = append(work, item{idx: len(ev.Files), loc: loc, want: st.Policy.Repository(f.Name)})
		}
		ev.Files = append(ev.Files, f)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading the lookaside tree: %w", err)
	}

	// Verify in parallel; the cache answers for blobs seen before.
	workers := opts.Parallel
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     = make(chan item, workers*4)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range next {
				f := &ev.Files[it.idx]
				sig, verr, fresh, err := opts.Cache.verify(st.Snap, f.Blob, ev.Keys)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("reading %s: %w", f.Path, err)
					}
					mu.Unlock()
					continue
				}
				f.Verdict = sigstore.JudgeVerified(it.loc, it.want, sig, verr)
				if fresh {
					mu.Lock()
					ev.Verified++
					mu.Unlock()
				}
			}
		}()
	}
	for _, it := range work {
		if ctx.Err() != nil {
			break
		}
		next <- it
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	ev.judgeDirectories()
	if err := ev.judgeLifetimes(st, opts.Now()); err != nil {
		return nil, err
	}
	ev.readRecords(st)
	return ev, nil
}

func malformed(path, msg string) sigstore.Verdict {
	return sigstore.Verdict{Problem: sigstore.KindMalformedPath, Severity: sigstore.KindMalformedPath.Severity(),
		Message: fmt.Sprintf("%s: %s", path, msg)}
}

// judgeDirectories adds the problems that only a whole directory shows:
// numbering gaps and a signer signing the same digest twice.
func (ev *Evaluation) judgeDirectories() {
	byDir := map[string][]int{}
	for i, f := range ev.Files {
		if f.Name == "" {
			continue
		}
		dir := f.Path[:strings.LastIndexByte(f.Path, '/')]
		byDir[dir] = append(byDir[dir], i)
	}
	for _, idx := range byDir {
		verdicts := make([]sigstore.Verdict, len(idx))
		for j, i := range idx {
			verdicts[j] = ev.Files[i].Verdict
		}
		verdicts = sigstore.JudgeDirectory(verdicts)
		for j, i := range idx {
			ev.Files[i].Verdict = verdicts[j]
		}
	}
}

// judgeLifetimes decides which valid signatures count: a trusted signer whose
// key was valid when the file first entered the repository's history (not when
// the signer says it signed).
func (ev *Evaluation) judgeLifetimes(st *State, now time.Time) error {
	late := map[string]plumbing.Hash{} // files whose key is not valid now: path -> blob
	for i := range ev.Files {
		f := &ev.Files[i]
		switch {
		case f.Verdict.Problem == sigstore.KindDuplicateSigner:
			f.Reason = "this key already signed this digest"
		case f.Verdict.Problem != "":
			f.Reason = string(f.Verdict.Problem)
		default:
			if ok, _ := ev.Keys.ValidAt(f.Verdict.Signature.Issuer, now); ok {
				f.Counts = true
			} else {
				late[f.Path] = f.Blob
			}
		}
	}
	if len(late) == 0 {
		return nil
	}
	entered, err := firstEntered(st, late)
	if err != nil {
		return err
	}
	for i := range ev.Files {
		f := &ev.Files[i]
		if _, ok := late[f.Path]; !ok {
			continue
		}
		when, ok := entered[f.Path]
		if !ok {
			when = now
		}
		valid, why := ev.Keys.ValidAt(f.Verdict.Signature.Issuer, when)
		f.Counts = valid
		if !valid {
			f.Reason = fmt.Sprintf("%s (the signature entered the repository %s)", why, when.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// firstEntered finds, for each path, the committer time of the oldest commit
// in the history of st.Tip that holds the same blob at that path.
func firstEntered(st *State, want map[string]plumbing.Hash) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	seen := map[plumbing.Hash]bool{st.Tip: true}
	queue := []plumbing.Hash{st.Tip}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		c, err := st.Repo.ReadCommit(h)
		if err != nil {
			return nil, fmt.Errorf("reading history: %w", err)
		}
		snap, err := st.Repo.Snapshot(h)
		if err != nil {
			return nil, fmt.Errorf("reading history: %w", err)
		}
		for p, blob := range want {
			e, err := snap.Stat(p)
			if err != nil || e.Hash != blob {
				continue
			}
			if t, ok := out[p]; !ok || c.Committer.When.Before(t) {
				out[p] = c.Committer.When
			}
		}
		for _, parent := range c.Parents {
			if !seen[parent] {
				seen[parent] = true
				queue = append(queue, parent)
			}
		}
	}
	return out, nil
}

// readRecords reads every build record under builds/.
func (ev *Evaluation) readRecords(st *State) {
	ev.Records = map[string]map[string]BuildRecord{}
	_ = st.Snap.Walk(BuildsDir, func(p string, e gitstore.Entry) error {
		parts := strings.Split(p, "/")
		if len(parts) != 3 || !strings.HasSuffix(parts[2], ".txt") || !e.Mode.IsFile() {
			ev.RecordProblems = append(ev.RecordProblems, Problem{Path: p, Kind: "bad-record",
				Severity: string(sigstore.SeverityWarning), Error: "not a build record path (builds/<release>/<FINGERPRINT>.txt)"})
			return nil
		}
		data, err := st.Snap.Blob(e.Hash)
		if err == nil {
			var rec BuildRecord
			if rec, err = ParseBuildRecord(data); err == nil {
				if ev.Records[parts[1]] == nil {
					ev.Records[parts[1]] = map[string]BuildRecord{}
				}
				ev.Records[parts[1]][strings.TrimSuffix(parts[2], ".txt")] = rec
				return nil
			}
		}
		ev.RecordProblems = append(ev.RecordProblems, Problem{Path: p, Kind: "bad-record",
			Severity: string(sigstore.SeverityWarning), Error: err.Error()})
		return nil
	})
}

// Releases lists the releases that have build records, sorted.
func (ev *Evaluation) Releases() []string {
	out := make([]string, 0, len(ev.Records))
	for r := range ev.Records {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

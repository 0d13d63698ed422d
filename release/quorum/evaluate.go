package quorum

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// Problem kinds of a report besides sigstore's judgement of a file: a
// build record Evaluate cannot read. The lifetime kinds are sigstore's,
// named here as they always were. All are warnings.
const (
	// KindKeyNotValid is sigstore.KindKeyNotValid.
	KindKeyNotValid = string(sigstore.KindKeyNotValid)
	// KindSignatureExpired is sigstore.KindSignatureExpired.
	KindSignatureExpired = string(sigstore.KindSignatureExpired)
	// KindClientsRefuse is sigstore.KindClientsRefuse: a file that counts
	// but that stock clients with the current keyring refuse now.
	KindClientsRefuse = string(sigstore.KindClientsRefuse)
	// KindBadRecord: a file under builds/ is not a build record.
	KindBadRecord = "bad-record"
)

// ErrBadThreshold means the threshold a caller asked for (EvaluateOptions)
// cannot be met honestly with the keyring in use: below 1 or above the
// number of keys.
var ErrBadThreshold = errors.New("unusable threshold")

// Scope narrows an evaluation to one release and/or some image names.
type Scope struct {
	// Release is the release whose build records define the images and
	// digests to judge; "" means every release and every signature.
	Release string
	// Names are image names below the namespace ("core-gcc"); nil means
	// every image.
	Names []string
}

// whole reports whether the scope is the entire repository.
func (s Scope) whole() bool { return s.Release == "" && len(s.Names) == 0 }

// hasName reports whether image name is in scope.
func (s Scope) hasName(name string) bool {
	return len(s.Names) == 0 || slices.Contains(s.Names, name)
}

// hasPrefix reports whether a name in scope can lie below directory dir
// (relative to the namespace).
func (s Scope) hasPrefix(dir string) bool {
	if len(s.Names) == 0 {
		return true
	}
	for _, n := range s.Names {
		if strings.HasPrefix(n, dir+"/") {
			return true
		}
	}
	return false
}

// JudgedFile is one file of the lookaside tree with the judgement on it.
type JudgedFile struct {
	// Path is the file's path from the root of the repository.
	Path string
	// Blob is the git blob id of its contents.
	Blob plumbing.Hash
	// Name is the image name: the repository below the namespace
	// ("core-gcc"); "" when the path is not a lookaside location.
	Name string
	// Verdict is sigstore's whole judgement of the file: format, location,
	// lifetimes (entered when Entered says, judged now) and its directory.
	Verdict sigstore.Verdict
	// Counts is Verdict.OK(): a good signature whose own expiry has not
	// passed and whose key was valid when the file entered the repository.
	Counts bool
	// Entered is when the file entered the repository's history; it is
	// worked out only for signatures by keys that are not valid now, and is
	// zero otherwise.
	Entered time.Time
	// Reason says why the file does not count; "" when it counts.
	Reason string
	// memo is the cached judgement the file came from.
	memo *memoFile
}

// Problem returns what is wrong with the file as a report problem, or false
// when nothing is: sigstore's verdict, or, for a file that counts, that
// stock clients refuse it now (KindClientsRefuse, a warning).
func (f *JudgedFile) Problem() (Problem, bool) {
	switch {
	case f.Verdict.Problem != "":
		return Problem{Path: f.Path, Kind: string(f.Verdict.Problem), Severity: string(f.Verdict.Severity), Error: f.Verdict.Message}, true
	case f.Verdict.Clients != "":
		return Problem{Path: f.Path, Kind: KindClientsRefuse, Severity: string(sigstore.SeverityWarning), Error: f.Verdict.Clients}, true
	}
	return Problem{}, false
}

// Evaluation is every lookaside file in scope of one commit, judged once,
// and the build records. Status and verify read their answers from it.
type Evaluation struct {
	// Commit is the commit judged.
	Commit plumbing.Hash
	// Policy is the repository's trust policy at Commit.
	Policy policy.Policy
	// Threshold is M, the repository's or the caller's.
	Threshold int
	// Keys is the trust root: the repository's keyring or the caller's.
	Keys *sigstore.Keyring
	// Scope is what was judged.
	Scope Scope
	// Files are the files in scope, sorted by path.
	Files []JudgedFile
	// Records are the build records in scope, by release and signer
	// fingerprint.
	Records map[string]map[string]record.BuildRecord
	// RecordProblems are files under builds/ that are not build records.
	RecordProblems []Problem
	// Verified counts the signatures whose cryptography was checked in this
	// run; the others came from the verification cache.
	Verified int
	// Now is the time keys and signatures were judged at.
	Now time.Time
	// StrictClients is EvaluateOptions.StrictClients.
	StrictClients bool
}

// EvaluateOptions says what to judge and lets a consumer bring their own
// trust root.
type EvaluateOptions struct {
	// Scope narrows the evaluation; the zero Scope is the whole repository.
	Scope Scope
	// Keys replaces the repository's keyring as the trust root.
	Keys *sigstore.Keyring
	// Threshold replaces the repository's threshold when not 0.
	Threshold int
	// Cache remembers verifications between runs; nil verifies everything.
	Cache *VerifyCache
	// Parallel is how many signatures are verified at once; GOMAXPROCS
	// when 0.
	Parallel int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// StrictClients makes Tally count only signatures that stock clients
	// with the current keyring accept now (Verdict.Clients is "").
	StrictClients bool
}

// Evaluate judges every file in scope of the lookaside tree of st and reads
// the build records. Files are read straight from git objects (a bare
// repository or any commit works), verified in parallel over all cores, and
// the cache answers for directories and blobs it has seen under the same
// keyring, so a second run verifies only what is new.
//
// A good signature counts when its own expiry (if any) has not passed and
// its key was valid when the file first entered the repository's history:
// the committer time of the first commit that holds it, raised to the
// latest committer time of that commit's ancestors, so that a commit cannot
// backdate a signature before the history it builds on. The time a signer
// writes into the signature plays no part.
func Evaluate(ctx context.Context, st *policy.State, opts EvaluateOptions) (*Evaluation, error) {
	ev := &Evaluation{Commit: st.Tip, Policy: st.Policy, Threshold: st.Policy.Threshold, Keys: st.Keys, Scope: opts.Scope,
		StrictClients: opts.StrictClients}
	if opts.Keys != nil {
		ev.Keys = opts.Keys
	}
	if opts.Threshold != 0 {
		ev.Threshold = opts.Threshold
	}
	if err := policy.CheckThreshold(ev.Threshold, len(ev.Keys.Keys())); err != nil {
		if opts.Threshold != 0 || opts.Keys != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadThreshold, err)
		}
		return nil, err
	}
	if opts.Scope.Release != "" {
		if err := policy.CheckReleaseName(opts.Scope.Release); err != nil {
			return nil, err
		}
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	ev.Now = now()
	sec := opts.Cache.section(ev.Keys.ID(), st.Policy)
	complete := false
	defer func() { sec.done(complete) }()

	// Build records: read first when they decide which directories are in
	// scope, else alongside the signatures.
	var recordsDone chan struct{}
	readRecords := func() { ev.Records, ev.RecordProblems = readRecords(st.Snap, opts.Scope, sec) }
	var inRelease map[string]bool // name@digest recorded in the release
	if opts.Scope.Release != "" {
		readRecords()
		inRelease = map[string]bool{}
		for _, rec := range ev.Records[opts.Scope.Release] {
			for _, b := range rec.Built {
				inRelease[b.Name+"@"+b.Digest] = true
			}
		}
	} else {
		recordsDone = make(chan struct{})
		go func() { defer close(recordsDone); readRecords() }()
	}

	w := &walker{st: st, ev: ev, sec: sec, scope: opts.Scope, inRelease: inRelease}
	err := w.run(ctx, opts.Parallel)
	if recordsDone != nil {
		<-recordsDone
	}
	if err != nil {
		return nil, err
	}
	ev.judgeLifetimes(st, sec)
	complete = opts.Scope.whole()
	return ev, nil
}

// walker walks the lookaside tree and judges what the cache does not know.
type walker struct {
	st        *policy.State
	ev        *Evaluation
	sec       *cacheSection
	scope     Scope
	inRelease map[string]bool

	items    []*unitWork // in tree order
	verified atomic.Int64
	mu       sync.Mutex
	err      error
}

// unitWork is one signature directory, "<namespace>/<name>@<digest>", or
// one file outside any: the unit the cache remembers by its tree (or
// blob) id.
type unitWork struct {
	path    string
	name    string
	memo    *unitMemo
	pending atomic.Int32
}

// job asks a worker to verify (when need is set) and judge one file.
type job struct {
	unit *unitWork
	file *memoFile
	need bool
}

func (w *walker) run(ctx context.Context, parallel int) error {
	if parallel <= 0 {
		parallel = runtime.GOMAXPROCS(0)
	}
	jobs := make(chan job, 256)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				w.work(j)
			}
		}()
	}
	walkErr := w.walkNamespace(ctx, jobs)
	close(jobs)
	wg.Wait()
	if walkErr != nil {
		return walkErr
	}
	if w.err != nil {
		return w.err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w.ev.Verified = int(w.verified.Load())
	w.ev.Files = w.files()
	return nil
}

func (w *walker) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

// walkNamespace visits the namespace directory; a namespace that does not
// exist yet has no files. When the whole repository is in scope and the
// namespace's tree is the one the cache last saw whole, the cache lists
// its units without a walk.
func (w *walker) walkNamespace(ctx context.Context, jobs chan<- job) error {
	ns := w.st.Policy.Namespace
	e, err := w.st.Snap.Stat(ns)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("reading the lookaside tree: %w", err)
	case !e.IsDir():
		if w.scope.whole() {
			w.stray(ns, e, "the namespace is a file, not the lookaside directory")
		}
		return nil
	}
	if w.scope.whole() {
		if units := w.sec.tree(e.Hash); units != nil {
			for _, m := range units {
				w.items = append(w.items, &unitWork{path: m.path, memo: m.memo})
			}
			return nil
		}
	}
	if err := w.walkDir(ctx, ns, "", e.Hash, jobs); err != nil {
		return err
	}
	if w.scope.whole() {
		paths := make([]string, len(w.items))
		for i, u := range w.items {
			paths[i] = u.path
		}
		w.sec.setTree(e.Hash, paths)
	}
	return nil
}

// walkDir visits a directory of the namespace above the signature
// directories; rel is its path below the namespace.
func (w *walker) walkDir(ctx context.Context, dir, rel string, tree plumbing.Hash, jobs chan<- job) error {
	entries, bad, err := w.st.Snap.ListTree(tree)
	if err != nil {
		return fmt.Errorf("reading the lookaside tree: %s: %w", dir, err)
	}
	w.badEntries(dir, bad)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, r := dir+"/"+e.Name, e.Name
		if rel != "" {
			r = rel + "/" + e.Name
		}
		switch {
		case e.IsDir() && strings.Contains(e.Name, "@"):
			name, digest, _ := strings.Cut(r, "@")
			if !w.scope.hasName(name) {
				continue
			}
			if w.inRelease != nil && !w.inRelease[name+"@"+strings.Replace(digest, "=", ":", 1)] {
				continue
			}
			if err := w.walkUnit(p, name, e.Hash, jobs); err != nil {
				return err
			}
		case e.IsDir():
			if w.scope.hasPrefix(r) {
				if err := w.walkDir(ctx, p, r, e.Hash, jobs); err != nil {
					return err
				}
			}
		case w.scope.whole():
			// A file outside any signature directory: judged by its path.
			msg := "not inside a signature directory <repository>@sha256=<hex>/"
			if _, perr := sigstore.ParseLocation(p); perr != nil {
				msg = perr.Error()
			}
			w.stray(p, e, msg)
		}
	}
	return nil
}

// badEntries judges the entries of dir whose names tally cannot use as a
// path (a newline, say): each is an invalid malformed-path file of its own,
// its path quoted, and the rest of the tree is judged as usual. In a
// narrowed scope only those of the scope's names are reported.
func (w *walker) badEntries(dir string, bad []gitstore.BadEntry) {
	for _, b := range bad {
		p := dir + "/" + b.Name
		if !w.scope.whole() {
			name, _, _ := strings.Cut(strings.TrimPrefix(p, w.st.Policy.Namespace+"/"), "@")
			if !w.scope.hasName(name) || w.inRelease != nil {
				continue
			}
		}
		what := "a file"
		if b.IsDir() {
			what = "a directory"
		}
		u := &unitWork{path: p}
		u.memo = &unitMemo{tree: b.Hash, files: []memoFile{{path: p, blob: b.Hash, mode: b.Mode, kind: sigstore.KindMalformedPath,
			msg: sigstore.Malformed(p, what+" whose name is not a safe path ("+b.Reason+"): no client can fetch it, and nothing in it is judged").Message}}}
		w.sec.storeUnit(p, u.memo)
		w.items = append(w.items, u)
	}
}

// Malformed is the verdict on a file at path that is no lookaside location.
func Malformed(path, msg string) sigstore.Verdict {
	return sigstore.Verdict{Problem: sigstore.KindMalformedPath, Severity: sigstore.KindMalformedPath.Severity(),
		Message: fmt.Sprintf("%s: %s", path, msg)}
}

// stray judges a file whose path is no lookaside location, by its path
// alone: a unit of one file.
func (w *walker) stray(path string, e gitstore.Entry, msg string) {
	u := &unitWork{path: path}
	if u.memo = w.sec.unit(path, e.Hash); u.memo == nil {
		u.memo = &unitMemo{tree: e.Hash, files: []memoFile{{path: path, blob: e.Hash, mode: e.Mode, kind: sigstore.KindMalformedPath, msg: msg}}}
		w.sec.storeUnit(path, u.memo)
	}
	w.items = append(w.items, u)
}

// walkUnit judges one signature directory, from the cache when its tree is
// unchanged.
func (w *walker) walkUnit(path, name string, tree plumbing.Hash, jobs chan<- job) error {
	u := &unitWork{path: path, name: name}
	w.items = append(w.items, u)
	if m := w.sec.unit(path, tree); m != nil {
		u.memo = m
		return nil
	}
	u.memo = &unitMemo{tree: tree}
	ns := w.st.Policy.Namespace
	var todo []job
	var visit func(dir string, tree plumbing.Hash) error
	visit = func(dir string, tree plumbing.Hash) error {
		entries, bad, err := w.st.Snap.ListTree(tree)
		if err != nil {
			return err
		}
		for _, b := range bad {
			p := dir + "/" + b.Name
			u.memo.files = append(u.memo.files, memoFile{path: p, blob: b.Hash, mode: b.Mode, kind: sigstore.KindMalformedPath,
				msg: sigstore.Malformed(p, "a name that is not a safe path ("+b.Reason+")").Message})
		}
		for _, e := range entries {
			p := dir + "/" + e.Name
			if e.IsDir() {
				if err := visit(p, e.Hash); err != nil {
					return err
				}
				continue
			}
			f := memoFile{path: p, blob: e.Hash, mode: e.Mode}
			loc, perr := sigstore.ParseLocation(p)
			switch {
			case perr != nil:
				f.kind, f.msg = sigstore.KindMalformedPath, perr.Error()
			case !IsRegular(e.Mode):
				f.loc = loc
				f.kind, f.msg = sigstore.KindMalformedPath, fmt.Sprintf("%s is not a regular file (mode %s): the lookaside tree holds only signature files", p, e.Mode)
			case loc.Repository != ns+"/"+name:
				f.loc = loc
				f.kind, f.msg = sigstore.KindMalformedPath, fmt.Sprintf("%s is not below the namespace %s", p, ns)
			default:
				f.loc = loc
				f.judge = true
			}
			u.memo.files = append(u.memo.files, f)
		}
		return nil
	}
	if err := visit(path, tree); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	for i := range u.memo.files {
		f := &u.memo.files[i]
		if !f.judge {
			continue
		}
		need := !w.sec.outcome(f)
		todo = append(todo, job{unit: u, file: f, need: need})
	}
	if len(todo) == 0 {
		w.judgeUnit(u)
		return nil
	}
	u.pending.Store(int32(len(todo)))
	for _, j := range todo {
		jobs <- j
	}
	return nil
}

// IsRegular reports whether a tree entry is a regular file (executable or not).
func IsRegular(m filemode.FileMode) bool {
	return m == filemode.Regular || m == filemode.Executable || m == filemode.Deprecated
}

// work verifies and judges one file; the last file of a unit judges the
// whole directory.
func (w *walker) work(j job) {
	f := j.file
	if j.need {
		data, err := w.st.Snap.Blob(f.blob)
		if err != nil {
			// Evaluate fails; this directory is neither judged nor cached.
			w.fail(fmt.Errorf("reading %s: %w", f.path, err))
			return
		}
		sig, verr := sigstore.Verify(data, w.ev.Keys)
		f.setOutcome(sig, verr)
		w.verified.Add(1)
	}
	v := sigstore.JudgeVerified(f.loc, w.st.Policy.Repository(j.unit.name), f.sig, f.verifyError())
	f.kind, f.msg = v.Problem, v.Message
	if j.unit.pending.Add(-1) == 0 {
		w.judgeUnit(j.unit)
	}
}

// judgeUnit adds the directory-level problems (gaps, poisoning, duplicate
// signers) and hands the judged directory to the cache.
func (w *walker) judgeUnit(u *unitWork) {
	verdicts := make([]sigstore.Verdict, 0, len(u.memo.files))
	for i := range u.memo.files {
		if f := &u.memo.files[i]; f.judge {
			f.judge = false
			verdicts = append(verdicts, f.verdict())
		}
	}
	// Signature numbers are unique within a directory: they take the
	// directory's verdicts back to their files. These verdicts leave out
	// the lifetimes, which depend on the time: judgeLifetimes judges a
	// directory again when a lifetime changes what counts in it.
	judgeDirectory(u.memo.files, verdicts)
	w.sec.storeUnit(u.path, u.memo)
}

// judgeDirectory applies sigstore.JudgeDirectory to the verdicts of the
// judged files of one directory and writes the results back to them, by
// signature number (unique within a directory).
func judgeDirectory(files []memoFile, verdicts []sigstore.Verdict) []sigstore.Verdict {
	at := make(map[int]int, len(files))
	for i := range files {
		if f := &files[i]; f.kind != sigstore.KindMalformedPath {
			at[f.loc.Number] = i
		}
	}
	out := sigstore.JudgeDirectory(verdicts)
	for _, v := range out {
		if i, ok := at[v.Location.Number]; ok && v.Problem != sigstore.KindMalformedPath {
			files[i].kind, files[i].msg = v.Problem, v.Message
		}
	}
	return out
}

// files flattens the walk into JudgedFiles, in path order, in parallel
// over contiguous runs of units.
func (w *walker) files() []JudgedFile {
	starts := make([]int, len(w.items)+1) // of each unit's files in out
	for i, u := range w.items {
		starts[i+1] = starts[i] + len(u.memo.files)
	}
	out := make([]JudgedFile, starts[len(w.items)])
	// Part p takes the units from cuts[p] on: those whose files start in
	// its share of out.
	parts := min(runtime.GOMAXPROCS(0), 1+len(out)/2048)
	cuts := make([]int, parts+1)
	for p := range parts {
		cuts[p], _ = slices.BinarySearch(starts[:len(w.items)], len(out)*p/parts)
	}
	cuts[parts] = len(w.items)
	sorted := make([]bool, parts)
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := cuts[p], cuts[p+1]
		wg.Go(func() { sorted[p] = w.flatten(w.items[lo:hi], out[starts[lo]:starts[hi]]) })
	}
	wg.Wait()
	ok := !slices.Contains(sorted, false)
	for _, c := range cuts[1:parts] { // and in order across the parts
		i := starts[c]
		ok = ok && (i == 0 || i == len(out) || out[i-1].Path < out[i].Path)
	}
	if !ok {
		slices.SortStableFunc(out, func(a, b JudgedFile) int { return strings.Compare(a.Path, b.Path) })
	}
	return out
}

// flatten fills out with the files of units and reports whether their
// paths are in strictly increasing order.
func (w *walker) flatten(units []*unitWork, out []JudgedFile) (sorted bool) {
	prefix := w.st.Policy.Namespace + "/"
	sorted = true
	prev := ""
	i := 0
	for _, u := range units {
		name, repo := "", ""
		for j := range u.memo.files {
			f := &u.memo.files[j]
			// Git's tree order is the byte order of full paths, so this holds
			// for every well-formed tree; the files of a unit share its path
			// as a prefix, so only what follows it needs comparing.
			if j > 0 && strings.HasPrefix(prev, u.path) && strings.HasPrefix(f.path, u.path) {
				sorted = sorted && prev[len(u.path):] < f.path[len(u.path):]
			} else {
				sorted = sorted && (i == 0 || prev < f.path)
			}
			prev = f.path
			jf := &out[i]
			i++
			jf.Path, jf.Blob, jf.Verdict, jf.memo = f.path, f.blob, f.verdict(), f
			if f.kind == sigstore.KindMalformedPath {
				continue
			}
			if f.loc.Repository != repo {
				repo, name = f.loc.Repository, strings.TrimPrefix(f.loc.Repository, prefix)
			}
			jf.Name = name
		}
	}
	return sorted
}

// judgeLifetimes completes sigstore's judgement of every file with the
// lifetimes: a signature counts when its own expiry has not passed and its
// key was valid when the file entered the history. Only the directories
// where a lifetime rules a file out are judged again (JudgeVerified,
// JudgeLifetime, JudgeDirectory over their files, so that such a file never
// takes its key's slot); when the files entered is worked out only for
// keys that are not valid now.
func (ev *Evaluation) judgeLifetimes(st *policy.State, sec *cacheSection) {
	now := sigstore.Times{Now: ev.Now}
	validNow := map[string]bool{}
	subkeyClients := map[string]string{}
	// mayCount: a good signature before the directory rules.
	mayCount := func(f *JudgedFile) bool {
		if f.memo == nil || f.memo.vkind != "" {
			return false
		}
		switch f.Verdict.Problem {
		case "", sigstore.KindDuplicateSigner, sigstore.KindGap, sigstore.KindPoisoned:
			return true
		}
		return false
	}
	type span struct{ lo, hi int }
	var dirty []span
	var late []int
	for lo := 0; lo < len(ev.Files); {
		hi := lo + 1
		if ev.Files[lo].Name != "" {
			for hi < len(ev.Files) && ev.Files[hi].Name == ev.Files[lo].Name && ev.Files[hi].Verdict.Location.Digest == ev.Files[lo].Verdict.Location.Digest {
				hi++
			}
		}
		again := false
		for i := lo; i < hi; i++ {
			f := &ev.Files[i]
			if !mayCount(f) {
				continue
			}
			sig := f.Verdict.Signature
			if !sig.Expires.IsZero() && !ev.Now.Before(sig.Expires) {
				again = true
				continue
			}
			ok, seen := validNow[sig.Issuer]
			if !seen {
				ok, _ = ev.Keys.ValidAt(sig.Issuer, ev.Now)
				validNow[sig.Issuer] = ok
			}
			if !ok {
				again = true
				late = append(late, i)
			} else if f.Verdict.OK() && sig.Subkey {
				// The clients' view of a good subkey signature depends on the
				// issuer alone here: worked out once per issuer.
				c, seen := subkeyClients[sig.Issuer]
				if !seen {
					c = sigstore.JudgeLifetime(f.Verdict, ev.Keys, now).Clients
					subkeyClients[sig.Issuer] = c
				}
				f.Verdict.Clients = c
			}
		}
		if again {
			dirty = append(dirty, span{lo, hi})
		}
		lo = hi
	}
	var entered map[string]time.Time
	var enteredErr error
	if len(late) > 0 {
		want := make(map[string]plumbing.Hash, len(late))
		for _, i := range late {
			want[ev.Files[i].Path] = ev.Files[i].Blob
		}
		entered, enteredErr = sec.enteredTimes(st, want)
	}
	for _, d := range dirty {
		files := ev.Files[d.lo:d.hi]
		var verdicts []sigstore.Verdict
		at := map[int]int{}
		for i := range files {
			f := &files[i]
			if f.memo == nil || f.Verdict.Problem == sigstore.KindMalformedPath {
				continue
			}
			m := f.memo
			v := sigstore.JudgeVerified(m.loc, st.Policy.Repository(f.Name), m.sig, m.verifyError())
			t := now
			if when, ok := entered[f.Path]; ok {
				t.Entered, f.Entered = when, when
			}
			v = sigstore.JudgeLifetime(v, ev.Keys, t)
			if v.Problem == sigstore.KindKeyNotValid && t.Entered.IsZero() {
				why := "it is not in the history"
				if enteredErr != nil {
					why = enteredErr.Error()
				}
				v.Message = fmt.Sprintf("key %s is not valid now, and when the signature entered the repository is unknown (%s)", v.Signature.Issuer, why)
			}
			at[v.Location.Number] = i
			verdicts = append(verdicts, v)
		}
		for _, v := range sigstore.JudgeDirectory(verdicts) {
			if i, ok := at[v.Location.Number]; ok {
				files[i].Verdict = v
			}
		}
	}
	for i := range ev.Files {
		f := &ev.Files[i]
		f.Counts, f.Reason = f.Verdict.OK(), ""
		switch f.Verdict.Problem {
		case "":
		case sigstore.KindKeyNotValid, sigstore.KindSignatureExpired:
			f.Reason = f.Verdict.Message
		default:
			f.Reason = string(f.Verdict.Problem) + ": " + f.Verdict.Message
		}
	}
}

// enteredTimes finds, for each path, when the blob it holds at st.Tip
// first entered the history of st.Tip: the minimum, over the commits that
// hold that blob at that path while none of their parents does, of the
// commit's effective time (its committer time raised to its parents'
// effective times). Only the namespace subtree is compared, and only the
// subtrees that changed, so the cost follows the size of the history's
// changes.
func enteredTimes(st *policy.State, want map[string]plumbing.Hash) (map[string]time.Time, error) {
	commits, err := st.Repo.CommitsBetween(plumbing.ZeroHash, st.Tip)
	if err != nil {
		return nil, fmt.Errorf("reading history: %w", err)
	}
	ns := st.Policy.Namespace
	eff := make(map[plumbing.Hash]time.Time, len(commits))
	nsTree := make(map[plumbing.Hash]plumbing.Hash, len(commits))
	treeOf := func(c *gitstore.CommitInfo) (plumbing.Hash, error) {
		snap, err := st.Repo.Snapshot(c.Hash)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		e, err := snap.Stat(ns)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && !e.IsDir()) {
			return plumbing.ZeroHash, nil
		}
		return e.Hash, err
	}
	holds := func(parent plumbing.Hash, rel string, blob plumbing.Hash) bool {
		snap, err := st.Repo.Snapshot(parent)
		if err != nil {
			return false
		}
		e, err := snap.Stat(ns + "/" + rel)
		return err == nil && e.Hash == blob
	}
	out := map[string]time.Time{}
	for _, c := range commits {
		t := c.Committer.When
		for _, p := range c.Parents {
			if pt := eff[p]; pt.After(t) {
				t = pt
			}
		}
		eff[c.Hash] = t
		tree, err := treeOf(c)
		if err != nil {
			return nil, fmt.Errorf("reading history: %w", err)
		}
		nsTree[c.Hash] = tree
		var base plumbing.Hash
		if len(c.Parents) > 0 {
			base = nsTree[c.Parents[0]]
		}
		changes, err := st.Repo.Diff(base, tree)
		if err != nil {
			return nil, fmt.Errorf("reading history: %w", err)
		}
		for _, d := range changes {
			path := ns + "/" + d.Path
			blob, ok := want[path]
			if !ok || d.NewHash != blob {
				continue
			}
			if slices.ContainsFunc(c.Parents[min(1, len(c.Parents)):], func(p plumbing.Hash) bool { return holds(p, d.Path, blob) }) {
				continue // it came from another parent, which the walk saw first
			}
			if old, seen := out[path]; !seen || t.Before(old) {
				out[path] = t
			}
		}
	}
	return out, nil
}

// recordFileName matches the file name of a build record:
// <FINGERPRINT>.txt with an uppercase 40-hex fingerprint.
var recordFileName = regexp.MustCompile(`^[0-9A-F]{40}\.txt$`)

// readRecords reads the build records in scope: every release, or one.
func readRecords(snap *gitstore.Snapshot, scope Scope, sec *cacheSection) (map[string]map[string]record.BuildRecord, []Problem) {
	records := map[string]map[string]record.BuildRecord{}
	var problems []Problem
	dir := policy.BuildsDir
	if scope.Release != "" {
		dir = policy.BuildsDir + "/" + scope.Release
	}
	bad := func(path, msg string) {
		problems = append(problems, Problem{Path: path, Kind: KindBadRecord, Severity: string(sigstore.SeverityWarning), Error: msg})
	}
	err := snap.Walk(dir, func(p string, e gitstore.Entry) error {
		parts := strings.Split(p, "/")
		if e.IsDir() {
			if len(parts) == 2 && policy.CheckReleaseName(parts[1]) == nil {
				return nil
			}
			bad(p+"/", "not a release directory of build records (builds/<release>/<FINGERPRINT>.txt)")
			return fs.SkipDir
		}
		if len(parts) != 3 || !recordFileName.MatchString(parts[2]) || !IsRegular(e.Mode) {
			bad(p, "not a build record (builds/<release>/<FINGERPRINT>.txt)")
			return nil
		}
		rec, err := sec.record(snap, e.Hash)
		if err != nil {
			bad(p, err.Error())
			return nil
		}
		if records[parts[1]] == nil {
			records[parts[1]] = map[string]record.BuildRecord{}
		}
		records[parts[1]][strings.TrimSuffix(parts[2], ".txt")] = rec
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		bad(dir, err.Error())
	}
	return records, problems
}

// Releases lists the releases that have build records, sorted.
func (ev *Evaluation) Releases() []string {
	out := make([]string, 0, len(ev.Records))
	for r := range ev.Records {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

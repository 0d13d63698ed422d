package quorum

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// cacheMagic and cacheVersion open every cache file. cacheVersion changes
// whenever the meaning of a cached judgement changes (a new sigstore rule,
// a new field), so that results of an older tally are never reused.
const (
	cacheMagic   = "tally verification cache\n"
	cacheVersion = 2 // 2: legacy payloads keep their claimed digest and reference (location checks)
)

// maxCacheFiles is how many cache files (one per keyring) a git directory
// keeps; the least recently written go first.
const maxCacheFiles = 4

// codeStamp identifies the code that judged what a cache holds: the VCS
// revision tally was built from, and for a build with local modifications
// also the executable's size and time. A cache written by other code is
// not read, so a new judgement rule never meets an old verdict.
var codeStamp = sync.OnceValue(func() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	stamp := info.Main.Version + " " + rev
	if modified == "true" {
		if exe, err := os.Executable(); err == nil {
			if fi, err := os.Stat(exe); err == nil {
				stamp += fmt.Sprintf(" modified %d %d", fi.Size(), fi.ModTime().UnixNano())
			}
		}
	}
	return stamp
})

// VerifyCache remembers, for one keyring, what Evaluate learned: the
// outcome of sigstore.Verify for every blob (git blobs are immutable, so a
// blob verified once under the same keys needs no second check), the judged
// files of every signature directory by its tree id (an unchanged directory
// needs no work at all), the parsed build records by blob id, and when the
// files of revoked or expired keys entered the history of the last commit
// judged. It lives in the git directory (<git dir>/tally/, one file per
// keyring), never in the tree; a repository without a git directory (in
// memory) gets a cache that lives as long as the VerifyCache. A nil
// *VerifyCache remembers nothing. It is safe for concurrent use; Evaluate
// calls sharing one cache run one at a time.
type VerifyCache struct {
	path string // "" in memory
	sec  *cacheSection
}

// OpenVerifyCache returns the verification cache of repo for keys, the
// trust root Evaluate will use: Evaluate with another keyring does not use
// it. A cache file that cannot be read is ignored and rebuilt.
func OpenVerifyCache(repo *gitstore.Repo, keys *sigstore.Keyring) *VerifyCache {
	c := &VerifyCache{sec: newSection(keys.ID(), policy.Policy{})}
	if repo.GitDir() != "" {
		c.path = filepath.Join(repo.GitDir(), "tally", c.sec.fileName())
		c.sec.load(c.path)
	}
	return c
}

// Save writes what the cache learned since it was opened or last saved,
// replacing the file atomically. Without a git directory it does nothing.
func (c *VerifyCache) Save() error {
	if c == nil || c.path == "" {
		return nil
	}
	if err := c.sec.save(c.path); err != nil {
		return fmt.Errorf("saving the verification cache: %w", err)
	}
	return nil
}

// section starts a run with keyring and policy p and returns the part of
// the cache it uses; done ends the run. A nil cache, or one for another
// keyring, gives a fresh section that is thrown away.
func (c *VerifyCache) section(keyring string, p policy.Policy) *cacheSection {
	s := newSection(keyring, p)
	if c != nil && c.sec.keyring == keyring {
		s = c.sec
	}
	s.running.Lock()
	s.begin(p)
	return s
}

// cacheSection is what the cache knows under one keyring.
type cacheSection struct {
	running sync.Mutex // held from section to done: one run at a time
	mu      sync.Mutex
	keyring string
	// namespace and prefix are the policy the units were judged under: a
	// different identity prefix changes every verdict.
	namespace, prefix string
	units             map[string]*unitMemo // by directory path
	records           map[plumbing.Hash]recordMemo
	enteredTip        plumbing.Hash
	entered           map[string]time.Time
	// nsTree is the namespace tree of the last whole-repository run and
	// nsUnits its units in tree order.
	nsTree  plumbing.Hash
	nsUnits []string
	dirty   bool

	// For the run in progress.
	blobs          map[plumbing.Hash]*memoFile // Verify outcomes by blob, built on first need
	visited        map[string]bool
	visitedRecords map[plumbing.Hash]bool
}

// unitMemo is one judged signature directory.
type unitMemo struct {
	tree  plumbing.Hash
	files []memoFile
}

// memoFile is one judged file: the outcome of Verify on its blob and the
// final verdict after the directory-level judgement.
type memoFile struct {
	path string
	blob plumbing.Hash
	mode filemode.FileMode
	// The outcome of sigstore.Verify.
	sig   sigstore.Signature
	vkind sigstore.Kind
	vmsg  string
	// The verdict.
	loc  sigstore.Location
	kind sigstore.Kind
	msg  string
	// judge is set while the file awaits JudgeVerified (never cached).
	judge bool
}

func (f *memoFile) setOutcome(sig sigstore.Signature, err error) {
	f.sig, f.vkind, f.vmsg = sig, "", ""
	if err == nil {
		return
	}
	var p *sigstore.Problem
	if errors.As(err, &p) && p.Kind != "" {
		f.vkind, f.vmsg = p.Kind, p.Message
		return
	}
	f.vkind, f.vmsg = sigstore.KindMalformed, err.Error()
}

func (f *memoFile) verifyError() error {
	if f.vkind == "" {
		return nil
	}
	return &sigstore.Problem{Kind: f.vkind, Message: f.vmsg}
}

func (f *memoFile) verdict() sigstore.Verdict {
	return sigstore.Verdict{Location: f.loc, Signature: f.sig, Problem: f.kind, Severity: f.kind.Severity(), Message: f.msg}
}

// recordMemo is a parsed build record, or why it did not parse.
type recordMemo struct {
	rec record.BuildRecord
	err string
}

func newSection(keyring string, p policy.Policy) *cacheSection {
	return &cacheSection{keyring: keyring, namespace: p.Namespace, prefix: p.Prefix(),
		units: map[string]*unitMemo{}, records: map[plumbing.Hash]recordMemo{}}
}

func (s *cacheSection) fileName() string {
	id := s.keyring
	if len(id) > 32 {
		id = id[:32]
	}
	return "verify-" + id + ".cache"
}

// begin starts a run under policy p: units judged under another namespace
// or identity prefix are forgotten (their Verify outcomes stay usable).
func (s *cacheSection) begin(p policy.Policy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Namespace != s.namespace || p.Prefix() != s.prefix {
		s.buildBlobIndex()
		s.namespace, s.prefix = p.Namespace, p.Prefix()
		s.units = map[string]*unitMemo{}
		s.nsTree, s.nsUnits = plumbing.ZeroHash, nil
		s.dirty = true
	}
	s.visited = map[string]bool{}
	s.visitedRecords = map[plumbing.Hash]bool{}
}

// done ends a run. After a run over the whole repository, directories and
// records it did not visit are forgotten, so the cache follows the
// repository instead of growing with its history.
func (s *cacheSection) done(whole bool) {
	defer s.running.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if whole {
		for p := range s.units {
			if !s.visited[p] {
				delete(s.units, p)
				s.dirty = true
			}
		}
		for b := range s.records {
			if !s.visitedRecords[b] {
				delete(s.records, b)
				s.dirty = true
			}
		}
	}
	s.blobs = nil
	s.visited = nil
	s.visitedRecords = nil
}

// unit returns the judged directory at path when its tree is tree.
func (s *cacheSection) unit(path string, tree plumbing.Hash) *unitMemo {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.visited[path] = true
	if m := s.units[path]; m != nil && m.tree == tree {
		return m
	}
	return nil
}

// namedUnit is a unit with its path.
type namedUnit struct {
	path string
	memo *unitMemo
}

// tree returns the units of the namespace tree ns, in tree order, when the
// cache knows them all.
func (s *cacheSection) tree(ns plumbing.Hash) []namedUnit {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ns != s.nsTree || s.nsUnits == nil {
		return nil
	}
	out := make([]namedUnit, len(s.nsUnits))
	for i, p := range s.nsUnits {
		m := s.units[p]
		if m == nil {
			return nil
		}
		out[i] = namedUnit{p, m}
	}
	for _, p := range s.nsUnits {
		s.visited[p] = true
	}
	return out
}

// setTree remembers the units of the namespace tree ns.
func (s *cacheSection) setTree(ns plumbing.Hash, units []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ns != s.nsTree || len(units) != len(s.nsUnits) {
		s.dirty = true
	}
	s.nsTree, s.nsUnits = ns, units
}

// storeUnit remembers a judged directory.
func (s *cacheSection) storeUnit(path string, m *unitMemo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.units[path] = m
	s.dirty = true
}

// outcome fills f's Verify outcome from a file with the same blob that the
// cache knows, and reports whether it could.
func (s *cacheSection) outcome(f *memoFile) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buildBlobIndex()
	if known := s.blobs[f.blob]; known != nil {
		f.sig, f.vkind, f.vmsg = known.sig, known.vkind, known.vmsg
		return true
	}
	return false
}

func (s *cacheSection) buildBlobIndex() {
	if s.blobs != nil {
		return
	}
	s.blobs = map[plumbing.Hash]*memoFile{}
	for _, u := range s.units {
		for i := range u.files {
			if f := &u.files[i]; f.kind != sigstore.KindMalformedPath {
				s.blobs[f.blob] = f
			}
		}
	}
}

// record returns the parsed build record in blob.
func (s *cacheSection) record(snap *gitstore.Snapshot, blob plumbing.Hash) (record.BuildRecord, error) {
	s.mu.Lock()
	m, ok := s.records[blob]
	s.visitedRecords[blob] = true
	s.mu.Unlock()
	if !ok {
		data, err := snap.Blob(blob)
		if err != nil {
			return record.BuildRecord{}, err // not remembered: it may be readable next time
		}
		rec, err := record.ParseBuildRecord(data)
		m = recordMemo{rec: rec}
		if err != nil {
			m = recordMemo{err: err.Error()}
		}
		s.mu.Lock()
		s.records[blob] = m
		s.dirty = true
		s.mu.Unlock()
	}
	if m.err != "" {
		return record.BuildRecord{}, errors.New(m.err)
	}
	return m.rec, nil
}

// enteredTimes is enteredTimes(st, want), remembered for the last commit.
func (s *cacheSection) enteredTimes(st *policy.State, want map[string]plumbing.Hash) (map[string]time.Time, error) {
	s.mu.Lock()
	if s.enteredTip == st.Tip {
		out := make(map[string]time.Time, len(want))
		for p := range want {
			t, ok := s.entered[p]
			if !ok {
				out = nil
				break
			}
			out[p] = t
		}
		if out != nil {
			s.mu.Unlock()
			return out, nil
		}
	}
	s.mu.Unlock()
	out, err := enteredTimes(st, want)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.enteredTip, s.entered, s.dirty = st.Tip, out, true
	s.mu.Unlock()
	return out, nil
}

// The file format: cacheMagic, then uvarint fields; strings are interned
// (an index into the strings seen so far, or 0 followed by a new string);
// the last 4 bytes are the CRC-32C of everything before them.

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func (s *cacheSection) save(path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty {
		return nil
	}
	data := s.encode()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".verify-*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	s.dirty = false
	pruneCacheFiles(filepath.Dir(path))
	return nil
}

// pruneCacheFiles keeps the maxCacheFiles most recently written cache files
// of dir: a keyring that changed leaves its old file behind.
func pruneCacheFiles(dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "verify-*.cache"))
	if len(files) <= maxCacheFiles {
		return
	}
	mtime := map[string]time.Time{}
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			mtime[f] = fi.ModTime()
		}
	}
	slices.SortFunc(files, func(a, b string) int { return mtime[b].Compare(mtime[a]) })
	for _, f := range files[maxCacheFiles:] {
		os.Remove(f)
	}
}

// encode serialises the section; s.mu must be held.
func (s *cacheSection) encode() []byte {
	// Size the buffer and the string table up front: the file is
	// megabytes, and growing it step by step would copy it many times.
	size, strs := 1024, 64
	for _, u := range s.units {
		size += 64 + 256*len(u.files)
		strs += 1 + 2*len(u.files)
	}
	for _, r := range s.records {
		size += 64 + 128*len(r.rec.Built)
		strs += len(r.rec.Built)
	}
	e := encoder{buf: make([]byte, 0, size), strs: make(map[string]uint64, strs)}
	e.buf = append(e.buf, cacheMagic...)
	e.uint(cacheVersion)
	e.str(codeStamp())
	e.str(s.keyring)
	e.str(s.namespace)
	e.str(s.prefix)
	e.uint(uint64(len(s.units)))
	for path, u := range s.units {
		e.str(path) // interned: nsUnits refers to it
		e.hash(u.tree)
		e.uint(uint64(len(u.files)))
		for i := range u.files {
			e.file(&u.files[i])
		}
	}
	e.uint(uint64(len(s.records)))
	for blob, r := range s.records {
		e.hash(blob)
		e.str(r.err)
		e.record(&r.rec)
	}
	e.hash(s.enteredTip)
	e.uint(uint64(len(s.entered)))
	for p, t := range s.entered {
		e.unique(p)
		e.time(t)
	}
	e.hash(s.nsTree)
	e.uint(uint64(len(s.nsUnits)))
	for _, p := range s.nsUnits {
		e.str(p) // written before, as a unit's path: an index
	}
	return binary.BigEndian.AppendUint32(e.buf, crc32.Checksum(e.buf, crcTable))
}

// load reads a cache file; anything unreadable leaves the section empty.
func (s *cacheSection) load(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	fresh := newSection(s.keyring, policy.Policy{})
	if err := fresh.decode(data); err != nil {
		return
	}
	s.namespace, s.prefix = fresh.namespace, fresh.prefix
	s.units, s.records = fresh.units, fresh.records
	s.enteredTip, s.entered = fresh.enteredTip, fresh.entered
	s.nsTree, s.nsUnits = fresh.nsTree, fresh.nsUnits
}

func (s *cacheSection) decode(data []byte) error {
	if len(data) < len(cacheMagic)+4 || string(data[:len(cacheMagic)]) != cacheMagic {
		return errors.New("not a cache file")
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(data[len(data)-4:]) {
		return errors.New("checksum mismatch")
	}
	return s.decodeBody(string(body[len(cacheMagic):]))
}

// decodeBody decodes what follows the magic. One string holds every
// string the cache decodes: they are substrings of it, not copies.
func (s *cacheSection) decodeBody(body string) error {
	d := decoder{s: body}
	if d.uint() != cacheVersion || d.str() != codeStamp() || d.str() != s.keyring {
		return errors.New("another version or keyring")
	}
	s.namespace, s.prefix = d.str(), d.str()
	n := d.countOf(22)
	s.units = make(map[string]*unitMemo, n)
	for range n {
		path := d.str()
		u := &unitMemo{tree: d.hash()}
		u.files = make([]memoFile, d.countOf(38))
		for i := range u.files {
			d.file(&u.files[i])
		}
		s.units[path] = u
	}
	n = d.countOf(22)
	s.records = make(map[plumbing.Hash]recordMemo, n)
	for range n {
		blob := d.hash()
		r := recordMemo{err: d.str()}
		d.record(&r.rec)
		s.records[blob] = r
	}
	s.enteredTip = d.hash()
	n = d.countOf(2)
	s.entered = make(map[string]time.Time, n)
	for range n {
		p := d.str()
		s.entered[p] = d.time()
	}
	s.nsTree = d.hash()
	if n = d.count(); n > 0 {
		s.nsUnits = make([]string, n)
		for i := range s.nsUnits {
			s.nsUnits[i] = d.str()
		}
	}
	if d.err == nil && d.pos != len(d.s) {
		d.err = errors.New("trailing data")
	}
	return d.err
}

type encoder struct {
	buf  []byte
	strs map[string]uint64 // interned strings by index
	n    uint64            // strings written inline so far
}

func (e *encoder) uint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) int(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) hash(h plumbing.Hash) {
	e.buf = append(e.buf, h[:]...)
}

// str writes s, or its index when it was written before.
func (e *encoder) str(s string) {
	if i, ok := e.strs[s]; ok {
		e.uint(i + 1)
		return
	}
	e.strs[s] = e.n
	e.unique(s)
}

// unique writes s inline without remembering it: for strings that do not
// repeat, such as file paths. The decoder still numbers it.
func (e *encoder) unique(s string) {
	e.n++
	e.uint(0)
	e.uint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) bool(b bool) {
	if b {
		e.uint(1)
	} else {
		e.uint(0)
	}
}

// time encodes whole seconds; the zero time is its own value.
func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.uint(0)
		return
	}
	e.uint(1)
	e.int(t.Unix())
}

func (e *encoder) file(f *memoFile) {
	e.unique(f.path)
	e.hash(f.blob)
	e.uint(uint64(f.mode))
	e.str(f.sig.Payload.Reference)
	e.str(f.sig.Payload.Digest)
	e.str(f.sig.Payload.Creator)
	e.int(f.sig.Payload.Timestamp)
	e.str(f.sig.Signer)
	e.bool(f.sig.Subkey)
	e.str(f.sig.Issuer)
	e.time(f.sig.Created)
	e.time(f.sig.Expires)
	e.str(string(f.vkind))
	e.str(f.vmsg)
	e.str(f.loc.Repository)
	e.str(f.loc.Digest)
	e.uint(uint64(f.loc.Number))
	e.str(string(f.kind))
	e.str(f.msg)
}

func (e *encoder) record(r *record.BuildRecord) {
	e.uint(uint64(len(r.Runs)))
	for _, run := range r.Runs {
		e.time(run.Time)
		e.str(run.Source)
		e.str(run.Dirty)
		e.str(run.Platform)
		e.str(run.CPUVendor)
		e.str(run.CPUModel)
		e.str(run.Tally)
	}
	e.uint(uint64(len(r.Built)))
	for _, b := range r.Built {
		e.str(b.Name)
		e.str(b.Tag)
		e.str(b.Platform)
		e.str(b.Digest)
		e.uint(uint64(b.Run))
	}
}

type decoder struct {
	s    string
	pos  int
	strs []string
	err  error
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New(msg)
	}
	d.pos = len(d.s)
}

func (d *decoder) uint() uint64 {
	var v uint64
	for shift := 0; shift < 64; shift += 7 {
		if d.pos >= len(d.s) {
			d.fail("truncated")
			return 0
		}
		b := d.s[d.pos]
		d.pos++
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v
		}
	}
	d.fail("bad varint")
	return 0
}

func (d *decoder) int() int64 {
	u := d.uint()
	return int64(u>>1) ^ -int64(u&1)
}

// count reads a length, bounded by what is left to read.
func (d *decoder) count() int { return d.countOf(1) }

// countOf reads the number of items that take at least size bytes each,
// bounded by what is left to read, so that a damaged file cannot make the
// decoder allocate more than a small multiple of its size.
func (d *decoder) countOf(size int) int {
	n := d.uint()
	if n > uint64((len(d.s)-d.pos)/size) {
		d.fail("bad count")
		return 0
	}
	return int(n)
}

func (d *decoder) hash() plumbing.Hash {
	var h plumbing.Hash
	if len(d.s)-d.pos < len(h) {
		d.fail("truncated")
		return h
	}
	copy(h[:], d.s[d.pos:])
	d.pos += len(h)
	return h
}

func (d *decoder) str() string {
	i := d.uint()
	if i > 0 {
		if i > uint64(len(d.strs)) {
			d.fail("bad string index")
			return ""
		}
		return d.strs[i-1]
	}
	n := d.count()
	s := d.s[d.pos : d.pos+n]
	d.pos += n
	if d.err == nil {
		d.strs = append(d.strs, s)
	}
	return s
}

func (d *decoder) bool() bool { return d.uint() != 0 }

func (d *decoder) time() time.Time {
	if d.uint() == 0 {
		return time.Time{}
	}
	return time.Unix(d.int(), 0).UTC()
}

func (d *decoder) file(f *memoFile) {
	f.path = d.str()
	f.blob = d.hash()
	f.mode = filemode.FileMode(d.uint())
	f.sig.Payload.Reference = d.str()
	f.sig.Payload.Digest = d.str()
	f.sig.Payload.Creator = d.str()
	f.sig.Payload.Timestamp = d.int()
	f.sig.Signer = d.str()
	f.sig.Subkey = d.bool()
	f.sig.Issuer = d.str()
	f.sig.Created = d.time()
	f.sig.Expires = d.time()
	f.vkind = sigstore.Kind(d.str())
	f.vmsg = d.str()
	f.loc.Repository = d.str()
	f.loc.Digest = d.str()
	f.loc.Number = int(d.uint())
	f.kind = sigstore.Kind(d.str())
	f.msg = d.str()
}

func (d *decoder) record(r *record.BuildRecord) {
	if n := d.countOf(7); n > 0 {
		r.Runs = make([]record.Run, n)
		for i := range r.Runs {
			run := &r.Runs[i]
			run.Time = d.time()
			run.Source, run.Dirty, run.Platform = d.str(), d.str(), d.str()
			run.CPUVendor, run.CPUModel, run.Tally = d.str(), d.str(), d.str()
		}
	}
	if n := d.countOf(5); n > 0 {
		r.Built = make([]record.Built, n)
		for i := range r.Built {
			b := &r.Built[i]
			b.Name, b.Tag, b.Platform, b.Digest = d.str(), d.str(), d.str(), d.str()
			b.Run = int(d.uint())
		}
	}
}

package hooks

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// t0 is the time of the first fixture commit: after the test keys were made.
var t0 = time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)

var (
	signersMu sync.Mutex
	signers   = map[string]*sigstore.KeySigner{}
)

// signer returns the KeySigner of a fixture key, parsed once.
func signer(t testing.TB, name string) *sigstore.KeySigner {
	t.Helper()
	signersMu.Lock()
	defer signersMu.Unlock()
	if s, ok := signers[name]; ok {
		return s
	}
	s, err := sigstore.NewKeySigner(testkeys.Secret(name), func() ([]byte, error) { return []byte(testkeys.Passphrase), nil })
	if err != nil {
		t.Fatal(err)
	}
	signers[name] = s
	return s
}

// keyringOf is the binary keyring of the named fixture keys.
func keyringOf(t testing.TB, names ...string) []byte {
	t.Helper()
	var all []byte
	for _, n := range names {
		all = append(all, testkeys.Public(n)...)
		all = append(all, '\n')
	}
	kr, err := sigstore.ReadKeyring(all)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := kr.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// digest returns a made-up manifest digest for a seed.
func digest(seed string) string {
	h := sha256.Sum256([]byte(seed))
	return "sha256:" + hex.EncodeToString(h[:])
}

// sigPath is the lookaside path of signature n of image name at d.
func sigPath(name, d string, n int) string {
	return sigstore.Location{Repository: "stagex/" + name, Digest: d, Number: n}.Path()
}

// edit is one change of a fixture commit.
type edit struct {
	path   string
	data   []byte
	mode   filemode.FileMode // Regular when zero
	delete bool
	hash   plumbing.Hash // for submodules: the commit
}

func add(p string, data []byte) edit { return edit{path: p, data: data} }
func del(p string) edit              { return edit{path: p, delete: true} }
func withMode(p string, data []byte, m filemode.FileMode) edit {
	return edit{path: p, data: data, mode: m}
}

// world is an on-disk bare repository whose commits the tests craft object
// by object with go-git, so that any tree (links, submodules, modes) and
// any signature can be made.
type world struct {
	t     testing.TB
	dir   string
	git   *git.Repository
	clock time.Time
	// signLate, when set, makes commit signatures this long after the
	// committer time, as a slow signer (a smart card) or another clock does.
	signLate time.Duration
}

func newWorld(t testing.TB) *world {
	t.Helper()
	dir := t.TempDir()
	r, err := git.PlainInit(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, "refs/heads/main")); err != nil {
		t.Fatal(err)
	}
	return &world{t: t, dir: dir, git: r, clock: t0}
}

// open opens the world with gitstore, as tally does.
func (w *world) open() *gitstore.Repo {
	w.t.Helper()
	r, err := gitstore.Open(w.dir)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { r.Close() })
	return r
}

// blob stores data and returns its id.
func (w *world) blob(data []byte) plumbing.Hash {
	w.t.Helper()
	o := w.git.Storer.NewEncodedObject()
	o.SetType(plumbing.BlobObject)
	wr, err := o.Writer()
	if err == nil {
		_, err = wr.Write(data)
	}
	if err == nil {
		err = wr.Close()
	}
	if err != nil {
		w.t.Fatal(err)
	}
	h, err := w.git.Storer.SetEncodedObject(o)
	if err != nil {
		w.t.Fatal(err)
	}
	return h
}

// tree applies edits to tree base (zero: empty) and returns the new tree.
func (w *world) tree(base plumbing.Hash, edits []edit) plumbing.Hash {
	w.t.Helper()
	var entries []object.TreeEntry
	if !base.IsZero() {
		t, err := object.GetTree(w.git.Storer, base)
		if err != nil {
			w.t.Fatal(err)
		}
		entries = append(entries, t.Entries...)
	}
	here := map[string]edit{}
	sub := map[string][]edit{}
	for _, e := range edits {
		first, rest, ok := strings.Cut(e.path, "/")
		if ok {
			e.path = rest
			sub[first] = append(sub[first], e)
		} else {
			here[first] = e
		}
	}
	find := func(name string) int {
		for i, e := range entries {
			if e.Name == name {
				return i
			}
		}
		return -1
	}
	for name, e := range here {
		i := find(name)
		if e.delete {
			if i < 0 {
				w.t.Fatalf("deleting %s: not there", name)
			}
			entries = append(entries[:i], entries[i+1:]...)
			continue
		}
		mode, h := e.mode, e.hash
		if mode == 0 {
			mode = filemode.Regular
		}
		if mode != filemode.Submodule {
			h = w.blob(e.data)
		}
		te := object.TreeEntry{Name: name, Mode: mode, Hash: h}
		if i >= 0 {
			entries[i] = te
		} else {
			entries = append(entries, te)
		}
	}
	for name, es := range sub {
		i := find(name)
		old := plumbing.ZeroHash
		if i >= 0 && entries[i].Mode == filemode.Dir {
			old = entries[i].Hash
		}
		h := w.tree(old, es)
		t, _ := object.GetTree(w.git.Storer, h)
		switch {
		case len(t.Entries) == 0 && i >= 0:
			entries = append(entries[:i], entries[i+1:]...)
		case len(t.Entries) == 0:
		case i >= 0:
			entries[i] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
		default:
			entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
		}
	}
	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i].Name, entries[j].Name
		if entries[i].Mode == filemode.Dir {
			a += "/"
		}
		if entries[j].Mode == filemode.Dir {
			b += "/"
		}
		return a < b
	})
	t := &object.Tree{Entries: entries}
	o := w.git.Storer.NewEncodedObject()
	if err := t.Encode(o); err != nil {
		w.t.Fatal(err)
	}
	h, err := w.git.Storer.SetEncodedObject(o)
	if err != nil {
		w.t.Fatal(err)
	}
	return h
}

// commit makes a commit on parents (the first one's tree edited), signed by
// the named fixture key ("" for unsigned), one minute after the last.
func (w *world) commit(by string, msg string, parents []plumbing.Hash, edits ...edit) plumbing.Hash {
	w.t.Helper()
	base := plumbing.ZeroHash
	if len(parents) > 0 && !parents[0].IsZero() {
		c, err := object.GetCommit(w.git.Storer, parents[0])
		if err != nil {
			w.t.Fatal(err)
		}
		base = c.TreeHash
	}
	w.clock = w.clock.Add(time.Minute)
	who := object.Signature{Name: "tally test", Email: "test@example.invalid", When: w.clock}
	c := &object.Commit{Author: who, Committer: who, Message: msg + "\n", TreeHash: w.tree(base, edits), ParentHashes: parents}
	if by != "" {
		o := w.git.Storer.NewEncodedObject()
		if err := c.EncodeWithoutSignature(o); err != nil {
			w.t.Fatal(err)
		}
		rd, err := o.Reader()
		var b bytes.Buffer
		if err == nil {
			_, err = b.ReadFrom(rd)
		}
		if err != nil {
			w.t.Fatal(err)
		}
		var sig []byte
		if w.signLate != 0 {
			sig, err = detachedAt(w.t, by, b.Bytes(), w.clock.Add(w.signLate))
		} else {
			sig, err = signer(w.t, by).SignDetached(b.Bytes())
		}
		if err != nil {
			w.t.Fatal(err)
		}
		c.PGPSignature = string(sig)
	}
	o := w.git.Storer.NewEncodedObject()
	if err := c.Encode(o); err != nil {
		w.t.Fatal(err)
	}
	h, err := w.git.Storer.SetEncodedObject(o)
	if err != nil {
		w.t.Fatal(err)
	}
	return h
}

// on is commit with one parent.
func (w *world) on(parent plumbing.Hash, by, msg string, edits ...edit) plumbing.Hash {
	return w.commit(by, msg, []plumbing.Hash{parent}, edits...)
}

// setRef points a reference at h.
func (w *world) setRef(name string, h plumbing.Hash) {
	w.t.Helper()
	if err := w.git.Storer.SetReference(plumbing.NewHashReference(plumbing.ReferenceName(name), h)); err != nil {
		w.t.Fatal(err)
	}
}

// signature makes a signature blob by key for name:tag at d.
func signature(t testing.TB, key, name, tag, d string) []byte {
	t.Helper()
	return signPayload(t, key, sigstore.Payload{Reference: "stagex/" + name + ":" + tag, Digest: d, Timestamp: t0.Unix()})
}

func signPayload(t testing.TB, key string, p sigstore.Payload) []byte {
	t.Helper()
	data, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	blob, err := signer(t, key).SignMessage(data)
	if err != nil {
		t.Fatal(err)
	}
	return blob
}

// policyFiles are tally.toml and the keyring for the named maintainers.
func policyFiles(t testing.TB, threshold int, names ...string) []edit {
	p := policy.Policy{Namespace: "stagex", IdentityPrefix: "stagex", Threshold: threshold, Keyring: "stagex-keyring.pgp"}
	return []edit{add(policy.PolicyFile, p.Marshal()), add(p.Keyring, keyringOf(t, names...))}
}

// recordFile is a build record of fpr listing digests of core-hello.
func recordFile(t testing.TB, prev []byte, fpr string, digests ...string) []byte {
	t.Helper()
	var rec record.BuildRecord
	if prev != nil {
		var err error
		if rec, err = record.ParseBuildRecord(prev); err != nil {
			t.Fatal(err)
		}
	}
	var built []record.Built
	for _, d := range digests {
		built = append(built, record.Built{Name: "core-hello", Tag: "1.0", Platform: "linux/amd64", Digest: d})
	}
	rec.Append(record.Run{Time: t0, Source: "unknown", Dirty: "unknown", Platform: "linux/amd64", CPUVendor: "x", CPUModel: "y", Tally: "test"}, built)
	return rec.Marshal()
}

// Fixture digests.
var (
	dHello = digest("core-hello 1.0")
	dMulti = digest("core-multi 2.0")
)

// fixture is the base every corpus case starts from: alice, bob and carol
// maintain stagex with threshold 2; alice signed core-hello and core-multi,
// bob signed core-hello.
type fixture struct {
	*world
	init, base plumbing.Hash
	record     []byte // alice's build record
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	w := newWorld(t)
	f := &fixture{world: w}
	f.init = w.commit("alice", "init", nil, policyFiles(t, 2, "alice", "bob", "carol")...)
	f.record = recordFile(t, nil, testkeys.Fingerprint("alice"), dHello)
	signed := w.on(f.init, "alice", "sign by alice",
		add(sigPath("core-hello", dHello, 1), signature(t, "alice", "core-hello", "1.0", dHello)),
		add(sigPath("core-multi", dMulti, 1), signature(t, "alice", "core-multi", "2.0", dMulti)),
		add(policy.BuildRecordPath("2026.11.0", testkeys.Fingerprint("alice")), f.record))
	f.base = w.on(signed, "bob", "sign by bob",
		add(sigPath("core-hello", dHello, 2), signature(t, "bob", "core-hello", "1.0", dHello)))
	w.setRef("refs/heads/main", f.base)
	return f
}

// now is the clock of checks in tests: a day after the fixture.
func now() time.Time { return t0.Add(24 * time.Hour) }

// check runs Check(old, new) on the fixture's repository.
func (w *world) check(old, nw plumbing.Hash) *Result {
	w.t.Helper()
	res, err := Check(w.open(), old, nw, Options{Now: now})
	if err != nil {
		w.t.Fatalf("Check: %v", err)
	}
	return res
}

// describe lists refusals for failure messages.
func describe(res *Result) string {
	var b strings.Builder
	for _, r := range res.Refusals {
		fmt.Fprintf(&b, "\n  [%s %s] %s", r.Rule, r.Kind, r)
	}
	if b.Len() == 0 {
		return " (none)"
	}
	return b.String()
}

// detachedAt makes an armored detached signature by a fixture key as if the
// clock said at.
func detachedAt(t testing.TB, name string, data []byte, at time.Time) ([]byte, error) {
	t.Helper()
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(testkeys.Secret(name)))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	cfg := &packet.Config{DefaultHash: crypto.SHA256, Time: func() time.Time { return at }}
	if err := openpgp.ArmoredDetachSign(&b, el[0], bytes.NewReader(data), cfg); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// filesOf returns edits that write every file of commit's tree as it is.
func (f *fixture) filesOf(commit plumbing.Hash, except ...string) []edit {
	f.t.Helper()
	snap, err := f.open().Snapshot(commit)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []edit
	err = snap.Walk("", func(p string, e gitstore.Entry) error {
		if e.IsDir() || slices.Contains(except, p) {
			return nil
		}
		data, err := snap.ReadFile(p)
		if err != nil {
			return err
		}
		out = append(out, add(p, data))
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

package release

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/quorum"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// The fixture of the verify benchmarks: a bare signatures repository, packed
// as a clone would be, whose history is 10 releases x 4 maintainers x 500
// images: 20,000 real signatures of 5,000 per-platform digests, each
// digest signed by all four, with a build record per release and
// maintainer. Alice's key is RSA-3072, bob's and paula's legacy Ed25519 and
// dave's an Ed25519 signing subkey, so a quarter of the signatures are
// RSA-3072 (a realistic share: maintainers move to Ed25519 and smart cards
// often hold RSA). Every signature is a distinct payload signed once. The
// fixture is built once (about a minute) and kept in os.TempDir under a
// name holding vbFixtureVersion: change it whenever its shape changes.
const (
	vbFixtureVersion = "verify20000-v1"
	vbReleases       = 10
	vbImages         = 500
	vbSignatures     = vbReleases * vbImages * 4
	// vbGPGSample is how many signature files the gpg loop verifies, one
	// gpg process each; the per-signature cost is extrapolated from them.
	vbGPGSample = 200
	// vbMemoryBudget is the memory target of a whole-repository verify.
	vbMemoryBudget = 300
)

var vbSigners = []string{"alice", "bob", "dave", "paula"}

// vbFixture returns the fixture's directory, building it first when
// os.TempDir has none of this version.
func vbFixture(b *testing.B) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "tally-bench-"+vbFixtureVersion)
	done := filepath.Join(dir, "tally-bench-complete")
	if _, err := os.Stat(done); err == nil {
		return dir
	}
	b.Logf("building the verify benchmark fixture in %s (once)", dir)
	start := time.Now()
	tmp, err := os.MkdirTemp(os.TempDir(), "tally-bench-build-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	if err := vbBuild(b, tmp); err != nil {
		b.Fatalf("building the verify benchmark fixture: %v", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "tally-bench-complete"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	os.RemoveAll(dir) // an incomplete one
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) {
		if _, statErr := os.Stat(done); statErr != nil {
			b.Fatal(err)
		}
	}
	b.Logf("built the fixture in %v", time.Since(start).Round(time.Second))
	return dir
}

func vbBuild(b *testing.B, dir string) error {
	repo, err := gitstore.Init(dir, true, "main")
	if err != nil {
		return err
	}
	var pubs [][]byte
	for _, n := range vbSigners {
		pubs = append(pubs, testkeys.Public(n))
	}
	p := policy.Policy{Namespace: "stagex", IdentityPrefix: "stagex", Threshold: 3, Keyring: "stagex-keyring.pgp"}
	when := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	commit := func(msg string, changes []gitstore.Change) error {
		_, tip, err := repo.Head()
		if err != nil {
			return err
		}
		req := gitstore.CommitRequest{Branch: "main", Changes: changes, Message: msg,
			Author: object.Signature{Name: "bench", Email: "bench@example.invalid", When: when}}
		if !tip.IsZero() {
			req.Parents = []plumbing.Hash{tip}
		}
		when = when.Add(time.Hour)
		_, err = repo.Commit(req)
		return err
	}
	if err := commit("init", []gitstore.Change{{Path: policy.PolicyFile, Data: p.Marshal()}, {Path: p.Keyring, Data: fxKeyring(b, pubs...)}}); err != nil {
		return err
	}
	for r := range vbReleases {
		rel := fmt.Sprintf("2026.%02d.0", r+1)
		for n, who := range vbSigners {
			signer := signerFor(b, who)
			changes := make([]gitstore.Change, vbImages+1)
			built := make([]record.Built, vbImages)
			var wg sync.WaitGroup
			var mu sync.Mutex
			var firstErr error
			sem := make(chan struct{}, runtime.GOMAXPROCS(0))
			for i := range vbImages {
				name := fmt.Sprintf("core-%03d-%03d", r, i)
				digest := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(rel+"/"+name)))
				built[i] = record.Built{Name: name, Tag: "1.0." + strconv.Itoa(r), Platform: "linux/amd64", Digest: digest}
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					data, err := sigstore.Payload{Reference: "stagex/" + name + ":" + built[i].Tag, Digest: digest, Creator: "tally bench", Timestamp: when.Unix()}.Marshal()
					if err == nil {
						changes[i].Data, err = signer.SignMessage(data)
					}
					changes[i].Path = sigstore.Location{Repository: "stagex/" + name, Digest: digest, Number: n + 1}.Path()
					if err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if firstErr != nil {
				return firstErr
			}
			var rec record.BuildRecord
			rec.Append(record.Run{Time: when, Source: "0123456789abcdef0123456789abcdef01234567", Dirty: "no", Platform: "linux/amd64",
				CPUVendor: "AuthenticAMD", CPUModel: "bench", Tally: "bench"}, built)
			changes[vbImages] = gitstore.Change{Path: policy.BuildRecordPath(rel, testkeys.Fingerprint(who)), Data: rec.Marshal()}
			if err := commit("sign "+rel+" by "+who, changes); err != nil {
				return err
			}
		}
	}
	if err := repo.Close(); err != nil {
		return err
	}
	gr, err := git.PlainOpen(dir)
	if err != nil {
		return err
	}
	return gr.RepackObjects(&git.RepackConfig{})
}

// vbCopy makes a private copy of the fixture for one benchmark: the pack
// is hard-linked, the rest (small) copied, so the cache file of one
// benchmark never reaches another.
func vbCopy(b *testing.B) string {
	b.Helper()
	src := vbFixture(b)
	dst := filepath.Join(b.TempDir(), "sigs.git")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if rel == "tally" {
				return fs.SkipDir
			}
			return os.MkdirAll(target, 0o755)
		case strings.HasPrefix(rel, filepath.Join("objects", "pack")):
			return os.Link(p, target)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		b.Fatal(err)
	}
	return dst
}

// vbStatus is one run of tally status over the whole repository, as the
// command does it: open the repository, read the cache, judge, tally, save.
func vbStatus(b *testing.B, dir string) *quorum.Report {
	b.Helper()
	repo, err := gitstore.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer repo.Close()
	rep, err := Status(context.Background(), repo, CheckOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if !rep.QuorumMet() || rep.Invalid() || len(rep.Images) != vbSignatures/4 || len(rep.Warnings) > 0 {
		b.Fatalf("the fixture does not verify: met %v, invalid %v, %d images, warnings %v", rep.QuorumMet(), rep.Invalid(), len(rep.Images), rep.Warnings)
	}
	return rep
}

// BenchmarkVerifyCold is a whole-repository verify of 20,000 signatures with
// no verification cache: every signature is read from git objects and
// verified, in parallel over all cores. ns/sig is per signature; cpu-ns/op
// is the process's CPU time, which other processes on the machine do not
// change; peak-MB is the process's peak resident memory during the runs,
// budget-MB the target.
func BenchmarkVerifyCold(b *testing.B) {
	defer TuneGC()() // as tally runs, the baselines too
	dir := vbCopy(b)
	cache := filepath.Join(dir, "tally")
	mem := vbMemory(b)
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if err := os.RemoveAll(cache); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		cpu0 := vbCPU()
		b.StartTimer()
		rep := vbStatus(b, dir)
		b.StopTimer()
		cpu += vbCPU() - cpu0
		if rep.Verified != vbSignatures {
			b.Fatalf("a cold run verified %d signatures, want %d", rep.Verified, vbSignatures)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/vbSignatures, "ns/sig")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	mem.report(b)
}

// BenchmarkVerifyWarm is the same verify with the cache a previous run
// left: a second run verifies only what is new, here nothing.
func BenchmarkVerifyWarm(b *testing.B) {
	defer TuneGC()() // as tally runs, the baselines too
	dir := vbCopy(b)
	vbStatus(b, dir) // fills the cache
	mem := vbMemory(b)
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		runtime.GC() // each run starts from a clean heap, as cold runs and a new process do
		cpu0 := vbCPU()
		b.StartTimer()
		rep := vbStatus(b, dir)
		b.StopTimer()
		cpu += vbCPU() - cpu0
		if rep.Verified != 0 {
			b.Fatalf("a warm run verified %d signatures, want 0", rep.Verified)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	mem.report(b)
}

// vbSig is one signature prepared for the bare crypto benchmark.
type vbSig struct {
	key  *packet.PublicKey
	body []byte
	sig  *packet.Signature
}

// verify is go-crypto's verification of s and nothing else: hash the
// payload, check the signature with the key.
func (s vbSig) verify() error {
	h := s.sig.Hash.New()
	h.Write(s.body)
	return s.key.VerifySignature(h, s.sig)
}

// vbSignatures reads every signature of the fixture and parses it with
// go-crypto's packet reader, resolving its key.
func vbPrepare(b *testing.B) []vbSig {
	b.Helper()
	repo, err := gitstore.Open(vbFixture(b))
	if err != nil {
		b.Fatal(err)
	}
	defer repo.Close()
	_, tip, err := repo.Head()
	if err != nil {
		b.Fatal(err)
	}
	snap, err := repo.Snapshot(tip)
	if err != nil {
		b.Fatal(err)
	}
	var keys openpgp.EntityList
	for _, n := range vbSigners {
		el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(testkeys.Public(n)))
		if err != nil {
			b.Fatal(err)
		}
		keys = append(keys, el...)
	}
	var out []vbSig
	err = snap.Walk("stagex", func(p string, e gitstore.Entry) error {
		if e.IsDir() {
			return nil
		}
		blob, err := snap.Blob(e.Hash)
		if err != nil {
			return err
		}
		var s vbSig
		r := packet.NewReader(bytes.NewReader(blob))
		for {
			pk, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			switch pk := pk.(type) {
			case *packet.LiteralData:
				if s.body, err = io.ReadAll(pk.Body); err != nil {
					return err
				}
			case *packet.Signature:
				s.sig = pk
			}
		}
		found := keys.KeysById(*s.sig.IssuerKeyId)
		if len(found) != 1 {
			return fmt.Errorf("%s: %d keys for issuer %X", p, len(found), *s.sig.IssuerKeyId)
		}
		s.key = found[0].PublicKey
		out = append(out, s)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if len(out) != vbSignatures {
		b.Fatalf("%d signatures in the fixture, want %d", len(out), vbSignatures)
	}
	return out
}

// BenchmarkVerifyCrypto is the bare cost of go-crypto's verification of
// the fixture's 20,000 signatures on one core: hash the payload and check
// the signature with the key, nothing else (no git, no parsing, no
// judgement).
func BenchmarkVerifyCrypto(b *testing.B) {
	defer TuneGC()() // as tally runs, the baselines too
	sigs := vbPrepare(b)
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		cpu0 := vbCPU()
		for _, s := range sigs {
			if err := s.verify(); err != nil {
				b.Fatal(err)
			}
		}
		cpu += vbCPU() - cpu0
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/vbSignatures, "ns/sig")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkVerifySigstore is sigstore.Verify (format, strict payload and
// cryptography) of the fixture's 20,000 signatures on one goroutine: the
// crypto plus what parsing costs, without git or judgement.
func BenchmarkVerifySigstore(b *testing.B) {
	defer TuneGC()() // as tally runs, the baselines too
	blobs := vbBlobs(b)
	repo, err := gitstore.Open(vbFixture(b))
	if err != nil {
		b.Fatal(err)
	}
	st, err := policy.LoadHead(repo)
	repo.Close()
	if err != nil {
		b.Fatal(err)
	}
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		cpu0 := vbCPU()
		for _, blob := range blobs {
			if _, err := sigstore.Verify(blob, st.Keys); err != nil {
				b.Fatal(err)
			}
		}
		cpu += vbCPU() - cpu0
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/vbSignatures, "ns/sig")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// vbBlobs reads every signature blob of the fixture.
func vbBlobs(b *testing.B) [][]byte {
	b.Helper()
	repo, err := gitstore.Open(vbFixture(b))
	if err != nil {
		b.Fatal(err)
	}
	defer repo.Close()
	_, tip, _ := repo.Head()
	snap, err := repo.Snapshot(tip)
	if err != nil {
		b.Fatal(err)
	}
	var out [][]byte
	err = snap.Walk("stagex", func(_ string, e gitstore.Entry) error {
		if e.IsDir() {
			return nil
		}
		blob, err := snap.Blob(e.Hash)
		out = append(out, blob)
		return err
	})
	if err != nil || len(out) != vbSignatures {
		b.Fatalf("read %d blobs: %v", len(out), err)
	}
	return out
}

// BenchmarkVerifyReadBlobs is where the rest of a cold run's time starts:
// open the repository and read every signature blob from the pack, one
// goroutine, no verification.
func BenchmarkVerifyReadBlobs(b *testing.B) {
	defer TuneGC()() // as tally runs, the baselines too
	dir := vbFixture(b)
	b.ResetTimer()
	for range b.N {
		repo, err := gitstore.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		_, tip, _ := repo.Head()
		snap, err := repo.Snapshot(tip)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		err = snap.Walk("stagex", func(_ string, e gitstore.Entry) error {
			if e.IsDir() {
				return nil
			}
			n++
			_, err := snap.Blob(e.Hash)
			return err
		})
		if err != nil || n != vbSignatures {
			b.Fatalf("read %d blobs: %v", n, err)
		}
		repo.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/vbSignatures, "ns/sig")
}

// BenchmarkVerifyGPGLoop verifies signature files the way a script around
// gpg does, one `gpg --verify` process per file, on a sample of
// vbGPGSample files of the fixture (every 100th, so a quarter are
// RSA-3072). ns/sig is the cost per file, which the ratios extrapolate to
// the whole repository.
func BenchmarkVerifyGPGLoop(b *testing.B) {
	interop.Require(b, "gpg")
	home := interop.GPGHome(b, fxPublic(vbSigners...)...)
	repo, err := gitstore.Open(vbFixture(b))
	if err != nil {
		b.Fatal(err)
	}
	_, tip, _ := repo.Head()
	snap, err := repo.Snapshot(tip)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	var files []string
	i := 0
	err = snap.Walk("stagex", func(p string, e gitstore.Entry) error {
		if e.IsDir() {
			return nil
		}
		i++
		if i%(vbSignatures/vbGPGSample) != 0 {
			return nil
		}
		blob, err := snap.Blob(e.Hash)
		if err != nil {
			return err
		}
		f := filepath.Join(dir, fmt.Sprintf("sig-%d", len(files)))
		files = append(files, f)
		return os.WriteFile(f, blob, 0o644)
	})
	repo.Close()
	if err != nil || len(files) != vbGPGSample {
		b.Fatalf("sampled %d files: %v", len(files), err)
	}
	env := append(os.Environ(), "GNUPGHOME="+home, "LC_ALL=C")
	b.ResetTimer()
	for range b.N {
		for _, f := range files {
			cmd := exec.Command("gpg", "--batch", "--no-tty", "--status-fd", "1", "--verify", f)
			cmd.Env = env
			out, err := cmd.Output()
			if err != nil || !bytes.Contains(out, []byte("[GNUPG:] GOODSIG ")) {
				b.Fatalf("gpg --verify %s: %v\n%s", f, err, out)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/vbGPGSample, "ns/sig")
}

// vbCPU returns the CPU time (user and system) of the process so far.
func vbCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// vbPeak measures the peak resident memory of the process from now on:
// Linux resets the high-water mark VmHWM when "5" is written to
// /proc/self/clear_refs.
type vbPeak struct{ ok bool }

func vbMemory(b *testing.B) vbPeak {
	runtime.GC()
	debug.FreeOSMemory()
	err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	if err != nil {
		b.Logf("cannot measure peak memory here: %v", err)
	}
	return vbPeak{ok: err == nil}
}

func (p vbPeak) report(b *testing.B) {
	if !p.ok {
		return
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err == nil {
				b.ReportMetric(float64(kb)/1024, "peak-MB")
				b.ReportMetric(vbMemoryBudget, "budget-MB")
			}
		}
	}
}

// BenchmarkVerifyCryptoAllCores is BenchmarkVerifyCrypto spread over every
// core, one goroutine per core taking the next signature not yet taken: how
// fast go-crypto alone goes over every core of this machine (tally's own
// RSA verification is cheaper, see sigstore/rsa.go).
func BenchmarkVerifyCryptoAllCores(b *testing.B) {
	defer TuneGC()() // as tally runs, the baselines too
	sigs := vbPrepare(b)
	workers := runtime.GOMAXPROCS(0)
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		cpu0 := vbCPU()
		var wg sync.WaitGroup
		var next atomic.Int64
		for range workers {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < len(sigs); i = int(next.Add(1) - 1) {
					if err := sigs[i].verify(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		cpu += vbCPU() - cpu0
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/vbSignatures, "ns/sig")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

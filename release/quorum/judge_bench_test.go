package quorum

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

// benchCount reads a size from the environment, for runs at other sizes.
func benchCount(b *testing.B, env string, def int) int {
	if s := os.Getenv(env); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("%s: %v", env, err)
		}
		return n
	}
	return def
}

// BenchmarkEvaluateOneDirectory is a cold evaluation of one signature
// directory of 200,000 files (TALLY_BENCH_FILES), one blob by one key:
// judging a directory must be linear in its files.
func BenchmarkEvaluateOneDirectory(b *testing.B) {
	n := benchCount(b, "TALLY_BENCH_FILES", 200000)
	r := newFxRepo(b, 1, fxPublic("alice", "bob")...)
	blob := fxSign(b, signerFor(b, "bob"), "core-a", "1.0", qDigest)
	changes := make([]gitstore.Change, n)
	for i := range changes {
		changes[i] = gitstore.Change{Path: fxPath("core-a", qDigest, i+1), Data: blob}
	}
	r.commit(time.Now(), changes...) // after the fixture keys were made
	st, err := policy.LoadCommit(r.repo, r.tip)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		ev, err := Evaluate(context.Background(), st, EvaluateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(ev.Files) != n || !ev.Files[0].Counts || ev.Files[1].Verdict.Problem != "duplicate-signer" {
			b.Fatalf("%d files judged, want %d; the first %+v", len(ev.Files), n, ev.Files[0])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/file")
}

// BenchmarkTallyLargeKeyring is status with a consumer's --keyring of
// 8,000 keys (TALLY_BENCH_KEYS) besides the two maintainers who signed 300
// images: what it allocates must grow with the signers present, not with
// the keyring. 8,000 Ed25519 keys come close to sigstore.MaxKeyringSize
// (4 MiB), the largest keyring tally reads.
func BenchmarkTallyLargeKeyring(b *testing.B) {
	nkeys := benchCount(b, "TALLY_BENCH_KEYS", 8000)
	images := benchCount(b, "TALLY_BENCH_IMAGES", 300)
	var ring bytes.Buffer
	ring.Write(fxKeyring(b, fxPublic("alice", "bob")...))
	created := time.Now().Add(-time.Hour)
	for i := range nkeys {
		e, err := openpgp.NewEntity(fmt.Sprintf("k%d", i), "", "", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return created }})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Serialize(&ring); err != nil {
			b.Fatal(err)
		}
	}
	keys, err := sigstore.ReadKeyring(ring.Bytes())
	if err != nil {
		b.Fatal(err)
	}
	r := newFxRepo(b, 2, fxPublic("alice", "bob")...)
	var changes []gitstore.Change
	for i := range images {
		name := fmt.Sprintf("core-%d", i)
		for j, who := range []string{"alice", "bob"} {
			changes = append(changes, gitstore.Change{Path: fxPath(name, qDigest, j+1), Data: fxSign(b, signerFor(b, who), name, "1.0", qDigest)})
		}
	}
	r.commit(time.Now(), changes...)
	st, err := policy.LoadCommit(r.repo, r.tip)
	if err != nil {
		b.Fatal(err)
	}
	ev, err := Evaluate(context.Background(), st, EvaluateOptions{Keys: keys, Threshold: 2})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var held uint64
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rep := ev.Tally(Scope{})
		runtime.ReadMemStats(&after)
		held = after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)
		if len(rep.Images) != images || !rep.QuorumMet() {
			b.Fatalf("%d images, quorum %v: %+v %+v", len(rep.Images), rep.QuorumMet(), rep.Images[0].Digests, rep.Problems[:min(2, len(rep.Problems))])
		}
		runtime.KeepAlive(rep)
	}
	b.ReportMetric(float64(held)/(1<<20), "report-MB")
}

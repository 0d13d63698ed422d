package quorum

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// quorumCase is one counting rule: a repository, the evaluation's clock and
// trust root, and what the report must say about image stagex/core-a:1.0 at
// digest fxDigest("a") (a signed image without build records).
type quorumCase struct {
	name  string
	build func(t *testing.T) (r *fxRepo, now time.Time, opts EvaluateOptions)
	// count and quorum of the digest; counted is the Counted flag of each
	// listed signature file, by path suffix ("signature-1").
	count   int
	quorum  bool
	counted map[string]bool
	// problems are the report's problems as "kind signature-N", exactly.
	problems []string
	// check, when set, checks more.
	check func(t *testing.T, rep *Report)
}

var (
	qDigest = fxDigest("a")
	qRef    = "stagex/core-a:1.0"
)

func qPath(n int) string { return fxPath("core-a", qDigest, n) }

// qSigned is a repository trusting the named fixture keys at threshold m,
// with one commit holding a signature of core-a:1.0 by each of signers, as
// signature-1, -2, ...
func qSigned(t *testing.T, m int, trusted []string, signers ...string) *fxRepo {
	t.Helper()
	r := newFxRepo(t, m, fxPublic(trusted...)...)
	var changes []gitstoreChange
	for i, s := range signers {
		changes = append(changes, file(qPath(i+1), fxSign(t, signerFor(t, s), "core-a", "1.0", qDigest)))
	}
	r.commit(fxEpoch.Add(time.Hour), changes...)
	return r
}

func TestQuorumCounting(t *testing.T) {
	t.Parallel()
	now := time.Now()
	// Keys generated for lifetime rules are created an hour ago (the signer
	// must be valid now); the repository's commits are placed around their
	// expiry and revocation, after the fact.
	kc := now.Add(-time.Hour).Truncate(time.Second)
	soft, retired, hard := packet.KeySuperseded, packet.KeyRetired, packet.KeyCompromised

	tests := []quorumCase{
		{
			name: "two good signatures by distinct keys meet quorum",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				return qSigned(t, 2, []string{"alice", "bob", "carol"}, "alice", "bob"), now, EvaluateOptions{}
			},
			count: 2, quorum: true, counted: map[string]bool{"signature-1": true, "signature-2": true},
		},
		{
			name: "same key twice counts once",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				return qSigned(t, 2, []string{"alice", "bob"}, "alice", "alice"), now, EvaluateOptions{}
			},
			count: 1, quorum: false, counted: map[string]bool{"signature-1": true, "signature-2": false},
			problems: []string{"duplicate-signer signature-2"},
		},
		{
			name: "the same file copied twice counts once",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				r := newFxRepo(t, 2, fxPublic("alice", "bob")...)
				blob := fxSign(t, signerFor(t, "bob"), "core-a", "1.0", qDigest)
				r.commit(fxEpoch.Add(time.Hour), file(qPath(1), blob), file(qPath(2), blob))
				return r, now, EvaluateOptions{}
			},
			count: 1, counted: map[string]bool{"signature-1": true, "signature-2": false},
			problems: []string{"duplicate-signer signature-2"},
		},
		{
			name: "a subkey signature counts for its primary key",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				return qSigned(t, 2, []string{"alice", "dave"}, "dave", "alice"), now, EvaluateOptions{}
			},
			count: 2, quorum: true, counted: map[string]bool{"signature-1": true, "signature-2": true},
			// it counts, and older podman and skopeo refuse it: said per file
			problems: []string{"clients-refuse signature-1"},
			check: func(t *testing.T, rep *Report) {
				s := fxRow(t, fxImage(t, rep, qRef, ""), qDigest).Signers[0]
				if s.Fingerprint != testkeys.Fingerprint("dave") || !s.Subkey || !s.Trusted {
					t.Errorf("dave's subkey signature listed as %+v, want dave's primary fingerprint, subkey, trusted", s)
				}
			},
		},
		{
			name: "a key's primary and subkey signatures count once",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				k := newFxKey(t, "erin", kc, 0)
				if err := k.entity.AddSigningSubkey(&packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return kc }}); err != nil {
					t.Fatal(err)
				}
				sub := k.entity.Subkeys[len(k.entity.Subkeys)-1].PublicKey.KeyId
				payload := fxPayload(t, "core-a", "1.0", qDigest)
				r := newFxRepo(t, 2, append(fxPublic("alice"), k.public(t))...)
				r.commit(kc.Add(time.Minute), file(qPath(1), k.signWith(t, k.entity.PrimaryKey.KeyId, 0, payload)),
					file(qPath(2), k.signWith(t, sub, 0, payload)))
				return r, now, EvaluateOptions{}
			},
			count: 1, counted: map[string]bool{"signature-1": true, "signature-2": false},
			problems: []string{"duplicate-signer signature-2"},
		},
		{
			name: "a key outside the policy counts zero and is untrusted",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				return qSigned(t, 2, []string{"alice", "bob"}, "mallory", "alice"), now, EvaluateOptions{}
			},
			count: 1, counted: map[string]bool{"signature-1": false, "signature-2": true},
			problems: []string{"unknown-signer signature-1"},
			check: func(t *testing.T, rep *Report) {
				s := fxRow(t, fxImage(t, rep, qRef, ""), qDigest).Signers[0]
				if s.Trusted || s.Counted || s.Fingerprint != testkeys.Fingerprint("mallory") {
					t.Errorf("mallory listed as %+v", s)
				}
				if rep.Invalid() {
					t.Error("an untrusted signer made the report invalid")
				}
			},
		},
		{
			name: "threshold is met only by trusted keys, however many outsiders sign",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				return qSigned(t, 2, []string{"alice", "bob"}, "mallory", "carol", "paula", "alice"), now, EvaluateOptions{}
			},
			count: 1, quorum: false,
			counted:  map[string]bool{"signature-1": false, "signature-2": false, "signature-3": false, "signature-4": true},
			problems: []string{"unknown-signer signature-1", "unknown-signer signature-2", "unknown-signer signature-3"},
		},
		{
			name: "expired key counts when the file entered before expiry",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				k := newFxKey(t, "erin", kc, 48*time.Hour)
				r := newFxRepo(t, 2, append(fxPublic("alice"), k.public(t))...)
				r.commit(kc.Add(2*time.Hour), file(qPath(1), fxSign(t, k.signer, "core-a", "1.0", qDigest)))
				r.commit(kc.Add(60*time.Hour), file(qPath(2), fxSign(t, signerFor(t, "alice"), "core-a", "1.0", qDigest)))
				return r, kc.Add(72 * time.Hour), EvaluateOptions{}
			},
			count: 2, quorum: true, counted: map[string]bool{"signature-1": true, "signature-2": true},
			// counted, while stock clients, judging the key now, refuse it
			problems: []string{"clients-refuse signature-1"},
		},
		{
			name: "expired key does not count when the file entered after expiry, whatever the signer's timestamp",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				// The signature says it was made now, before the expiry;
				// it entered the repository after.
				k := newFxKey(t, "erin", kc, 48*time.Hour)
				r := newFxRepo(t, 2, append(fxPublic("alice"), k.public(t))...)
				r.commit(kc.Add(50*time.Hour), file(qPath(1), fxSign(t, k.signer, "core-a", "1.0", qDigest)),
					file(qPath(2), fxSign(t, signerFor(t, "alice"), "core-a", "1.0", qDigest)))
				return r, kc.Add(72 * time.Hour), EvaluateOptions{}
			},
			count: 1, counted: map[string]bool{"signature-1": false, "signature-2": true},
			problems: []string{"key-not-valid signature-1"},
			check: func(t *testing.T, rep *Report) {
				s := fxRow(t, fxImage(t, rep, qRef, ""), qDigest).Signers[0]
				if !strings.Contains(s.Reason, "expired") {
					t.Errorf("reason %q does not say the key expired", s.Reason)
				}
			},
		},
		{
			name: "a backdated commit cannot place a file before the history it builds on",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				k := newFxKey(t, "erin", kc, 48*time.Hour)
				r := newFxRepo(t, 1, append(fxPublic("alice"), k.public(t))...)
				r.commit(kc.Add(50*time.Hour), file("README", []byte("after the expiry\n")))
				r.commit(kc.Add(2*time.Hour), file(qPath(1), fxSign(t, k.signer, "core-a", "1.0", qDigest)))
				return r, kc.Add(72 * time.Hour), EvaluateOptions{}
			},
			count: 0, counted: map[string]bool{"signature-1": false},
			problems: []string{"key-not-valid signature-1"},
		},
		{
			name: "superseded key counts when the file entered before the revocation",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				k := newFxKey(t, "erin", kc, 0)
				k.revoke(t, &soft, kc.Add(24*time.Hour))
				r := newFxRepo(t, 1, append(fxPublic("alice"), k.public(t))...)
				r.commit(kc.Add(2*time.Hour), file(qPath(1), fxSign(t, k.signer, "core-a", "1.0", qDigest)))
				return r, kc.Add(48 * time.Hour), EvaluateOptions{}
			},
			count: 1, quorum: true, counted: map[string]bool{"signature-1": true},
			problems: []string{"clients-refuse signature-1"},
		},
		{
			name: "retired key does not count when the file entered after the revocation",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				k := newFxKey(t, "erin", kc, 0)
				k.revoke(t, &retired, kc.Add(24*time.Hour))
				r := newFxRepo(t, 1, append(fxPublic("alice"), k.public(t))...)
				r.commit(kc.Add(30*time.Hour), file(qPath(1), fxSign(t, k.signer, "core-a", "1.0", qDigest)))
				return r, kc.Add(48 * time.Hour), EvaluateOptions{}
			},
			count: 0, counted: map[string]bool{"signature-1": false},
			problems: []string{"key-not-valid signature-1"},
		},
		{
			name: "compromised key never counts, even for files that entered before the revocation",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				k := newFxKey(t, "erin", kc, 0)
				k.revoke(t, &hard, kc.Add(24*time.Hour))
				r := newFxRepo(t, 1, append(fxPublic("alice"), k.public(t))...)
				r.commit(kc.Add(2*time.Hour), file(qPath(1), fxSign(t, k.signer, "core-a", "1.0", qDigest)))
				return r, kc.Add(48 * time.Hour), EvaluateOptions{}
			},
			count: 0, counted: map[string]bool{"signature-1": false},
			problems: []string{"key-not-valid signature-1"},
			check: func(t *testing.T, rep *Report) {
				s := fxRow(t, fxImage(t, rep, qRef, ""), qDigest).Signers[0]
				if !strings.Contains(s.Reason, "compromised") {
					t.Errorf("reason %q does not name the compromise", s.Reason)
				}
			},
		},
		{
			name: "a revocation without a reason is hard",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				k := newFxKey(t, "erin", kc, 0)
				k.revoke(t, nil, kc.Add(24*time.Hour))
				r := newFxRepo(t, 1, append(fxPublic("alice"), k.public(t))...)
				r.commit(kc.Add(2*time.Hour), file(qPath(1), fxSign(t, k.signer, "core-a", "1.0", qDigest)))
				return r, kc.Add(48 * time.Hour), EvaluateOptions{}
			},
			count: 0, counted: map[string]bool{"signature-1": false},
			problems: []string{"key-not-valid signature-1"},
		},
		{
			name: "an expired signature does not count",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				k := newFxKey(t, "erin", kc, 0)
				blob := k.signWith(t, k.entity.PrimaryKey.KeyId, time.Hour, fxPayload(t, "core-a", "1.0", qDigest))
				r := newFxRepo(t, 1, k.public(t))
				r.commit(kc.Add(2*time.Hour), file(qPath(1), blob))
				return r, now.Add(2 * time.Hour), EvaluateOptions{}
			},
			count: 0, counted: map[string]bool{"signature-1": false},
			problems: []string{"signature-expired signature-1"},
		},
		{
			name: "a signature for another tag does not count for this tag",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				r := newFxRepo(t, 2, fxPublic("alice", "bob")...)
				r.commit(fxEpoch.Add(time.Hour), file(qPath(1), fxSign(t, signerFor(t, "alice"), "core-a", "1.0", qDigest)),
					file(qPath(2), fxSign(t, signerFor(t, "bob"), "core-a", "1.0-rc1", qDigest)))
				return r, now, EvaluateOptions{}
			},
			count: 1, counted: map[string]bool{"signature-1": true, "signature-2": false},
			check: func(t *testing.T, rep *Report) {
				rc := fxRow(t, fxImage(t, rep, "stagex/core-a:1.0-rc1", ""), qDigest)
				if rc.Count != 1 || !rc.Signers[1].Counted || rc.Signers[0].Counted {
					t.Errorf("the 1.0-rc1 image counts %+v", rc)
				}
			},
		},
		{
			name: "legacy StageX payload is recognised and never counted",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				legacy := `[{"critical":{"identity":{"docker-reference":"stagex/core-a:1.0"},"image":{"docker-manifest-digest":"` +
					strings.TrimPrefix(qDigest, "sha256:") + `"},"type":"pgp container image signature"},"optional":{}}]`
				blob, err := signerFor(t, "bob").SignMessage([]byte(legacy))
				if err != nil {
					t.Fatal(err)
				}
				r := newFxRepo(t, 1, fxPublic("alice", "bob")...)
				r.commit(fxEpoch.Add(time.Hour), file(qPath(1), blob), file(qPath(2), fxSign(t, signerFor(t, "alice"), "core-a", "1.0", qDigest)))
				return r, now, EvaluateOptions{}
			},
			count: 1, quorum: true, counted: map[string]bool{"signature-1": false, "signature-2": true},
			problems: []string{"legacy signature-1"},
		},
		{
			name: "a signature after a numbering gap is reported and does not count",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				r := newFxRepo(t, 2, fxPublic("alice", "bob")...)
				r.commit(fxEpoch.Add(time.Hour), file(qPath(1), fxSign(t, signerFor(t, "alice"), "core-a", "1.0", qDigest)),
					file(qPath(3), fxSign(t, signerFor(t, "bob"), "core-a", "1.0", qDigest)))
				return r, now, EvaluateOptions{}
			},
			count: 1, counted: map[string]bool{"signature-1": true, "signature-3": false},
			problems: []string{"gap signature-3"},
			check: func(t *testing.T, rep *Report) {
				if rep.Invalid() {
					t.Error("a gap made the report invalid")
				}
			},
		},
		{
			name: "an empty file poisons the directory and is invalid",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				r := newFxRepo(t, 1, fxPublic("alice", "bob")...)
				r.commit(fxEpoch.Add(time.Hour), file(qPath(1), fxSign(t, signerFor(t, "alice"), "core-a", "1.0", qDigest)),
					file(qPath(2), []byte{}))
				return r, now, EvaluateOptions{}
			},
			count: 0, counted: map[string]bool{"signature-1": false},
			problems: []string{"poisoned signature-1", "empty signature-2"},
			check: func(t *testing.T, rep *Report) {
				if !rep.Invalid() {
					t.Error("an empty signature file did not make the report invalid")
				}
			},
		},
		{
			name: "a consumer keyring narrower than the repository's sees others as untrusted, not invalid",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				r := qSigned(t, 2, []string{"alice", "bob", "carol"}, "alice", "bob", "carol")
				keys, err := sigstore.ReadKeyring(fxKeyring(t, fxPublic("carol")...))
				if err != nil {
					t.Fatal(err)
				}
				return r, now, EvaluateOptions{Keys: keys, Threshold: 1}
			},
			count: 1, quorum: true, counted: map[string]bool{"signature-1": false, "signature-2": false, "signature-3": true},
			problems: []string{"unknown-signer signature-1", "unknown-signer signature-2"},
			check: func(t *testing.T, rep *Report) {
				if rep.Invalid() || rep.Threshold != 1 || len(rep.Maintainers) != 1 {
					t.Errorf("consumer trust root: invalid=%v threshold=%d maintainers=%v", rep.Invalid(), rep.Threshold, rep.Maintainers)
				}
			},
		},
		{
			name: "a consumer threshold raises the bar",
			build: func(t *testing.T) (*fxRepo, time.Time, EvaluateOptions) {
				return qSigned(t, 1, []string{"alice", "bob", "carol"}, "alice", "bob"), now, EvaluateOptions{Threshold: 3}
			},
			count: 2, quorum: false, counted: map[string]bool{"signature-1": true, "signature-2": true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, at, opts := tt.build(t)
			rep := r.mustEvaluate(at, opts).Tally(opts.Scope)
			row := fxRow(t, fxImage(t, rep, qRef, ""), qDigest)
			if row.Count != tt.count || row.Quorum != tt.quorum {
				t.Errorf("count %d, quorum %v; want %d, %v", row.Count, row.Quorum, tt.count, tt.quorum)
			}
			got := map[string]bool{}
			for _, s := range row.Signers {
				got[s.Path[strings.LastIndexByte(s.Path, '/')+1:]] = s.Counted
				if s.Counted && (!s.Trusted || s.Reason != "") {
					t.Errorf("counted signer %+v is untrusted or has a reason", s)
				}
			}
			if diff := cmp.Diff(tt.counted, got); diff != "" {
				t.Errorf("counted signatures (-want +got):\n%s", diff)
			}
			var problems []string
			for _, p := range rep.Problems {
				problems = append(problems, p.Kind+" "+p.Path[strings.LastIndexByte(p.Path, '/')+1:])
			}
			if diff := cmp.Diff(tt.problems, problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s\n%+v", diff, rep.Problems)
			}
			distinct := map[string]bool{}
			for _, s := range row.Signers {
				if s.Counted {
					if distinct[s.Fingerprint] {
						t.Errorf("key %s counted twice", s.Fingerprint)
					}
					distinct[s.Fingerprint] = true
				}
			}
			if tt.check != nil {
				tt.check(t, rep)
			}
		})
	}
}

// TestQuorumThresholdRefused: a threshold no honest set of keys can meet is
// refused, from the repository's policy and from the caller alike.
func TestQuorumThresholdRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		policy    int
		threshold int
		keys      []string
		want      error
	}{
		{"caller threshold 0 with a negative value", 2, -1, nil, ErrBadThreshold},
		{"caller threshold above the number of keys", 2, 4, nil, ErrBadThreshold},
		{"consumer keyring smaller than the repository threshold", 2, 0, []string{"alice"}, ErrBadThreshold},
		{"repository threshold above the number of keys", 4, 0, nil, policy.ErrBadPolicy},
		{"repository threshold 0", 0, 0, nil, policy.ErrBadPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newFxRepo(t, tt.policy, fxPublic("alice", "bob", "carol")...)
			opts := EvaluateOptions{Threshold: tt.threshold}
			if tt.keys != nil {
				keys, err := sigstore.ReadKeyring(fxKeyring(t, fxPublic(tt.keys...)...))
				if err != nil {
					t.Fatal(err)
				}
				opts.Keys = keys
			}
			_, err := r.evaluate(time.Now(), opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Evaluate: %v, want %v", err, tt.want)
			}
		})
	}
}

// TestQuorumDivergence: build records that disagree stand out as
// divergent, never as a merely missing signature.
func TestQuorumDivergence(t *testing.T) {
	t.Parallel()
	const rel = "2026.11.0"
	d1, d2, arm := fxDigest("amd64-1"), fxDigest("amd64-2"), fxDigest("arm64")
	fpr := testkeys.Fingerprint
	amd := func(d string) record.Built {
		return record.Built{Name: "core-a", Tag: "1.0", Platform: "linux/amd64", Digest: d}
	}
	arm64 := record.Built{Name: "core-a", Tag: "1.0", Platform: "linux/arm64", Digest: arm}
	at := fxEpoch.Add(time.Hour)
	sign := func(t *testing.T, who, d string, n int) gitstoreChange {
		return file(fxPath("core-a", d, n), fxSign(t, signerFor(t, who), "core-a", "1.0", d))
	}

	tests := []struct {
		name      string
		changes   func(t *testing.T, r *fxRepo) []gitstoreChange
		quorum    bool
		divergent bool
		met       bool
		cells     map[string]string // "platform name" -> state
	}{
		{
			name: "two maintainers, two digests for one platform",
			changes: func(t *testing.T, r *fxRepo) []gitstoreChange {
				return []gitstoreChange{
					r.record(rel, fpr("alice"), at, amd(d1)), r.record(rel, fpr("bob"), at, amd(d2)),
					sign(t, "alice", d1, 1), sign(t, "bob", d2, 1),
				}
			},
			quorum: false, divergent: true, met: false,
			cells: map[string]string{"linux/amd64 alice": CellDivergent, "linux/amd64 bob": CellDivergent, "linux/amd64 carol": CellMissing},
		},
		{
			name: "a quorum and one odd builder out",
			changes: func(t *testing.T, r *fxRepo) []gitstoreChange {
				return []gitstoreChange{
					r.record(rel, fpr("alice"), at, amd(d1)), r.record(rel, fpr("bob"), at, amd(d1)), r.record(rel, fpr("carol"), at, amd(d2)),
					sign(t, "alice", d1, 1), sign(t, "bob", d1, 2), sign(t, "carol", d2, 1),
				}
			},
			quorum: true, divergent: true, met: false,
			cells: map[string]string{"linux/amd64 alice": CellMatch, "linux/amd64 bob": CellMatch, "linux/amd64 carol": CellDivergent},
		},
		{
			name: "a divergent build by a key outside the trust root still raises the alarm",
			changes: func(t *testing.T, r *fxRepo) []gitstoreChange {
				return []gitstoreChange{
					r.record(rel, fpr("alice"), at, amd(d1)), r.record(rel, fpr("bob"), at, amd(d1)), r.record(rel, fpr("mallory"), at, amd(d2)),
					sign(t, "alice", d1, 1), sign(t, "bob", d1, 2),
				}
			},
			quorum: true, divergent: true, met: false,
			cells: map[string]string{"linux/amd64 alice": CellMatch, "linux/amd64 bob": CellMatch, "linux/amd64 carol": CellMissing, "linux/amd64 mallory": CellDivergent},
		},
		{
			name: "every platform must meet quorum",
			changes: func(t *testing.T, r *fxRepo) []gitstoreChange {
				return []gitstoreChange{
					r.record(rel, fpr("alice"), at, amd(d1), arm64), r.record(rel, fpr("bob"), at, amd(d1)),
					sign(t, "alice", d1, 1), sign(t, "bob", d1, 2), sign(t, "alice", arm, 1),
				}
			},
			quorum: false, divergent: false, met: false,
			cells: map[string]string{"linux/amd64 alice": CellMatch, "linux/amd64 bob": CellMatch, "linux/amd64 carol": CellMissing,
				"linux/arm64 alice": CellMatch, "linux/arm64 bob": CellMissing, "linux/arm64 carol": CellMissing},
		},
		{
			name: "all platforms agreed and signed",
			changes: func(t *testing.T, r *fxRepo) []gitstoreChange {
				return []gitstoreChange{
					r.record(rel, fpr("alice"), at, amd(d1), arm64), r.record(rel, fpr("bob"), at, amd(d1), arm64),
					sign(t, "alice", d1, 1), sign(t, "bob", d1, 2), sign(t, "alice", arm, 1), sign(t, "bob", arm, 2),
				}
			},
			quorum: true, divergent: false, met: true,
			cells: map[string]string{"linux/amd64 alice": CellMatch, "linux/amd64 bob": CellMatch, "linux/amd64 carol": CellMissing,
				"linux/arm64 alice": CellMatch, "linux/arm64 bob": CellMatch, "linux/arm64 carol": CellMissing},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newFxRepo(t, 2, fxPublic("alice", "bob", "carol")...)
			r.commit(at, tt.changes(t, r)...)
			ev := r.mustEvaluate(time.Now(), EvaluateOptions{Scope: Scope{Release: rel}})
			rep := ev.Tally(ev.Scope)
			if len(rep.Images) != 1 {
				t.Fatalf("images: %+v", rep.Images)
			}
			img := rep.Images[0]
			if img.Quorum != tt.quorum || img.Divergent != tt.divergent || rep.QuorumMet() != tt.met {
				t.Errorf("quorum %v divergent %v met %v; want %v %v %v", img.Quorum, img.Divergent, rep.QuorumMet(), tt.quorum, tt.divergent, tt.met)
			}
			got := map[string]string{}
			for _, c := range img.Builds {
				got[c.Platform+" "+fxName(c.Fingerprint)] = c.State
				if c.State != CellMissing && c.Digest == "" {
					t.Errorf("cell %+v has a state but no digest", c)
				}
			}
			if diff := cmp.Diff(tt.cells, got); diff != "" {
				t.Errorf("matrix (-want +got):\n%s", diff)
			}
			if img.Divergent && !slices.ContainsFunc(img.Builds, func(c BuildCell) bool { return c.State == CellDivergent }) {
				t.Error("a divergent image shows no divergent cell")
			}
		})
	}
}

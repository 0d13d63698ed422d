package release

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/state"
	"github.com/tally-sig/tally/sigstore"
)

// stRepo is a signatures repository in memory for the rollback and freeze
// tests: commits with chosen times, signed by chosen fixture keys, written
// on any parent (a host rewriting history does that).
type stRepo struct {
	t    testing.TB
	repo *gitstore.Repo
	tip  plumbing.Hash
}

var stPolicy = policy.Policy{Namespace: "stagex", IdentityPrefix: "stagex", Threshold: 2, Keyring: "stagex-keyring.pgp"}

// newStRepo commits a policy of alice, bob and carol (2 of 3), signed by alice.
func newStRepo(t testing.TB) *stRepo {
	r := &stRepo{t: t, repo: gitstore.NewMemory(false)}
	r.tip = r.write(plumbing.ZeroHash, fxEpoch, "alice",
		file(policy.PolicyFile, stPolicy.Marshal()), file(stPolicy.Keyring, fxKeyring(t, fxPublic("alice", "bob", "carol")...)))
	r.move(r.tip)
	return r
}

// write writes a commit on parent (zero for a root) at time at, signed by
// signer ("" for unsigned), without moving the branch.
func (r *stRepo) write(parent plumbing.Hash, at time.Time, signer string, changes ...gitstore.Change) plumbing.Hash {
	r.t.Helper()
	who := object.Signature{Name: "tally test", Email: "test@example.invalid", When: at}
	req := gitstore.CommitRequest{Changes: changes, Message: "change", Author: who, Committer: who}
	if !parent.IsZero() {
		req.Parents = []plumbing.Hash{parent}
	}
	if signer != "" {
		req.Sign = signerFor(r.t, signer).SignDetached
	}
	h, err := r.repo.WriteCommit(req)
	if err != nil {
		r.t.Fatalf("writing a commit: %v", err)
	}
	return h
}

// commit writes a commit on the tip and moves the branch to it.
func (r *stRepo) commit(at time.Time, signer string, changes ...gitstore.Change) plumbing.Hash {
	r.t.Helper()
	h := r.write(r.tip, at, signer, changes...)
	r.move(h)
	return h
}

// move points main at h, whatever it pointed at (a forced push).
func (r *stRepo) move(h plumbing.Hash) {
	r.t.Helper()
	_, cur, _ := r.repo.Head()
	if err := r.repo.SetBranch(gitstore.BranchUpdate{Branch: "main", Old: cur, New: h, Who: object.Signature{Name: "host", Email: "host@example.invalid", When: fxEpoch}}); err != nil {
		r.t.Fatal(err)
	}
	r.tip = h
}

func (r *stRepo) check(old *state.State, maxAge time.Duration, now time.Time) (*state.State, error) {
	r.t.Helper()
	return state.Check(r.repo, old, state.Options{MaxAge: maxAge, Now: now})
}

func (r *stRepo) mustCheck(old *state.State, now time.Time) *state.State {
	r.t.Helper()
	s, err := r.check(old, 0, now)
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

func stKeyring(t testing.TB, names ...string) gitstore.Change {
	return file(stPolicy.Keyring, fxKeyring(t, fxPublic(names...)...))
}

// stRevoked is a fixture's public key with a hard revocation made at at.
func stRevoked(t testing.TB, name string, at time.Time) []byte {
	t.Helper()
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(testkeys.Secret(name)))
	if err != nil {
		t.Fatal(err)
	}
	e := el[0]
	if err := e.RevokeKey(packet.KeyCompromised, "stolen", &packet.Config{Time: func() time.Time { return at }}); err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	if err := e.Serialize(&pub); err != nil {
		t.Fatal(err)
	}
	return pub.Bytes()
}

func stSig(n int) gitstore.Change {
	return file(fxPath("core-hello", relDigest("hello"), n), []byte{byte(n)})
}

func TestStateForward(t *testing.T) {
	t.Parallel()
	r := newStRepo(t)
	day := func(n int) time.Time { return fxEpoch.Add(time.Duration(n) * 24 * time.Hour) }
	r.commit(day(1), "bob", stSig(1))
	s1 := r.mustCheck(nil, day(1))
	if s1.Commit != r.tip.String() || s1.Namespace != "stagex" || s1.Policy.Threshold != 2 || len(s1.Policy.Keys) != 3 || len(s1.Superseded) != 0 {
		t.Fatalf("first state %+v", s1)
	}
	// The repository moves on, carol leaves: accepted, her policy superseded.
	r.commit(day(2), "alice", stKeyring(t, "alice", "bob"))
	s2 := r.mustCheck(s1, day(2))
	if s2.Commit != r.tip.String() || s2.Policy.Since != r.tip.String() || !slices.Equal(s2.Superseded, []string{s1.Policy.ID}) {
		t.Fatalf("second state %+v", s2)
	}
	// The state file round-trips.
	parsed, err := state.Parse(s2.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if string(parsed.Marshal()) != string(s2.Marshal()) {
		t.Errorf("Parse(Marshal(s)) != s:\n%s\n%s", parsed.Marshal(), s2.Marshal())
	}
	// Read, Write.
	f := filepath.Join(t.TempDir(), "state.json")
	if got, err := state.Read(f); got != nil || err != nil {
		t.Fatalf("a missing state file: %v, %v", got, err)
	}
	if err := state.Write(f, s2); err != nil {
		t.Fatal(err)
	}
	if got, err := state.Read(f); err != nil || got.Commit != s2.Commit {
		t.Fatalf("Read after Write: %+v, %v", got, err)
	}
}

// The attacks: each one a host or mirror can mount by serving another
// history, and the error that stops it.
func TestStateAttacks(t *testing.T) {
	t.Parallel()
	day := func(n int) time.Time { return fxEpoch.Add(time.Duration(n) * 24 * time.Hour) }

	t.Run("dropped revocation", func(t *testing.T) {
		r := newStRepo(t)
		before := r.commit(day(1), "bob", stSig(1))
		// carol's key is revoked: the keyring now holds her revocation.
		r.commit(day(2), "alice", file(stPolicy.Keyring, append(fxKeyring(t, fxPublic("alice", "bob")...), stRevoked(t, "carol", day(2))...)))
		s := r.mustCheck(nil, day(2))
		// The host serves the history without the revocation commit.
		r.move(r.write(before, day(3), "carol", stSig(2)))
		_, err := r.check(s, 0, day(3))
		if !errors.Is(err, state.ErrRewritten) || !strings.Contains(err.Error(), "is not in the history of main") {
			t.Fatalf("err = %v, want ErrRewritten", err)
		}
	})
	t.Run("revocation dropped by a new commit", func(t *testing.T) {
		r := newStRepo(t)
		r.commit(day(1), "alice", file(stPolicy.Keyring, append(fxKeyring(t, fxPublic("alice", "bob")...), stRevoked(t, "carol", day(1))...)))
		s := r.mustCheck(nil, day(1))
		// A fast-forward whose keyring holds carol's key as it was before
		// its revocation, armored this time: the same policy as before.
		var ring []byte
		for _, n := range []string{"alice", "bob", "carol"} {
			ring = append(ring, testkeys.Public(n)...)
		}
		r.commit(day(2), "carol", file(stPolicy.Keyring, ring))
		if _, err := r.check(s, 0, day(2)); !errors.Is(err, state.ErrPolicyRolledBack) {
			t.Fatalf("err = %v, want ErrPolicyRolledBack", err)
		}
	})
	t.Run("removed maintainer-removal commit", func(t *testing.T) {
		r := newStRepo(t)
		before := r.tip
		r.commit(day(1), "alice", stKeyring(t, "alice", "bob"))
		s := r.mustCheck(nil, day(1))
		r.move(before)
		if _, err := r.check(s, 0, day(2)); !errors.Is(err, state.ErrRewritten) {
			t.Fatalf("err = %v, want ErrRewritten", err)
		}
	})
	t.Run("policy rolled back", func(t *testing.T) {
		r := newStRepo(t)
		r.commit(day(1), "alice", stKeyring(t, "alice", "bob"))
		s := r.mustCheck(nil, day(1))
		// A fast-forward that brings carol's old keyring back.
		r.commit(day(2), "carol", stKeyring(t, "alice", "bob", "carol"))
		_, err := r.check(s, 0, day(2))
		if !errors.Is(err, state.ErrPolicyRolledBack) {
			t.Fatalf("err = %v, want ErrPolicyRolledBack", err)
		}
		// s was the first run, after carol's removal: the policy it
		// superseded came from the history alone.
		if len(s.Superseded) != 1 {
			t.Fatalf("superseded %v, want the policy with carol", s.Superseded)
		}
	})
	t.Run("older bundle or mirror", func(t *testing.T) {
		r := newStRepo(t)
		old := r.commit(day(1), "bob", stSig(1))
		r.commit(day(2), "bob", stSig(2))
		s := r.mustCheck(nil, day(2))
		r.move(old)
		_, err := r.check(s, 0, day(3))
		if !errors.Is(err, state.ErrRewritten) {
			t.Fatalf("err = %v, want ErrRewritten", err)
		}
	})
	t.Run("frozen", func(t *testing.T) {
		// Signatures are made on the real clock, and a commit may not claim
		// a time long before its signature: these commits are made now.
		now := time.Now().UTC().Truncate(time.Second)
		after := func(days int) time.Time { return now.Add(time.Duration(days) * 24 * time.Hour) }
		r := newStRepo(t)
		r.commit(now, "bob", stSig(1))
		s := r.mustCheck(nil, now)
		if _, err := r.check(s, 7*24*time.Hour, after(1)); err != nil {
			t.Fatalf("a day later: %v", err)
		}
		// Thirty days on, the mirror still serves the same tip.
		_, err := r.check(s, 7*24*time.Hour, after(31))
		if !errors.Is(err, state.ErrFrozen) || !strings.Contains(err.Error(), "older than --max-age 168h0m0s") {
			t.Fatalf("err = %v, want ErrFrozen", err)
		}
		// A fresh commit that no trusted key signed does not unfreeze it.
		r.commit(after(30), "", stSig(2))
		if _, err := r.check(s, 7*24*time.Hour, after(31)); !errors.Is(err, state.ErrFrozen) {
			t.Fatalf("an unsigned fresh commit: err = %v, want ErrFrozen", err)
		}
		// Nor does one signed by a key the consumer does not trust.
		mallory := &stRepo{t: t, repo: gitstore.NewMemory(false)}
		mallory.tip = mallory.write(plumbing.ZeroHash, now, "mallory", file(policy.PolicyFile, stPolicy.Marshal()), stKeyring(t, "alice", "bob", "mallory"))
		mallory.move(mallory.tip)
		aliceBob, err := sigstore.ReadKeyring(append(testkeys.Public("alice"), testkeys.Public("bob")...))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := state.Check(mallory.repo, nil, state.Options{Keys: aliceBob, MaxAge: time.Hour, Now: now}); !errors.Is(err, state.ErrFrozen) {
			t.Fatalf("a commit signed by an untrusted key: err = %v, want ErrFrozen", err)
		}
	})
	t.Run("other repository", func(t *testing.T) {
		r := newStRepo(t)
		s := r.mustCheck(nil, day(1))
		o := &stRepo{t: t, repo: gitstore.NewMemory(false)}
		o.tip = o.write(plumbing.ZeroHash, day(5), "bob", file(policy.PolicyFile, stPolicy.Marshal()), stKeyring(t, "alice", "bob"))
		o.move(o.tip)
		if _, err := o.check(s, 0, day(5)); !errors.Is(err, state.ErrOtherRepository) {
			t.Fatalf("err = %v, want ErrOtherRepository", err)
		}
	})
}

// TestStateBundle: the state check reads a bundle as it reads a
// repository; an older bundle than the one recorded is refused.
func TestStateBundle(t *testing.T) {
	t.Parallel()
	repo := gitstore.NewMemory(true)
	relReady(t, repo)
	relCut(t, repo, "alice", "r1")
	oldFile, _ := mustBundle(t, repo, "r1")
	relSign(t, repo, "alice", "r2", relImage("core-new", "1.0", "linux/amd64=a"))
	newFile, _ := mustBundle(t, repo, "r1")
	newer := mustOpenBundle(t, newFile)
	s, err := state.Check(newer.Repo, nil, state.Options{Now: relNow})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyBundle(context.Background(), newer, VerifyOptions{CheckOptions: CheckOptions{Now: relClock}}); err != nil {
		t.Fatal(err)
	}
	older := mustOpenBundle(t, oldFile)
	if _, err := state.Check(older.Repo, s, state.Options{Now: relNow}); !errors.Is(err, state.ErrRewritten) {
		t.Fatalf("an older bundle: err = %v, want ErrRewritten", err)
	}
}

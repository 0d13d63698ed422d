package state_test

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/state"
	"github.com/tally-sig/tally/sigstore"
)

// A consumer's first check records what it saw; after the maintainers
// remove a key, the old policy is superseded, and bringing it back is a
// rollback.
func ExampleCheck() {
	repo := gitstore.NewMemory(false)
	p := policy.Policy{Namespace: "stagex", IdentityPrefix: "stagex", Threshold: 1, Keyring: "stagex-keyring.pgp"}
	keyring := func(names ...string) []byte {
		var b bytes.Buffer
		for _, n := range names {
			kr, _ := sigstore.ReadKeyring(testkeys.Public(n))
			_ = kr.Serialize(&b)
		}
		return b.Bytes()
	}
	when := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	commit := func(changes ...gitstore.Change) {
		who := object.Signature{Name: "example", Email: "example@example.invalid", When: when}
		_, tip, _ := repo.Head()
		req := gitstore.CommitRequest{Branch: "main", Changes: changes, Message: "change", Author: who, Committer: who}
		if !tip.IsZero() {
			req.Parents = append(req.Parents, tip)
		}
		if _, err := repo.Commit(req); err != nil {
			panic(err)
		}
	}
	commit(gitstore.Change{Path: policy.PolicyFile, Data: p.Marshal()}, gitstore.Change{Path: p.Keyring, Data: keyring("alice", "bob")})
	first, _ := state.Check(repo, nil, state.Options{Now: when})
	fmt.Println("first run:", len(first.Policy.Keys), "keys,", len(first.Superseded), "superseded")

	commit(gitstore.Change{Path: p.Keyring, Data: keyring("alice")})
	second, _ := state.Check(repo, first, state.Options{Now: when})
	fmt.Println("bob removed:", len(second.Policy.Keys), "key,", len(second.Superseded), "superseded")

	commit(gitstore.Change{Path: p.Keyring, Data: keyring("alice", "bob")})
	_, err := state.Check(repo, second, state.Options{Now: when})
	fmt.Println("bob back:", errors.Is(err, state.ErrPolicyRolledBack))
	// Output:
	// first run: 2 keys, 0 superseded
	// bob removed: 1 key, 1 superseded
	// bob back: true
}

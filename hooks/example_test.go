package hooks_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/hooks"
	"github.com/tally-sig/tally/internal/sample"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/internal/testkeys/testsigner"
	"github.com/tally-sig/tally/release"
)

// ExampleCheck judges two pushes to a signatures repository held in
// memory: a maintainer's signed sign commit is accepted, and a signed commit
// that deletes a published signature is refused.
func ExampleCheck() {
	ctx := context.Background()
	when := time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return when }
	out, err := os.MkdirTemp("", "tally-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(out)
	if _, err := sample.Write(out, sample.Spec{Name: "core-gcc", Tag: "14.2.0"}); err != nil {
		log.Fatal(err)
	}
	images, err := buildout.Read(out, nil)
	if err != nil {
		log.Fatal(err)
	}
	alice, err := testsigner.For("alice")
	if err != nil {
		log.Fatal(err)
	}

	repo := gitstore.NewMemory(false)
	if _, err := release.Init(ctx, repo, release.InitOptions{Namespace: "stagex", Threshold: 1, Signer: alice, Now: now,
		Keys: []release.PublicKey{{Source: "alice", Data: testkeys.Public("alice")}}}); err != nil {
		log.Fatal(err)
	}
	_, initial, _ := repo.Head()
	signed, err := release.Sign(ctx, repo, release.SignOptions{Release: "2026.11.0", Images: images, Signer: alice, Now: now})
	if err != nil {
		log.Fatal(err)
	}
	_, published, _ := repo.Head()
	res, err := hooks.Check(repo, initial, published, hooks.Options{Now: now})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("sign: %d commit(s), %d signature(s), accepted: %v\n", res.Commits, res.Signatures, res.OK())

	deleted, err := repo.Commit(gitstore.CommitRequest{
		Branch:  "main",
		Parents: []plumbing.Hash{published},
		Changes: []gitstore.Change{{Path: signed.Signed[0].Path, Delete: true}},
		Message: "drop a signature",
		Author:  object.Signature{Name: "Alice", Email: "alice@example.invalid", When: when},
		Sign:    alice.SignDetached,
	})
	if err != nil {
		log.Fatal(err)
	}
	res, err = hooks.Check(repo, published, deleted, hooks.Options{Now: now})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res.Refusals {
		fmt.Printf("refused by rule %s: the deleted signature: %v\n", r.Rule, r.Path == signed.Signed[0].Path)
	}
	// Output:
	// sign: 1 commit(s), 1 signature(s), accepted: true
	// refused by rule append-only: the deleted signature: true
}

package release_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/sample"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/internal/testkeys/testsigner"
	"github.com/tally-sig/tally/release"
	"github.com/tally-sig/tally/release/quorum"
	"github.com/tally-sig/tally/sigstore"
)

// ExampleStatus sets up a signatures repository in memory with a
// threshold of 2, lets two maintainers sign the same build, and counts the
// quorum after each.
func ExampleStatus() {
	ctx := context.Background()
	now := func() time.Time { return time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC) }
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

	repo := gitstore.NewMemory(true)
	alice, _ := testsigner.For("alice")
	bob, _ := testsigner.For("bob")
	if _, err := release.Init(ctx, repo, release.InitOptions{
		Namespace: "stagex", Threshold: 2, Signer: alice, Now: now,
		Keys: []release.PublicKey{{Source: "alice", Data: testkeys.Public("alice")}, {Source: "bob", Data: testkeys.Public("bob")}},
	}); err != nil {
		log.Fatal(err)
	}
	for _, who := range []struct {
		name   string
		signer *sigstore.KeySigner
	}{{"alice", alice}, {"bob", bob}} {
		opts := release.SignOptions{Release: "2026.11.0", Images: images, Signer: who.signer, Now: now}
		if _, err := release.Sign(ctx, repo, opts); err != nil {
			log.Fatal(err)
		}
		rep, err := release.Status(ctx, repo, release.CheckOptions{Scope: quorum.Scope{Release: "2026.11.0"}, Now: now})
		if err != nil {
			log.Fatal(err)
		}
		for _, img := range rep.Images {
			fmt.Printf("after %s: %s quorum=%v\n", who.name, img.Reference, img.Quorum)
		}
		fmt.Println("verdict:", rep.Verdict())
	}
	// Output:
	// after alice: stagex/core-gcc:14.2.0 quorum=false
	// verdict: no-quorum
	// after bob: stagex/core-gcc:14.2.0 quorum=true
	// verdict: ok
}

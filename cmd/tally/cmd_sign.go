package main

import (
	"fmt"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release"
)

func signCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "sign",
		Usage:     "sign the images a build produced and commit the signatures",
		ArgsUsage: "[NAME...]",
		Description: `Reads every OCI image layout under --out (or only the named ones), signs the
digest of each per-platform image manifest with your key, files each signature
at the first free signature-N of <namespace>/<name>@sha256=<hex>/, records what
you built (builds/<release>/<FINGERPRINT>.txt: image, tag, platform, digest, the
source commit and your machine), and commits it all as one commit signed by the
same key. Digests your key already signed are skipped, so running it again is
safe. The branch never moves when anything fails.

The passphrase of a --key file comes from $TALLY_PASSPHRASE or a prompt, never
from the command line. With --gpg, gpg (and gpg-agent, smart cards) does the
signing, one operation at a time.

EXAMPLES:
   make
   tally sign --repo ../signatures --release 2026.11.0 --key ~/keys/me.sec.asc
   tally sign --repo ../signatures --release 2026.11.0 --gpg core-gcc core-musl
   tally sign --repo ../signatures --release 2026.11.0 --gpg --push --json`,
		Flags: append([]cli.Flag{
			repoFlag(),
			&cli.StringFlag{Name: "release", Usage: "the release VERSION this build belongs to (e.g. 2026.11.0)", Required: true},
			&cli.PathFlag{Name: "out", Value: "out", Usage: "the build output directory holding one OCI layout per package"},
			&cli.PathFlag{Name: "source", Usage: "the source tree the build came from, for the build record (default: the directory holding --out)"},
			&cli.BoolFlag{Name: "push", Usage: "push the branch to its upstream afterwards"},
			jsonFlag(),
		}, signerFlags(true)...),
		Action: func(c *cli.Context) error {
			if err := release.CheckReleaseName(c.String("release")); err != nil {
				return fail(exitUsage, err)
			}
			signer, err := openSigner(c, env, true)
			if err != nil {
				return err
			}
			out := c.Path("out")
			images, err := buildout.Read(out, c.Args().Slice())
			if err != nil {
				return err
			}
			if len(images) == 0 {
				return fail(exitData, fmt.Errorf("no OCI image layouts in %s", out), "run make first, or point --out at the build output")
			}
			repo, err := gitstore.Open(c.Path("repo"))
			if err != nil {
				return err
			}
			defer repo.Close()
			source := c.Path("source")
			if source == "" {
				source = filepath.Dir(filepath.Clean(out))
			}
			bar := newProgress(env.stderr, "signing")
			res, err := release.Sign(c.Context, repo, release.SignOptions{
				Release:  c.String("release"),
				Images:   images,
				Signer:   signer,
				Run:      release.DescribeRun(source, timeNow(), version),
				Now:      timeNow,
				Creator:  "tally " + version,
				Progress: bar.Update,
			})
			bar.Done()
			if err != nil {
				return err
			}
			if c.Bool("push") && res.Commit != "" {
				if err := release.Push(c.Context, repo, res.Branch); err != nil {
					return fmt.Errorf("signed and committed %s, but pushing failed: %w", short(res.Commit), err)
				}
			}
			if c.Bool("json") {
				return writeJSON(env.stdout, res)
			}
			printSign(env, res)
			return nil
		},
	}
}

func printSign(env *environment, res *release.SignResult) {
	w := env.stdout
	fmt.Fprintf(w, "release %s, signer %s\n", res.Release, res.Signer)
	fmt.Fprintf(w, "%d image(s), %d platform manifest(s): %d new signature(s), %d already signed\n",
		res.Images, res.Platforms, len(res.Signed), len(res.Skipped))
	for _, s := range res.Signed {
		fmt.Fprintf(w, "  signed   %s %s %s\n", s.Reference, s.Platform, s.Path)
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "  skipped  %s %s (already %s)\n", s.Reference, s.Platform, s.Path)
	}
	if res.Commit != "" {
		fmt.Fprintf(w, "commit %s on %s\n", short(res.Commit), res.Branch)
	} else {
		fmt.Fprintln(w, "nothing new to commit")
	}
}

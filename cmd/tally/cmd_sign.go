package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/record"
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
same key. Digests your key already has a signature of that counts are
skipped, so running it again is safe; when none of its files counts (expired,
key lifetime, behind a numbering gap, wrong identity) it signs again at the
first free number and says why. The branch never moves when anything fails: everything is checked
before the first signature is made, and an untracked or edited file at a path
sign writes is refused (exit 77). Another tally working on the repository is
waited for up to --lock-wait (then exit 75). The summary lists at most ten
files; --verbose lists every one.

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
			&cli.BoolFlag{Name: "push", Usage: "push the branch to its upstream afterwards (also when nothing new was signed), replaying your commits on top of what others pushed meanwhile (as tally sync does)"},
			lockWaitFlag(),
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "list every signature file written or already there"},
			jsonFlag(),
		}, signerFlags(true)...),
		Action: func(c *cli.Context) error {
			if err := policy.CheckReleaseName(c.String("release")); err != nil {
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
			repo, err := openRepo(env, c.Path("repo"))
			if err != nil {
				return err
			}
			defer repo.Close()
			repo.SetRemoteOutput(env.stderr) // the remote's hook output, as git push shows it
			source := c.Path("source")
			if source == "" {
				source = filepath.Dir(filepath.Clean(out))
			}
			bar := newProgress(env.stderr, "signing")
			res, err := release.Sign(c.Context, repo, release.SignOptions{
				Release:  c.String("release"),
				Images:   images,
				Signer:   signer,
				Run:      record.DescribeRun(source, timeNow(), version),
				Now:      timeNow,
				Creator:  "tally " + version,
				LockWait: c.Duration("lock-wait"),
				Progress: bar.Update,
			})
			bar.Done()
			if err != nil {
				return err
			}
			for _, w := range res.Warnings {
				fmt.Fprintf(env.stderr, "tally: warning: %s\n", w)
			}
			if c.Bool("push") {
				// Also with nothing new: a rerun after a failed push pushes.
				sres, err := release.SyncAndPush(c.Context, repo, signer, timeNow)
				if err != nil {
					what := "nothing new to sign"
					if res.Commit != "" {
						what = "signed and committed " + short(res.Commit)
					}
					err = fmt.Errorf("%s, but pushing failed: %w", what, err)
					if isInterrupt(err) && res.Commit != "" {
						return fail(exitTempFail, err, "interrupted after the commit: the signatures are committed and the checkout is up to date; run tally sync (or tally sign --push again) to push them")
					}
					if errors.Is(err, gitstore.ErrNoUpstream) || errors.Is(err, release.ErrNoUpstream) {
						return fail(exitData, err, fmt.Sprintf(
							"the signatures are committed: give %s an upstream once (git -C %s push -u REMOTE %s; git -C %s remote lists the remotes)",
							res.Branch, c.Path("repo"), res.Branch, c.Path("repo")))
					}
					return err
				}
				for _, m := range sres.Renumbered {
					fmt.Fprintf(env.stderr, "tally: renumbered %s -> %s: another maintainer published that number first\n", m.From, m.To)
				}
			}
			if c.Bool("json") {
				return writeJSON(env.stdout, res)
			}
			printSign(env, res, c.Bool("verbose"))
			if c.Bool("push") {
				fmt.Fprintf(env.stdout, "pushed %s to its upstream\n", res.Branch)
			}
			return nil
		},
	}
}

// shortList is how many signature files the default output lists; more
// are summed up (--verbose lists them all).
const shortList = 10

func printSign(env *environment, res *release.SignResult, verbose bool) {
	w := env.stdout
	fmt.Fprintf(w, "release %s, signer %s\n", res.Release, res.Signer)
	fmt.Fprintf(w, "%d image(s), %d platform manifest(s): %d new signature(s), %d already signed\n",
		res.Images, res.Platforms, len(res.Signed), len(res.Skipped))
	listed := 0
	for _, s := range res.Signed {
		if !verbose && listed == shortList {
			break
		}
		fmt.Fprintf(w, "  signed   %s %s %s\n", s.Reference, s.Platform, s.Path)
		if s.Resigned != "" {
			fmt.Fprintf(w, "           signed again: %s\n", s.Resigned)
		}
		listed++
	}
	for _, s := range res.Skipped {
		if !verbose && listed == shortList {
			break
		}
		fmt.Fprintf(w, "  skipped  %s %s (already %s)\n", s.Reference, s.Platform, s.Path)
		listed++
	}
	if rest := len(res.Signed) + len(res.Skipped) - listed; rest > 0 {
		fmt.Fprintf(w, "  … and %d more (--verbose lists every file)\n", rest)
	}
	if res.Commit != "" {
		fmt.Fprintf(w, "commit %s on %s\n", short(res.Commit), res.Branch)
	} else {
		fmt.Fprintln(w, "nothing new to commit")
	}
}

// lockWaitFlag is how long a command that writes the repository waits for
// another tally working on it.
func lockWaitFlag() cli.Flag {
	return &cli.DurationFlag{Name: "lock-wait", Value: time.Minute,
		Usage: "wait this long for another tally working on the repository, then give up (exit 75)"}
}

package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/release"
)

func syncCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "sync",
		Usage:     "fetch the upstream, replay your unpublished signatures on top of it, and push",
		ArgsUsage: " ",
		Description: `Fetches the upstream of the checked-out branch. When other maintainers pushed
meanwhile, your unpublished commits are replayed on top of what they pushed:
what is published never changes; your unpublished signatures move to the first
free signature-N where theirs took the number (each replayed commit says what
moved), and one the upstream already has (same bytes, or your key already
signed that digest) is dropped. The replayed commits are signed with your key,
so one is needed when there is something to replay. Then it pushes; when
someone pushes first, it starts again, a few times at most (exit 75 after).
tally sign --push does the same after signing. Fetching and pushing run your
git program, so your credential helpers, ssh keys and configuration,
GIT_SSH_COMMAND and insteadOf apply as for git push; the remote's "remote:"
lines (the server hook's reasons for a refusal) are shown as git shows them.

EXAMPLES:
   tally sync --repo ../signatures --key ~/keys/me.sec.asc
   tally sync --repo ../signatures --gpg --no-push`,
		Flags: append([]cli.Flag{
			repoFlag(),
			&cli.BoolFlag{Name: "no-push", Usage: "fetch and replay only"},
			&cli.IntFlag{Name: "attempts", Value: release.DefaultSyncAttempts, Usage: "how many times to try when other maintainers keep pushing first"},
			lockWaitFlag(),
			jsonFlag(),
		}, signerFlags(true)...),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("sync takes no arguments, got %q", c.Args().First())
			}
			if c.Int("attempts") < 1 {
				return usagef("--attempts must be at least 1, got %d", c.Int("attempts"))
			}
			signer, err := openSigner(c, env, false)
			if err != nil {
				return err
			}
			repo, err := openRepo(env, c.Path("repo"))
			if err != nil {
				return err
			}
			defer repo.Close()
			repo.SetRemoteOutput(env.stderr) // the remote's hook output, as git push shows it
			res, err := release.Sync(c.Context, repo, release.SyncOptions{
				Signer:   signer,
				NoPush:   c.Bool("no-push"),
				Attempts: c.Int("attempts"),
				Now:      timeNow,
				LockWait: c.Duration("lock-wait"),
			})
			if err != nil {
				if res != nil && len(res.Replayed) > 0 && !c.Bool("json") {
					printSync(env, res)
				}
				if isInterrupt(err) && res != nil && (len(res.Replayed) > 0 || res.FastForward) && res.After != "" {
					return fail(exitTempFail, err, "interrupted after the branch moved: the replayed commits are kept and the checkout is up to date; run tally sync again to push")
				}
				return err
			}
			if c.Bool("json") {
				return writeJSON(env.stdout, res)
			}
			printSync(env, res)
			return nil
		},
	}
}

func printSync(env *environment, res *release.SyncResult) {
	w := env.stdout
	up := res.Remote + " " + res.Upstream
	if res.UpstreamTip == "" {
		fmt.Fprintf(w, "%s does not exist yet\n", up)
	} else {
		fmt.Fprintf(w, "fetched %s at %s\n", up, short(res.UpstreamTip))
	}
	if res.FastForward {
		fmt.Fprintf(w, "fast-forwarded %s to %s\n", res.Branch, short(res.After))
	}
	if len(res.Replayed) > 0 {
		n := 0
		for _, r := range res.Replayed {
			if r.New != "" {
				n++
			}
		}
		fmt.Fprintf(w, "replayed %d unpublished commit(s) onto the upstream (%d dropped as already there)\n", n, len(res.Replayed)-n)
		for _, m := range res.Renumbered {
			fmt.Fprintf(w, "  renumbered  %s -> %s\n", m.From, m.To)
		}
		for _, d := range res.Dropped {
			fmt.Fprintf(w, "  dropped     %s  (%s %s)\n", d.From, d.Reason, d.Existing)
		}
	}
	switch {
	case res.Pushed:
		fmt.Fprintf(w, "pushed %s to %s (%s, attempt %d)\n", res.Branch, up, short(res.After), res.Attempts)
	case res.UpToDate():
		fmt.Fprintf(w, "%s is up to date with %s\n", res.Branch, up)
	case !res.FastForward:
		fmt.Fprintf(w, "%s is at %s, not pushed\n", res.Branch, short(res.After))
	}
}

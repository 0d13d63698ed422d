package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/hooks"
)

func checkCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "judge commits by the rules of a guarded signatures repository (CI, review)",
		ArgsUsage: "OLD..NEW | COMMIT",
		Description: `Judges every commit reachable from NEW but not from OLD, each against the
trust policy of its parent and of OLD (the current maintainers), and exits 0
only when all of them pass: the same judgement the server hook (tally hooks
install --server) applies to a push. With one COMMIT it judges that commit
against its first parent. OLD must be an ancestor of NEW: anything else would
rewrite published history. For a pull request, check from the merge base.

A change is accepted when:
   - signature files under <namespace>/ are only added (never deleted,
     modified, renamed or made executable; no links or submodules anywhere),
     each passes the full judgement (format, payload, digest and identity
     matching its path, signer a current maintainer with a valid key),
     numbers stay contiguous and no key signs a digest twice;
   - build records (builds/<release>/<FPR>.txt) are the committer's own and
     only grow; release manifests (releases/<release>/) are only added, by a
     commit that changes nothing else; approvals (approvals/) are only added;
   - tally.toml and the keyring change only with approvals from as many
     current maintainers as the threshold when keys are added or removed,
     the threshold is lowered or other settings change (tally approve);
   - nothing else changes, unless tally.toml lists it in extra_paths;
   - every commit is signed by a current maintainer's valid OpenPGP key.

Each refused change is printed as "tally: refused: <path>: <reason> (commit
<id>)" on standard error. Keys must be valid now as well as at each commit's
time, unless --at-commit-time (for auditing old history).

EXAMPLES:
   tally check --repo . origin/main..HEAD
   tally check --repo . "$(git merge-base origin/main HEAD)..HEAD"
   tally check --repo signatures.git 3f2a9c1`,
		Flags: []cli.Flag{
			repoFlag(),
			&cli.BoolFlag{Name: "bootstrap", Usage: "accept, unjudged, commits whose parent has no trust policy (the history before tally init)"},
			&cli.BoolFlag{Name: "at-commit-time", Usage: "judge key lifetimes only at each commit's time, not also now"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("check takes one argument, OLD..NEW or COMMIT")
			}
			arg := c.Args().First()
			repo, err := openRepo(env, c.Path("repo"))
			if err != nil {
				return err
			}
			defer repo.Close()
			opts := hooks.Options{Now: timeNow, Bootstrap: c.Bool("bootstrap")}
			if c.Bool("at-commit-time") {
				opts.Now = nil
			}
			var res *hooks.Result
			if oldRev, newRev, ok := strings.Cut(arg, ".."); ok {
				if strings.HasPrefix(newRev, ".") || newRev == "" {
					return usagef("%q: want OLD..NEW (two dots) with both ends named", arg)
				}
				oldTip := plumbing.ZeroHash
				if oldRev != "" {
					if oldTip, err = resolve(repo, oldRev); err != nil {
						return err
					}
				}
				newTip, err := resolve(repo, newRev)
				if err != nil {
					return err
				}
				res, err = hooks.Check(repo, oldTip, newTip, opts)
				if err != nil {
					return err
				}
			} else {
				commit, err := resolve(repo, arg)
				if err != nil {
					return err
				}
				res, err = hooks.CheckCommit(repo, commit, opts)
				if err != nil {
					return err
				}
			}
			if c.Bool("json") {
				if err := writeJSON(env.stdout, res); err != nil {
					return err
				}
			} else {
				printRefusals(env.stderr, res)
				for _, n := range res.Notes {
					fmt.Fprintf(env.stdout, "note: %s\n", n)
				}
				verdict := "all accepted"
				if !res.OK() {
					verdict = fmt.Sprintf("%d change(s) refused", len(res.Refusals))
				}
				fmt.Fprintf(env.stdout, "checked %d commit(s) and %d new signature(s): %s\n", res.Commits, res.Signatures, verdict)
			}
			if err := res.Err(); err != nil {
				return fail(exitRefused, err, "each refused line names the file, the reason and the commit; fix those commits (git rebase -i) and check again")
			}
			return nil
		},
	}
}

// resolve turns a revision into a commit id, or a usage error.
func resolve(repo *gitstore.Repo, rev string) (plumbing.Hash, error) {
	h, err := repo.ResolveRevision(rev)
	if err != nil {
		return plumbing.ZeroHash, fail(exitUsage, fmt.Errorf("unknown revision %q: %w", rev, err),
			"name commits as git does: main, origin/main, HEAD~3 or a commit id")
	}
	return h, nil
}

// printRefusals prints each refusal as a line a maintainer can act on.
func printRefusals(w io.Writer, res *hooks.Result) {
	for _, r := range res.Refusals {
		fmt.Fprintf(w, "tally: refused: %s\n", r)
	}
}

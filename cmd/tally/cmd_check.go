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
     the threshold is lowered, a key is edited beyond what its holder adds
     alone, or other settings change (tally approve); approvals are used
     once, for the change from the policy of one commit;
   - nothing else changes, unless tally.toml lists it in extra_paths;
   - every commit is signed by a current maintainer's valid OpenPGP key, the
     signature made at most 10 minutes after the committer time;
   - NEW contains everything OLD published (lookaside files byte for byte,
     build-record lines, release manifests, approvals, and OLD's trust
     policy or an approved successor), whatever the shape of the history;
     a merge is also judged against each of its parents already published.

Commit signatures are judged before any content: when one fails, the
content is not read. File sizes are read before the files: a signature file
over 4 MiB, tally.toml over 64 KiB or a keyring over 4 MiB is refused
unread.

Each refused change is printed as "tally: refused: <path>: <reason> (commit
<id>)" on standard error: the first 10 of each kind (rule, and problem of a
signature file), then how many more; --json lists every one. Keys must be valid now as well as at each commit's
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
				printRefusals(env.stderr, res, "tally check --json lists them all")
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

// maxRefusalLines is how many refusals of one kind (rule, and problem for
// signature files) are printed; the rest are counted. --json lists all.
const maxRefusalLines = 10

// printRefusals prints each refusal as a line a maintainer can act on: the
// first maxRefusalLines of each kind, then how many more there are and
// where to see them all.
func printRefusals(w io.Writer, res *hooks.Result, seeAll string) {
	type kind struct {
		rule hooks.Rule
		kind string
	}
	count := map[kind]int{}
	var order []kind
	for _, r := range res.Refusals {
		k := kind{r.Rule, string(r.Kind)}
		if count[k] == 0 {
			order = append(order, k)
		}
		count[k]++
		if count[k] <= maxRefusalLines {
			fmt.Fprintf(w, "tally: refused: %s\n", r)
		}
	}
	for _, k := range order {
		if n := count[k] - maxRefusalLines; n > 0 {
			what := string(k.rule)
			if k.kind != "" {
				what += " (" + k.kind + ")"
			}
			fmt.Fprintf(w, "tally: refused: ... and %d more %s refusal(s); %s\n", n, what, seeAll)
		}
	}
}

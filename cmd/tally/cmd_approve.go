package main

import (
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/hooks"
)

func approveCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "approve",
		Usage:     "approve a proposed change of the trust policy with your key",
		ArgsUsage: "PROPOSAL",
		Description: `PROPOSAL is a commit (a branch, a hash) whose tally.toml and keyring are the
proposed trust policy. tally approve prints what changes, then records your
approval of exactly that change, from the policy at --from (default HEAD: the
current one) to the proposed one: approvals/<id>/statement (the change, by
SHA-256 of both policies' files, bound to the repository and to the commit
holding the current policy) and approvals/<id>/<FPR>.asc (your detached
signature of it), committed on the checked-out branch and signed by the same
key. Each maintainer approves on their own, in any order; approving twice
commits nothing.

A change that adds or removes keys, lowers the threshold, edits a key beyond
what its holder adds alone or changes another setting is accepted (by tally
check and the hooks) only when approvals by as many current maintainers as
the threshold are in the changing commit or the tip pushed with it.
Approvals are used once: after the policy has changed since the commit a
statement names, it no longer counts, even for the same bytes again.
Raising the threshold, or a key update that only adds what the key's holder
made (self-signatures, subkeys, its own revocations), needs none.

EXAMPLES:
   git fetch origin proposal/add-dave
   tally approve --repo . --key ~/keys/me.sec.asc origin/proposal/add-dave
   git push origin main`,
		Flags: append([]cli.Flag{
			repoFlag(),
			&cli.StringFlag{Name: "from", Usage: "the commit holding the current trust policy (default: HEAD)"},
			jsonFlag(),
		}, signerFlags(true)...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("approve takes one argument, the PROPOSAL commit")
			}
			signer, err := openSigner(c, env, true)
			if err != nil {
				return err
			}
			repo, err := openRepo(env, c.Path("repo"))
			if err != nil {
				return err
			}
			defer repo.Close()
			proposal, err := resolve(repo, c.Args().First())
			if err != nil {
				return err
			}
			from := plumbing.ZeroHash
			if f := c.String("from"); f != "" {
				if from, err = resolve(repo, f); err != nil {
					return err
				}
			}
			res, err := hooks.Approve(c.Context, repo, hooks.ApproveOptions{Proposal: proposal, From: from, Signer: signer, Now: timeNow})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(env.stdout, res)
			}
			w := env.stdout
			fmt.Fprintf(w, "the change %s (it %s):\n", res.ID[:12], strings.Join(res.NeedsApproval, ", "))
			for _, line := range strings.Split(strings.TrimSuffix(res.Statement, "\n"), "\n") {
				fmt.Fprintf(w, "  %s\n", line)
			}
			if res.Already {
				fmt.Fprintf(w, "already approved by %s (%s): nothing to commit\n", res.Signer, res.Path)
			} else {
				fmt.Fprintf(w, "approved by %s: %s, commit %s on %s\n", res.Signer, res.Path, short(res.Commit), res.Branch)
			}
			fmt.Fprintf(w, "approvals: %d of the %d needed", len(res.Approvers), res.Threshold)
			if len(res.Approvers) > 0 {
				fmt.Fprintf(w, " (%s)", strings.Join(res.Approvers, ", "))
			}
			fmt.Fprintln(w)
			return nil
		},
	}
}

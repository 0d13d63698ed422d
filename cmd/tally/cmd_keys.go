package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/hooks"
)

const proposalHelp = `Each makes one commit on the checked-out branch, signed by your key (a
current maintainer's): the keyring and tally.toml as proposed. When the
change needs approvals (adding or removing keys, lowering the threshold), it
also commits your approval of it (as tally approve does), so the branch holds
the proposal and its first approval. The other maintainers fetch that
branch and add theirs with "tally approve --from main HEAD" on it; once as
many current maintainers as the threshold have approved, the branch is
pushed to main (a fast-forward), where the hooks and tally check accept it.
Refreshing keys with what their holders made and raising the threshold need
no approvals: the commit alone is the change.`

func keysCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:  "keys",
		Usage: "propose adding, removing or refreshing maintainer keys (the approval round)",
		Description: proposalHelp + `

EXAMPLES:
   git -C signatures switch -c add-dave
   tally keys add --repo signatures dave.pub.asc --key ~/keys/me.sec.asc
   tally keys remove --repo signatures 0F1E2D3C4B5A69788796A5B4C3D2E1F00F1E2D3C --key ~/keys/me.sec.asc
   tally keys refresh --repo signatures alice-2027.pub.asc --key ~/keys/me.sec.asc`,
		Subcommands: []*cli.Command{
			keysChangeCommand(env, "add", "FILE...", "propose new maintainers' public keys (armored or binary)"),
			keysChangeCommand(env, "remove", "FINGERPRINT...", "propose removing maintainer keys by primary fingerprint"),
			keysChangeCommand(env, "refresh", "FILE...", "update keys with their holders' new exports (self-signatures, subkeys, revocations)"),
		},
		Action: unknownSubcommand,
	}
}

func keysChangeCommand(env *environment, verb, args, usage string) *cli.Command {
	example := map[string]string{
		"add":     "tally keys add --repo signatures dave.pub.asc --key ~/keys/me.sec.asc",
		"remove":  "tally keys remove --repo signatures 0F1E2D3C4B5A69788796A5B4C3D2E1F00F1E2D3C --key ~/keys/me.sec.asc",
		"refresh": "tally keys refresh --repo signatures alice-2027.pub.asc --key ~/keys/me.sec.asc",
	}[verb]
	return &cli.Command{
		Name:        verb,
		Usage:       usage,
		ArgsUsage:   args,
		Description: proposalHelp + "\n\nEXAMPLES:\n   " + example,
		Flags:       append([]cli.Flag{repoFlag(), jsonFlag()}, signerFlags(true)...),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("%s needs at least one %s", commandName(c), strings.TrimSuffix(args, "..."))
			}
			var opts hooks.ProposeOptions
			for _, a := range c.Args().Slice() {
				if verb == "remove" {
					opts.Remove = append(opts.Remove, a)
					continue
				}
				data, err := os.ReadFile(a)
				if err != nil {
					return fail(exitData, fmt.Errorf("reading key file: %w", err))
				}
				k := hooks.PublicKey{Source: a, Data: data}
				if verb == "add" {
					opts.Add = append(opts.Add, k)
				} else {
					opts.Refresh = append(opts.Refresh, k)
				}
			}
			return propose(c, env, opts)
		},
	}
}

func thresholdCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "threshold",
		Usage:     "propose a new threshold M (the approval round)",
		ArgsUsage: "M",
		Description: proposalHelp + `

EXAMPLES:
   tally threshold --repo signatures 3 --key ~/keys/me.sec.asc`,
		Flags: append([]cli.Flag{repoFlag(), jsonFlag()}, signerFlags(true)...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("threshold takes one argument, the new M")
			}
			m, err := strconv.Atoi(c.Args().First())
			if err != nil || m < 1 {
				return usagef("the threshold must be a whole number of at least 1, got %q", c.Args().First())
			}
			return propose(c, env, hooks.ProposeOptions{Threshold: m})
		},
	}
}

func propose(c *cli.Context, env *environment, opts hooks.ProposeOptions) error {
	signer, err := openSigner(c, env, true)
	if err != nil {
		return err
	}
	opts.Signer, opts.Now = signer, timeNow
	repo, err := gitstore.Open(c.Path("repo"))
	if err != nil {
		return err
	}
	defer repo.Close()
	res, err := hooks.Propose(c.Context, repo, opts)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return writeJSON(env.stdout, res)
	}
	w := env.stdout
	fmt.Fprintf(w, "proposed on %s: commit %s (from the policy of %s)\n", res.Branch, short(res.Commit), short(res.Base))
	for _, ch := range res.Changes {
		fmt.Fprintf(w, "  %s\n", ch)
	}
	if res.Approval == nil {
		fmt.Fprintln(w, "the change needs no approvals: push it to main")
		return nil
	}
	a := res.Approval
	fmt.Fprintf(w, "approved by %s: %s, commit %s\n", a.Signer, a.Path, short(a.Commit))
	fmt.Fprintf(w, "approvals: %d of the %d needed; the others run on this branch: tally approve --repo REPO --from %s HEAD\n",
		len(a.Approvers), a.Threshold, short(res.Base))
	return nil
}

package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/release"
)

func repairCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "repair",
		Usage:     "close numbering gaps in the lookaside tree that other tools left",
		ArgsUsage: " ",
		Description: `Readers stop at the first missing signature-N, so a gap (signature-1 and
signature-3 without signature-2) hides every signature after it. repair moves
the files after each gap down, keeping their bytes and order, in one commit
signed by your key that lists every move. tally never does this by itself.

Files that are already published (on the branch's upstream as last fetched,
or anything in a bare repository, which is what others fetch) are not moved
unless --force: consumers fetch signatures by path.

EXAMPLES:
   tally repair --repo ../signatures --key ~/keys/me.sec.asc
   tally repair --repo /srv/signatures.git --gpg --force`,
		Flags: append([]cli.Flag{
			repoFlag(),
			&cli.BoolFlag{Name: "force", Usage: "move files even when they are published"},
			lockWaitFlag(),
			jsonFlag(),
		}, signerFlags(true)...),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("repair takes no arguments, got %q", c.Args().First())
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
			res, err := release.Repair(c.Context, repo, release.RepairOptions{
				Signer:   signer,
				Force:    c.Bool("force"),
				Now:      timeNow,
				LockWait: c.Duration("lock-wait"),
			})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(env.stdout, res)
			}
			w := env.stdout
			for _, p := range res.Ignored {
				fmt.Fprintf(env.stderr, "tally: warning: %s is not named signature-N: readers never see it; left alone\n", p)
			}
			if res.Commit == "" {
				fmt.Fprintln(w, "no numbering gaps: nothing to repair")
				return nil
			}
			for _, m := range res.Moved {
				fmt.Fprintf(w, "  moved  %s -> %s\n", m.From, m.To)
			}
			fmt.Fprintf(w, "closed the gaps: %d file(s) moved, commit %s on %s\n", len(res.Moved), short(res.Commit), res.Branch)
			return nil
		},
	}
}

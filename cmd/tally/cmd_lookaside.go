package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/release"
)

func lookasideCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:  "lookaside",
		Usage: "serve the signatures to podman and skopeo from a web server",
		Description: `Stock clients fetch signatures over HTTP from a lookaside URL: export
writes the tree they read from one commit into a directory a web server
serves.

EXAMPLES:
   tally lookaside export --repo /srv/git/signatures.git /srv/www/sigs`,
		Subcommands: []*cli.Command{lookasideExportCommand(env)},
		Action:      unknownSubcommand,
	}
}

func lookasideExportCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write the lookaside tree of a commit into a directory a web server serves",
		ArgsUsage: "DIR",
		Description: `Writes what stock clients read from one commit of a signatures repository,
bare or not, into DIR: the lookaside files (NAMESPACE/NAME@sha256=DIGEST/
signature-N), tally.toml, the keyring and the release manifests (releases/),
plus .tally-lookaside naming the commit. Build records and approvals stay in
git. The new tree is written beside DIR and swapped in at once, so a web
server serving DIR never serves half a tree; exporting the same commit again
writes nothing (--force writes it anyway, repairing files changed by hand).
DIR must be new, empty, or an earlier export.

Point registries.d's lookaside at the URL DIR is served at (tally policy
export --lookaside URL). On the server, tally hooks install --server
--lookaside DIR refreshes DIR after each accepted push.

EXAMPLES:
   tally lookaside export --repo /srv/git/signatures.git /srv/www/sigs
   tally lookaside export --repo signatures --commit 2026.11.0 ./public`,
		Flags: []cli.Flag{
			repoFlag(),
			&cli.StringFlag{Name: "commit", Usage: "the `REVISION` to export (branch, tag or commit; default HEAD)"},
			&cli.BoolFlag{Name: "force", Usage: "write the tree even when DIR holds that commit already (repairs files changed by hand)"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("lookaside export takes one DIR, got %d arguments", c.NArg())
			}
			repo, err := openRepo(env, c.Path("repo"))
			if err != nil {
				return err
			}
			defer repo.Close()
			res, err := release.ExportLookaside(repo, release.LookasideOptions{Dir: c.Args().First(), Revision: c.String("commit"), Force: c.Bool("force")})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(env.stdout, res)
			}
			if res.Unchanged {
				fmt.Fprintf(env.stdout, "%s holds %s already\n", res.Dir, short(res.Commit))
				return nil
			}
			fmt.Fprintf(env.stdout, "exported %s to %s: %d file(s), %d signature(s)\n", short(res.Commit), res.Dir, res.Files, res.Signatures)
			return nil
		},
	}
}

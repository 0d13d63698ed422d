package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release"
)

func bundleCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:  "bundle",
		Usage: "one file to verify a release offline: create it, lay it out for podman and skopeo",
		Description: `A release bundle is one git bundle file holding everything needed to verify
a cut release with no network and no repository: create writes it, tally
verify --bundle checks it, extract lays its signatures out for stock clients.

EXAMPLES:
   tally bundle create --repo signatures --release 2026.11.0 stagex-2026.11.0.bundle
   tally verify --bundle stagex-2026.11.0.bundle --keyring maintainers.pgp --threshold 2
   tally bundle extract stagex-2026.11.0.bundle /srv/sigs`,
		Subcommands: []*cli.Command{bundleCreateCommand(env), bundleExtractCommand(env)},
		Action:      unknownSubcommand,
	}
}

func bundleCreateCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "write a git bundle with everything needed to verify a release offline",
		ArgsUsage: "FILE",
		Description: `Writes FILE, a standard git bundle (version 2, git bundle verify accepts it)
of the checked-out branch, HEAD and the release's signed tag: the whole
history of the signatures repository, so it holds the release manifest,
every signature file and the commit it entered in (the time-of-entry rules
need it), the trust policy and its keyring. The release must be cut and still
meet quorum, as for tally release publish; nothing is written otherwise.

Consumers verify it with no network and no repository:
   tally verify --bundle FILE [--keyring KEYS --threshold M] [--local OUT]

EXAMPLES:
   tally bundle create --repo signatures --release 2026.11.0 stagex-2026.11.0.bundle
   tally verify --bundle stagex-2026.11.0.bundle --keyring maintainers.pgp --threshold 2`,
		Flags: []cli.Flag{
			repoFlag(),
			&cli.StringFlag{Name: "release", Usage: "the cut release VERSION the bundle is for (required)"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("bundle create takes one FILE, got %d argument(s)", c.NArg())
			}
			if c.String("release") == "" {
				return usagef("bundle create needs --release VERSION: a bundle is for one cut release")
			}
			repo, err := openRepo(env, c.Path("repo"))
			if err != nil {
				return err
			}
			defer repo.Close()
			res, err := release.CreateBundle(c.Context, repo, c.Args().First(), release.BundleOptions{Release: c.String("release"), Now: timeNow})
			if err != nil {
				return notReady(err, c.Path("repo"), c.String("release"))
			}
			if c.Bool("json") {
				return writeJSON(env.stdout, res)
			}
			fmt.Fprintf(env.stdout, "wrote %s: release %s (tag at %s), branch %s at %s, %d bytes\n",
				res.File, res.Release, short(res.Tagged), res.Branch, short(res.Commit), res.Size)
			return nil
		},
	}
}

func bundleExtractCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "extract",
		Usage:     "lay out a bundle's signatures as a file:// lookaside for podman and skopeo",
		ArgsUsage: "FILE DIR",
		Description: `Writes into DIR (empty or new) the signature files of the bundle's branch
tip, exactly as a checkout of the signatures repository serves them:
DIR/<namespace>/<name>@sha256=<hex>/signature-N. Stock podman and skopeo
read them from the file:// lookaside that tally policy export --bundle
writes into registries.d, so they verify offline too, from a registry
mirror inside the air gap.

EXAMPLES:
   tally bundle extract stagex-2026.11.0.bundle /srv/sigs
   tally policy export --bundle stagex-2026.11.0.bundle --release 2026.11.0 \
       --registry mirror.internal/stagex --lookaside file:///srv/sigs --out policy/
   skopeo --policy policy/policy.json --registries.d policy/registries.d \
       copy docker://mirror.internal/stagex/core-gcc:14.2.0 oci:./gcc:14.2.0`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "release", Usage: "the release VERSION, when the bundle holds several"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usagef("bundle extract takes FILE and DIR, got %d argument(s)", c.NArg())
			}
			b, err := release.OpenBundle(c.Args().Get(0))
			if err != nil {
				return bundleError(err)
			}
			defer b.Repo.Close()
			res, err := release.ExtractBundle(b, c.String("release"), c.Args().Get(1))
			if errors.Is(err, release.ErrExtractTarget) {
				return fail(exitRefused, err, "extract into a new or empty directory: nothing there is overwritten")
			}
			if err != nil {
				return bundleError(err)
			}
			if c.Bool("json") {
				return writeJSON(env.stdout, res)
			}
			fmt.Fprintf(env.stdout, "wrote %d signature file(s) of release %s into %s\n", res.Files, res.Release, res.Dir)
			fmt.Fprintf(env.stdout, "next: tally policy export --bundle %s --release %s --registry REGISTRY/NAMESPACE --lookaside %s --out POLICY_DIR\n",
				c.Args().Get(0), res.Release, res.Lookaside)
			return nil
		},
	}
}

// bundleFlag is verify's and policy export's --bundle.
func bundleFlag() cli.Flag {
	return &cli.PathFlag{Name: "bundle", TakesFile: true,
		Usage: "read a bundle (tally bundle create) instead of a repository: offline, no --repo"}
}

// openRepoOrBundle opens --bundle when it is set, else --repo.
func openRepoOrBundle(env *environment, c *cli.Context) (*gitstore.Repo, error) {
	if !c.IsSet("bundle") {
		return openRepo(env, c.Path("repo"))
	}
	if c.IsSet("repo") {
		return nil, usagef("give --bundle or --repo, not both")
	}
	b, err := release.OpenBundle(c.Path("bundle"))
	if err != nil {
		return nil, bundleError(err)
	}
	return b.Repo, nil
}

// bundleError gives the bundle's errors their exit code and hint.
func bundleError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, release.ErrBadBundle):
		return fail(exitData, err, "the file is damaged, truncated or not made by tally bundle create: fetch it again and compare its checksum with the publisher's")
	case errors.Is(err, release.ErrBundleRelease):
		return fail(exitData, err, "choose the release with --release VERSION (git bundle list-heads FILE lists its tags)")
	case errors.Is(err, release.ErrNotOnBranch):
		return fail(exitData, err, "the bundle's release tag is outside its history: it was not made by tally bundle create")
	}
	return err
}

package main

import (
	"fmt"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/release"
)

func policyCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:  "policy",
		Usage: "write containers policy for consumers (podman, skopeo, CRI-O)",
		Description: `Consumers verify StageX images with stock tools: export writes the
policy.json and registries.d/ that make podman, skopeo and CRI-O check the
maintainers' signatures at the lookaside URL.

EXAMPLES:
   tally policy export --repo signatures --release 2026.11.0 --registry ghcr.io/stagex \
       --lookaside https://sigs.example.org --out policy/`,
		Subcommands: []*cli.Command{policyExportCommand(env)},
		Action:      unknownSubcommand,
	}
}

func policyExportCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write policy.json and registries.d for podman, skopeo and CRI-O",
		ArgsUsage: " ",
		Description: `Writes OUT/policy.json and OUT/registries.d/<namespace>.yaml so that stock
podman, skopeo and CRI-O verify the images in REGISTRY/NAMESPACE against the
signatures served at the lookaside URL, with the maintainers' keys embedded.
When the registry is not the signed identity prefix (a mirror, or images
signed as stagex/<name> but pulled from ghcr.io/stagex), the policy remaps it
(remapIdentity).

Stock policy can require "any one of these keys" or "each of these keys", but
never "any M of these N": --require chooses the closest form, and the command
says what it cannot express.
   quorum  (default) per image of --release VERSION, one signature by each of
           the M keys that signed all its platforms; the rest of the
           namespace is rejected. Export again for each release.
   all     one signature by every maintainer.
   any     one signature by any maintainer (weaker than the quorum).

A signature names one version tag, so by default only pulls by :<version> and
by digest pass. --any-tag (with --release) gives each image of the release
its own scope matching signatures by repository (exactRepository), so
:latest and :sx<VERSION> pulls pass too; the cost: any signed image of that
repository passes under any tag, so a registry could serve an older release
as :latest (a rollback), and a later image is refused until you export again.

--registry may be repeated (docker.io/stagex and quay.io/stagex): one policy
and one registries.d file cover each. --mirror HOST/NAMESPACE adds the
registries.d entry a registries.conf mirror (or rewrite) needs: podman and
skopeo look signatures up under the registry they actually pull from.

EXAMPLES:
   tally policy export --repo ../signatures --release 2026.11.0 \
       --registry ghcr.io/stagex --lookaside https://sigs.example.org --out policy/
   skopeo --policy policy/policy.json --registries.d policy/registries.d \
       copy docker://ghcr.io/stagex/core-gcc:14.2.0 dir:./gcc
   tally policy export --repo ../signatures --release 2026.11.0 --any-tag \
       --registry docker.io/stagex --registry quay.io/stagex \
       --mirror registry.lan/stagex --lookaside https://sigs.example.org --out policy/`,
		Flags: []cli.Flag{
			repoFlag(),
			bundleFlag(),
			&cli.StringSliceFlag{Name: "registry", Usage: "REGISTRY/NAMESPACE consumers pull the images from (repeat for several)", Required: true},
			&cli.StringSliceFlag{Name: "mirror", Usage: "REGISTRY/NAMESPACE a registries.conf mirror pulls from instead (repeat for several)"},
			&cli.BoolFlag{Name: "any-tag", Usage: "admit pulls by any tag (:latest, :sx<VERSION>) of the release's images, not only :<version> and digest (needs --release; allows rollbacks)"},
			&cli.StringFlag{Name: "lookaside", Usage: "URL the signatures are served at (https://…, or file:///path/to/checkout)", Required: true},
			&cli.PathFlag{Name: "out", Usage: "directory to write policy.json and registries.d/ into", Required: true},
			&cli.StringFlag{Name: "require", Value: release.RequireQuorum, Usage: "quorum, all or any"},
			&cli.StringFlag{Name: "release", Usage: "the release VERSION whose signers --require quorum pins"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("policy export takes no arguments, got %q", c.Args().First())
			}
			switch c.String("require") {
			case release.RequireQuorum, release.RequireAll, release.RequireAny:
			default:
				return usagef("--require %q: want quorum, all or any", c.String("require"))
			}
			if c.String("require") == release.RequireQuorum && c.String("release") == "" {
				return fail(exitUsage, fmt.Errorf("--require quorum needs --release VERSION: it pins the keys that signed that release"),
					"pass --release VERSION, or --require all or --require any for a policy that does not depend on a release")
			}
			repo, err := openRepoOrBundle(env, c)
			if err != nil {
				return err
			}
			defer repo.Close()
			regs := c.StringSlice("registry")
			if c.Bool("any-tag") && c.String("release") == "" {
				return usagef("--any-tag pins the images of one release: give --release VERSION")
			}
			pol, err := release.ExportPolicy(c.Context, repo, release.PolicyOptions{
				Registry:   regs[0],
				Registries: regs[1:],
				Mirrors:    c.StringSlice("mirror"),
				AnyTag:     c.Bool("any-tag"),
				Lookaside:  c.String("lookaside"),
				Require:    c.String("require"),
				Release:    c.String("release"),
				Now:        timeNow,
			})
			if err != nil {
				return notReady(err, c.Path("repo"), c.String("release"))
			}
			out := c.Path("out")
			if err := pol.WriteDir(out); err != nil {
				return fail(exitIOErr, err)
			}
			if c.Bool("json") {
				return writeJSON(env.stdout, pol)
			}
			w := env.stdout
			fmt.Fprintf(w, "wrote %s and %s\n", filepath.Join(out, "policy.json"), filepath.Join(out, "registries.d", pol.RegistriesFile))
			for _, s := range pol.Scopes {
				switch {
				case s.Reject:
					fmt.Fprintf(w, "  %s: reject\n", s.Scope)
				case s.AnyOf:
					fmt.Fprintf(w, "  %s: a signature by any of %d key(s)\n", s.Scope, len(s.Keys))
				default:
					fmt.Fprintf(w, "  %s: a signature by each of", s.Scope)
					for i, k := range s.Keys {
						sep := ","
						if i == 0 {
							sep = ""
						}
						fmt.Fprintf(w, "%s %s (%s)", sep, release.ShortName(k.Name), k.Fingerprint)
					}
					fmt.Fprintln(w)
				}
			}
			fmt.Fprintln(w, "what this policy can and cannot express:")
			for _, n := range pol.Notes {
				fmt.Fprintf(w, "  - %s\n", n)
			}
			fmt.Fprintf(w, "use it: skopeo --policy %s --registries.d %s copy docker://%s/<name>:<version> …\n",
				filepath.Join(out, "policy.json"), filepath.Join(out, "registries.d"), pol.Registry)
			return nil
		},
	}
}

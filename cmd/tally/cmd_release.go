package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/release"
	"github.com/tally-sig/tally/release/policy"
)

func releaseCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:  "release",
		Usage: "plan, cut and publish a release once every image meets the quorum",
		Description: `A release manager's round, once the maintainers have signed: plan shows what
would be released and what blocks it; cut commits releases/VERSION/ and the
signed tag VERSION; publish pushes the images and their signatures.

EXAMPLES:
   tally release plan    --repo sigs 2026.11.0                  # what would be released, and what blocks it
   tally release cut     --repo sigs 2026.11.0 --key me.sec.asc # releases/2026.11.0/ + the signed tag 2026.11.0
   tally release publish --repo sigs 2026.11.0 --out out --to ghcr.io/stagex
   tally policy export   --repo sigs --release 2026.11.0 --registry ghcr.io/stagex \
       --lookaside https://sigs.example.org --out policy/`,
		Subcommands: []*cli.Command{
			releasePlanCommand(env),
			releaseCutCommand(env),
			releasePublishCommand(env),
		},
		Action: unknownSubcommand,
	}
}

// unknownSubcommand is the action of a command that only has subcommands:
// an unknown one is a usage error, none shows the help.
func unknownSubcommand(c *cli.Context) error {
	if c.NArg() > 0 {
		var names []string
		for _, s := range c.Command.Subcommands {
			if s.Name != "help" {
				names = append(names, s.Name)
			}
		}
		return usagef("tally %s has no command %q (it has: %s)", c.Command.Name, c.Args().First(), strings.Join(names, ", "))
	}
	return cli.ShowSubcommandHelp(c)
}

func releasePlanCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "show what a release would publish and everything that blocks it",
		ArgsUsage: "VERSION",
		Description: `Counts the quorum of every image the maintainers recorded for release VERSION
(tally sign --release VERSION) at the tip of the checked-out branch, under the
repository's trust policy, and lists per image and platform the digest that
would be released and the maintainers whose signatures count. Everything that
blocks the release is named: an image below quorum, a divergent build (two
maintainers built different digests for one platform), an invalid signature
file, one image under two versions.

Exits 0 when the release is ready to cut, 1 when an image is below quorum or
divergent, 2 when an invalid signature file blocks it; a VERSION without build
records is a usage error (64). Signatures that count but that stock podman and
skopeo refuse now (a key expired or superseded since, a subkey) are listed as
clients-refuse warnings; --strict-clients counts only what those clients
accept.

EXAMPLES:
   tally release plan --repo ../signatures 2026.11.0
   tally release plan --repo ../signatures 2026.11.0 --json`,
		Flags: []cli.Flag{repoFlag(), jsonFlag(), strictClientsFlag()},
		Action: func(c *cli.Context) error {
			version, err := versionArg(c)
			if err != nil {
				return err
			}
			repo, err := openRepo(env, c.Path("repo"))
			if err != nil {
				return err
			}
			defer repo.Close()
			plan, err := release.NewPlan(c.Context, repo, release.PlanOptions{Release: version, Now: timeNow,
				StrictClients: c.Bool("strict-clients")})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if err := writeJSON(env.stdout, plan); err != nil {
					return err
				}
			} else {
				printPlan(env.stdout, plan, c.Path("repo"))
			}
			switch {
			case plan.Invalid():
				return exitStatus(exitInvalid)
			case !plan.Ready():
				return exitStatus(exitNoQuorum)
			}
			return nil
		},
	}
}

func releaseCutCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "cut",
		Usage:     "commit the release manifest and create the signed tag VERSION",
		ArgsUsage: "VERSION",
		Description: `Refuses unless "tally release plan VERSION" passes. Then commits
releases/VERSION/digests.txt (the StageX digest list: one "<hex> <name>" line
per per-platform image manifest, sorted, so a multi-platform image has one
line per platform) and releases/VERSION/release.json (images, versions,
platforms, digests and signers), in a commit signed by your key, and creates
the signed annotated tag VERSION on that commit; git verify-tag accepts it.
The tag message lists every image, version and signer. An existing tag is
never moved (exit 77). If the tag could not be made, running the command
again tags the commit it already made.

EXAMPLES:
   tally release cut --repo ../signatures 2026.11.0 --key ~/keys/me.sec.asc
   tally release cut --repo ../signatures 2026.11.0 --gpg --local-user FINGERPRINT`,
		Flags: append([]cli.Flag{repoFlag(), jsonFlag()}, signerFlags(true)...),
		Action: func(c *cli.Context) error {
			version, err := versionArg(c)
			if err != nil {
				return err
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
			res, err := release.Cut(c.Context, repo, release.CutOptions{Release: version, Signer: signer, Now: timeNow})
			if err != nil {
				return notReady(err, c.Path("repo"), version)
			}
			if c.Bool("json") {
				return writeJSON(env.stdout, res)
			}
			images, manifests := 0, 0
			for _, img := range res.Manifest.Images {
				images++
				manifests += len(img.Platforms)
			}
			w := env.stdout
			fmt.Fprintf(w, "release %s: %d image(s), %d platform manifest(s)\n", res.Release, images, manifests)
			if res.Committed {
				fmt.Fprintf(w, "committed %s and %s as %s on %s\n", release.ManifestPath(version, release.DigestListFile),
					release.ManifestPath(version, release.ManifestFile), short(res.Commit), res.Branch)
			} else {
				fmt.Fprintf(w, "the manifest was committed already in %s\n", short(res.Commit))
			}
			fmt.Fprintf(w, "tagged %s (signed by %s)\n", res.Release, res.Signer)
			fmt.Fprintf(w, "next: tally release publish --repo %s %s --out OUT --to REGISTRY/NAMESPACE\n", c.Path("repo"), version)
			return nil
		},
	}
}

func releasePublishCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "publish",
		Usage:     "push a cut release's images and signatures",
		ArgsUsage: "VERSION",
		Description: `Publishes the images of the cut release VERSION from your build output: each
image goes to REGISTRY/NAMESPACE/<name> as the layout built it (a
multi-platform image as its image index with every platform; every manifest
byte for byte, so each per-platform digest is the one the maintainers signed),
under the tags :<version>, :sx<VERSION> and :latest (choose others with --tags;
{version} is the image's version, {release} the release's). Then it pushes the
signatures branch and the tag VERSION to the branch's upstream, where the
lookaside is served from.

Nothing is written unless the tag is in the history of the checked-out branch,
the release still meets quorum there, and every local layout holds exactly the
released digests (exit 3 otherwise). What the destination already has is
skipped: a second run writes nothing, and after a failure (exit 75 when the
registry is unreachable) running it again finishes the job.

--to may be given several times (StageX publishes to docker.io and quay.io):
the release goes to each in turn, each resumable on its own, and the
signatures are pushed once every destination has the images. A registry that
fails does not stop the others; run the command again to finish it.
--to oci:DIR publishes into a local OCI image layout instead (for air-gapped
mirrors): each tag is an index.json entry named <namespace>/<name>:<tag>.

` + registryCredentialsHelp + `

EXAMPLES:
   tally release publish --repo ../signatures 2026.11.0 --out out --to ghcr.io/stagex
   tally release publish --repo ../signatures 2026.11.0 --out out --to docker.io/stagex --to quay.io/stagex
   tally release publish --repo ../signatures 2026.11.0 --out out --to registry.lan:5000/stagex --cert-dir /etc/containers/certs.d/registry.lan:5000
   tally release publish --repo ../signatures 2026.11.0 --out out --to oci:/srv/mirror --no-push
   tally release publish --repo ../signatures 2026.11.0 --out out --to quay.io/stagex --tags '{version}' --tags latest`,
		Flags: []cli.Flag{
			repoFlag(),
			&cli.PathFlag{Name: "out", Value: "out", Usage: "the build output directory holding one OCI layout per image"},
			&cli.StringSliceFlag{Name: "to", Usage: "REGISTRY/NAMESPACE to push to, or oci:DIR for a local OCI layout (required; repeat for several)"},
			&cli.StringSliceFlag{Name: "tags", Usage: "tags to give each image ({version}, {release}); default: {version}, sx{release}, latest"},
			&cli.BoolFlag{Name: "no-push", Usage: "do not push the signatures branch and the tag to the upstream"},
			registryTLSFlags()[0], registryTLSFlags()[1],
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			version, err := versionArg(c)
			if err != nil {
				return err
			}
			var to []string
			for _, t := range c.StringSlice("to") {
				if t = strings.TrimSpace(t); t != "" {
					to = append(to, t)
				}
			}
			if len(to) == 0 {
				return usagef("say where to publish: --to REGISTRY/NAMESPACE or --to oci:DIR")
			}
			repo, err := openRepo(env, c.Path("repo"))
			if err != nil {
				return err
			}
			defer repo.Close()
			repo.SetRemoteOutput(env.stderr) // the remote's hook output, as git push shows it
			var tags []string
			if c.IsSet("tags") {
				for _, t := range c.StringSlice("tags") {
					for _, s := range strings.Split(t, ",") {
						if s = strings.TrimSpace(s); s != "" {
							tags = append(tags, s)
						}
					}
				}
				if len(tags) == 0 {
					return usagef("--tags names no tag")
				}
			}
			bar := &publishBar{w: env.stderr}
			results, err := release.PublishEach(c.Context, repo, release.PublishOptions{
				Release:  version,
				OutDir:   c.Path("out"),
				Tags:     tags,
				SkipGit:  c.Bool("no-push"),
				TLS:      registryTLSOptions(c),
				Now:      timeNow,
				Progress: bar.update,
			}, to)
			bar.done()
			if !c.Bool("json") {
				for _, res := range results {
					printPublish(env.stdout, res)
				}
			}
			if err != nil {
				if len(to) > 1 && !c.Bool("json") {
					fmt.Fprintln(env.stdout, "not every destination has the release: the signatures were not pushed; run the command again to finish")
				}
				return notReady(err, c.Path("repo"), version)
			}
			var git *release.GitPublished
			for _, res := range results {
				for _, w := range res.Warnings {
					fmt.Fprintf(env.stderr, "tally: warning: %s\n", w)
				}
				if res.Git != nil {
					git = res.Git
				}
			}
			if c.Bool("json") {
				// One destination: the result as it always was; several:
				// an array of them, in the order of --to.
				if len(results) == 1 {
					return writeJSON(env.stdout, results[0])
				}
				return writeJSON(env.stdout, results)
			}
			if git != nil {
				fmt.Fprintf(env.stdout, "pushed %s and tag %s to %s\n", git.Branch, git.Tag, git.Remote)
			} else {
				fmt.Fprintln(env.stdout, "the signatures branch and tag were not pushed (--no-push)")
			}
			return nil
		},
	}
}

// versionArg returns the one VERSION argument, after applying any flags
// given after it (urfave/cli stops reading flags at the first argument, but
// "tally release cut VERSION --key K" is natural to type).
func versionArg(c *cli.Context) (string, error) {
	args := c.Args().Slice()
	switch {
	case len(args) == 0:
		return "", usagef("name the release VERSION, as in: %s --repo DIR 2026.11.0", commandName(c))
	case len(args) > 1:
		return "", usagef("%s takes one VERSION, got %q", commandName(c), strings.Join(args, " "))
	}
	if err := policy.CheckReleaseName(args[0]); err != nil {
		return "", fail(exitUsage, err)
	}
	return args[0], nil
}

// notReady turns a release that is not ready into exit 1 (or 2 for an
// invalid signature file) with a hint, and passes other errors on.
func notReady(err error, repo, version string) error {
	var nr *release.NotReadyError
	if !errors.As(err, &nr) {
		return err
	}
	code := exitNoQuorum
	if nr.Plan.Invalid() {
		code = exitInvalid
	}
	return fail(code, err, fmt.Sprintf("nothing was written; see: tally release plan --repo %s %s", repo, version))
}

func printPlan(w io.Writer, p *release.Plan, repo string) {
	manifests := 0
	for _, img := range p.Images {
		manifests += len(img.Platforms)
	}
	fmt.Fprintf(w, "release %s at %s: %d image(s), %d platform manifest(s); quorum %d of %d maintainer key(s)\n",
		p.Release, short(p.Commit), len(p.Images), manifests, p.Threshold, len(p.Maintainers))
	if len(p.Images) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  IMAGE\tPLATFORM\tDIGEST\tSIGNED\tBY\tSTATE")
		for _, img := range p.Images {
			label := img.Reference
			state := "ok"
			switch {
			case img.Divergent:
				state = "DIVERGENT"
			case !img.Quorum:
				state = "BELOW QUORUM"
			}
			rows := append(append([]release.ReleasedPlatform(nil), img.Platforms...), img.Divergences...)
			if len(rows) == 0 {
				fmt.Fprintf(tw, "  %s\t-\t-\t-\t-\t%s\n", label, state)
			}
			divergent := len(img.Platforms)
			for i, pl := range rows {
				names := make([]string, len(pl.Signers))
				for i, s := range pl.Signers {
					names[i] = release.ShortName(s.Name)
				}
				st := state
				if i >= divergent {
					st = "DIVERGENT"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%d/%d\t%s\t%s\n", label, pl.Platform, release.ShortDigest(pl.Digest),
					len(pl.Signers), p.Threshold, strings.Join(names, ", "), st)
				label = ""
			}
		}
		tw.Flush()
	}
	if len(p.Warnings) > 0 {
		fmt.Fprintf(w, "warnings (%d):\n", len(p.Warnings))
		for _, pr := range p.Warnings {
			fmt.Fprintf(w, "  %s: %s\n", pr.Path, pr.Error)
		}
	}
	if !p.Ready() {
		fmt.Fprintf(w, "not ready: %d blocker(s)\n", len(p.Blockers))
		for _, b := range p.Blockers {
			if b.Image != "" {
				fmt.Fprintf(w, "  %s: %s: %s\n", b.Image, b.Kind, b.Message)
			} else {
				fmt.Fprintf(w, "  %s: %s\n", b.Kind, b.Message)
			}
		}
		return
	}
	if p.Tagged != "" {
		fmt.Fprintf(w, "ready, and cut already: tag %s points at %s\n", p.Release, short(p.Tagged))
		return
	}
	fmt.Fprintf(w, "ready to cut: tally release cut --repo %s %s --key KEY.sec.asc (or --gpg)\n", repo, p.Release)
}

func printPublish(w io.Writer, res *release.PublishResult) {
	for _, img := range res.Images {
		what := "already there"
		if img.Uploaded {
			what = "uploaded"
		}
		var tags []string
		for _, t := range img.Tags {
			tags = append(tags, ":"+t.Tag+" "+t.State)
		}
		fmt.Fprintf(w, "%s:%s -> %s@%s (%d platform(s), %s; %s)\n", img.Name, img.Version, img.Repository,
			release.ShortDigest(img.Digest), len(img.Manifests), what, strings.Join(tags, ", "))
	}
}

// publishBar shows upload progress on a terminal, one image at a time.
type publishBar struct {
	w     io.Writer
	bar   *progress
	image string
}

func (b *publishBar) update(p release.PublishProgress) {
	if p.Image != b.image || b.bar == nil {
		b.done()
		b.image = p.Image
		b.bar = newProgress(b.w, fmt.Sprintf("publishing %s (%d/%d) KiB", p.Image, p.Index, p.Images))
	}
	if p.Total > 0 {
		b.bar.Update(int(p.Complete>>10), int(p.Total>>10))
	}
	if p.Done {
		b.done()
	}
}

func (b *publishBar) done() {
	if b.bar != nil {
		b.bar.Done()
		b.bar = nil
	}
}

package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/release"
	"github.com/tally-sig/tally/release/registry"
)

func verifyCommand(env *environment) *cli.Command {
	flags := append(checkFlags(), &cli.PathFlag{Name: "local", TakesFile: true,
		Usage: "also check that the images of your build output OUT_DIR have exactly the digests that met quorum"},
		strictClientsFlag(), bundleFlag())
	flags = append(flags, registryTLSFlags()...)
	flags = append(flags, stateFlags()...)
	return &cli.Command{
		Name:      "verify",
		Usage:     "pass/fail gate: every image meets quorum, no signature file is invalid, your build matches",
		ArgsUsage: "[NAME... | docker://HOST/NAMESPACE/NAME:TAG...]",
		Description: `The judgement of tally status as a gate for scripts and CI, over the whole
repository, one --release, or the named images. It prints what fails and
exits with a code that says why.

With --local OUT_DIR it also checks your own build ("I ran make; do my hashes
match?"): every per-platform digest of the layouts in OUT_DIR must be one that
met quorum. A docker:// argument checks what a registry serves, the digest a
consumer would actually pull. With --local or docker:// and no NAME, only
those images are checked; add --release to compare with one release.

` + registryCredentialsHelp + `

With --bundle FILE (tally bundle create) it verifies the release the bundle
holds, offline, with no repository: the same judgement and exit codes. A
damaged, truncated or incomplete bundle never passes (exit 65).

With --state FILE it records the commit and the trust policy it verified
(after a pass) and refuses with exit 77 a later history that no longer
holds that commit (rewritten or rolled back), a trust policy that one
superseded (rolled back) and, with --max-age, a repository whose newest
commit signed by a trusted key is older than that (frozen).

EXIT CODES:
   0  every image in scope meets quorum, no file is invalid, every compared
      digest met quorum
   1  quorum not met: an image is missing signatures, is divergent, is backed
      only by untrusted or duplicate signatures, or a compared image has no
      digest that met quorum
   2  an invalid signature file exists: it does not parse or verify, or claims
      another digest or image than the place it sits in
   3  a local build or registry image differs from what met quorum
   When several apply the most serious wins: 2, then 3, then 1. Untrusted
   signers, duplicates, legacy payloads and gaps are warnings, never 2: a
   consumer whose keyring is narrower than the repository's must not see
   other maintainers' signatures as tampering. A NAME that matches no image
   and a --release without build records are usage errors (64).

A signature that counts for tally's quorum but that stock podman and skopeo
refuse now (its key expired or was revoked as superseded since it entered
the repository; a subkey made it, which clients before containers/image 5.37
reject) gives a WARN line per image. --strict-clients counts only what those
clients accept, for release managers who publish to stock consumers.

EXAMPLES:
   tally verify --repo signatures --release 2026.11.0
   make && tally verify --repo ../signatures --release 2026.11.0 --local out
   tally verify --bundle stagex-2026.11.0.bundle --keyring mine.pgp --threshold 2 --local out
   tally verify --repo signatures --keyring mine.pgp --threshold 2 docker://docker.io/stagex/core-gcc:14.2.0`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			var names, refs []string
			for _, a := range c.Args().Slice() {
				if strings.Contains(a, "://") {
					if !strings.HasPrefix(a, "docker://") {
						return usagef("%q: registry images are given as docker://HOST/NAMESPACE/NAME:TAG", a)
					}
					refs = append(refs, a)
					continue
				}
				names = append(names, a)
			}
			opts, err := checkOptions(c, names)
			if err != nil {
				return err
			}
			opts.StrictClients = c.Bool("strict-clients")
			vopts := release.VerifyOptions{CheckOptions: opts, Registry: refs}
			if len(refs) > 0 {
				vopts.Keychain = registry.DefaultKeychain
				vopts.TLS = registryTLSOptions(c)
			}
			if out := c.Path("local"); out != "" {
				images, err := buildout.Read(out, names)
				if err != nil {
					return err
				}
				if len(images) == 0 {
					return fail(exitData, fmt.Errorf("no OCI image layouts in %s", out), "run make first, or point --local at the build output")
				}
				vopts.Local = images
			}
			res, err := verifyChecked(env, c, vopts)
			if errors.Is(err, registry.ErrRegistryUnavailable) {
				return fail(exitTempFail, errors.New(err.Error()), "the registry could not be reached or failed; run the command again")
			}
			if errors.Is(err, registry.ErrImageNotFound) {
				return fail(exitData, err, "check the reference: the registry serves no image by that name and tag")
			}
			if errors.Is(err, registry.ErrBadReference) {
				return fail(exitUsage, err)
			}
			if err != nil {
				return err
			}
			warn(env, res.Warnings)
			if c.Bool("json") {
				if err := writeJSON(env.stdout, res); err != nil {
					return err
				}
			} else {
				printVerify(env.stdout, res, newPalette(env.stdout))
			}
			return exitFor(res.Outcome)
		},
	}
}

// printVerify prints what fails, the comparisons and the verdict.
func printVerify(w io.Writer, res *release.VerifyResult, p palette) {
	rep := res.Report
	printHeader(w, rep)
	for _, img := range rep.Images {
		if img.Superseded || (img.Quorum && !img.Divergent) {
			continue
		}
		name := img.Reference
		if img.Release != "" {
			name += " (release " + img.Release + ")"
		}
		for _, why := range img.Failures(rep.Threshold) {
			fmt.Fprintf(w, "%s %s: %s\n", p.red("FAIL"), name, why)
		}
	}
	if len(rep.Images) == 0 {
		fmt.Fprintf(w, "%s no signed images in scope\n", p.red("FAIL"))
	}
	clientWarnings(w, rep, p)
	for _, c := range res.Comparisons {
		line := fmt.Sprintf("%s %s %s %s", c.Source, c.Location, orUnknown(c.Platform), c.Digest)
		switch c.State {
		case release.CompareMatch:
			fmt.Fprintf(w, "%s: %s\n", line, p.green("matches what met quorum"))
		case release.CompareDiffers:
			fmt.Fprintf(w, "%s: %s %s\n", line, p.red("DIFFERS from what met quorum:"), strings.Join(c.Quorum, ", "))
		default:
			fmt.Fprintf(w, "%s: %s\n", line, p.yellow("no digest of this image and platform met quorum"))
		}
	}
	printProblems(w, rep.Problems, p)
	var met int
	for _, img := range rep.Images {
		if !img.Superseded && img.Quorum && !img.Divergent {
			met++
		}
	}
	switch res.Outcome {
	case release.OutcomeInvalid:
		fmt.Fprintf(w, "\n%s\n", p.red("FAILED: invalid signature files (exit 2)"))
	case release.OutcomeMismatch:
		fmt.Fprintf(w, "\n%s\n", p.red("FAILED: a digest differs from what met quorum (exit 3)"))
	case release.OutcomeNoQuorum:
		fmt.Fprintf(w, "\n%s\n", p.yellow("FAILED: quorum not met (exit 1)"))
	default:
		fmt.Fprintf(w, "\n%s: %d image(s) meet quorum\n", p.green("OK"), met)
	}
}

func orUnknown(platform string) string {
	if platform == "" {
		return "(platform unknown)"
	}
	return platform
}

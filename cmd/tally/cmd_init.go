package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/examples"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release"
)

func initCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "init",
		Usage:     "create a signatures repository, or adopt an existing lookaside repository",
		ArgsUsage: " ",
		Description: `Writes the trust policy (tally.toml: namespace, identity prefix, threshold,
keyring path) and the maintainers' public keys (one binary keyring file,
<namespace>-keyring.pgp, as StageX keeps it) and commits them. DIR is created
and initialised as a git repository when it does not exist; an existing
repository that already holds a lookaside tree is adopted with everything in it.

Refuses a threshold below 1 or above the number of keys, the same key twice,
a secret key given as a public key, and keys that stock clients cannot verify.

--extra-path admits files outside tally's own, such as the CI workflow that
runs tally check (tally check refuses any other file); later changes to the
list are trust policy changes, which need approvals. --ci github (or forgejo)
commits that workflow (.github/workflows/tally-check.yml, or
.forgejo/workflows/) with the policy and admits it.

EXAMPLE:
   tally init --repo signatures --namespace stagex --threshold 2 \
       --key-file alice.pub.asc --key-file bob.pub.asc \
       --extra-path .github/workflows/tally-check.yml --extra-path README.md`,
		Flags: append([]cli.Flag{
			repoFlag(),
			&cli.StringFlag{Name: "namespace", Value: "stagex", Usage: "repository path of the images, without registry host"},
			&cli.StringFlag{Name: "identity-prefix", Usage: "signed references are PREFIX/NAME:TAG (default: the namespace)"},
			&cli.IntFlag{Name: "threshold", Usage: "M: distinct maintainer keys that must sign the same digest (default: 2, or 1 with one key)"},
			&cli.StringSliceFlag{Name: "key-file", Usage: "a maintainer's public key file (armored or binary); repeat for each maintainer"},
			&cli.BoolFlag{Name: "bare", Usage: "create a bare repository (for a server)"},
			&cli.StringFlag{Name: "ci", Usage: "also commit the CI workflow that runs tally check on pull requests, for `FORGE` github or forgejo, and admit it in extra_paths"},
			&cli.StringSliceFlag{Name: "extra-path", Usage: "a file, or a directory ending in /, outside tally's own that commits may change (extra_paths in tally.toml): the CI workflow (.github/workflows/tally-check.yml), README.md; repeat for each"},
			lockWaitFlag(),
			jsonFlag(),
		}, signerFlags(false)...),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("init takes no arguments, got %q", c.Args().First())
			}
			if c.IsSet("threshold") && c.Int("threshold") < 1 {
				return usagef("--threshold must be at least 1, got %d", c.Int("threshold"))
			}
			var keys []release.PublicKey
			for _, f := range c.StringSlice("key-file") {
				data, err := os.ReadFile(f)
				if err != nil {
					return fail(exitData, fmt.Errorf("reading key file: %w", err))
				}
				keys = append(keys, release.PublicKey{Source: f, Data: data})
			}
			var files []gitstore.Change
			if forge := c.String("ci"); forge != "" {
				path, data, err := examples.Workflow(forge)
				if err != nil {
					return usagef("--ci: %v", err)
				}
				files = append(files, gitstore.Change{Path: path, Data: data})
			}
			signer, err := openSigner(c, env, false)
			if err != nil {
				return err
			}
			dir := c.String("repo")
			repo, err := gitstore.Open(dir)
			if err != nil {
				if _, statErr := os.Stat(dir); statErr == nil && !isEmptyDir(dir) && !c.Bool("bare") {
					return fail(exitData, err, "run tally init in an empty directory, a new path, or a git repository")
				}
				if repo, err = gitstore.Init(dir, c.Bool("bare"), "main"); err != nil {
					return err
				}
			}
			defer repo.Close()
			res, err := release.Init(c.Context, repo, release.InitOptions{
				Namespace: c.String("namespace"), IdentityPrefix: c.String("identity-prefix"),
				Threshold: c.Int("threshold"), Keys: keys, Signer: signer, LockWait: c.Duration("lock-wait"),
				ExtraPaths: c.StringSlice("extra-path"), Files: files,
			})
			if err != nil {
				return err
			}
			for _, w := range res.Warnings {
				fmt.Fprintf(env.stderr, "tally: warning: %s\n", w)
			}
			if c.Bool("json") {
				return writeJSON(env.stdout, res)
			}
			fmt.Fprintf(env.stdout, "initialised %s: namespace %s, %d of %d maintainers must sign\n",
				dir, res.Policy.Namespace, res.Policy.Threshold, len(res.Keys))
			for _, k := range res.Keys {
				fmt.Fprintf(env.stdout, "  %s  %s\n", k.Fingerprint, k.Name)
			}
			if res.Adopted > 0 {
				fmt.Fprintf(env.stdout, "adopted %d existing lookaside file(s) unchanged\n", res.Adopted)
			}
			fmt.Fprintf(env.stdout, "commit %s on %s\n", short(res.Commit), res.Branch)
			for _, f := range files {
				fmt.Fprintf(env.stdout, "committed the CI workflow %s: set TALLY_COMMIT in it to the tally commit you reviewed\n", f.Path)
			}
			return nil
		},
	}
}

func isEmptyDir(dir string) bool {
	entries, err := os.ReadDir(dir)
	return err == nil && len(entries) == 0
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// repoFlag is the --repo flag every command shares.
func repoFlag() cli.Flag {
	return &cli.PathFlag{Name: "repo", Aliases: []string{"r"}, Value: ".", EnvVars: []string{"TALLY_REPO"},
		Usage: "the signatures repository (a checkout or a bare repository)"}
}

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print the result as JSON"}
}

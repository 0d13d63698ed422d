package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/examples"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
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

The keys come from --key-file (one file per maintainer) and --keyring (one
file holding any number of keys, binary or armored). With --maintainers, the
maintainer set is StageX's MAINTAINERS file: the primary fingerprints in
"id" of every [keys.<person>.<label>] table; only those keys are taken from
the keys given, and the others are ignored and counted. A listed
fingerprint without a key is refused, and so is an expired or revoked key.

Refuses a threshold below 1 or above the number of keys, the same key twice,
a secret key given as a public key, and keys that stock clients cannot verify.

--extra-path admits files outside tally's own, such as the CI workflow that
runs tally check (tally check refuses any other file); later changes to the
list are trust policy changes, which need approvals. --ci github (or forgejo)
commits that workflow (.github/workflows/tally-check.yml, or
.forgejo/workflows/) with the policy and admits it.

EXAMPLES:
   tally init --repo signatures --namespace stagex --threshold 2 \
       --key-file alice.pub.asc --key-file bob.pub.asc \
       --extra-path .github/workflows/tally-check.yml --extra-path README.md
   tally init --repo signatures --maintainers stagex/MAINTAINERS \
       --keyring stagex/keys/stagex-keyring.pgp --threshold 2`,
		Flags: append([]cli.Flag{
			repoFlag(),
			&cli.StringFlag{Name: "namespace", Value: "stagex", Usage: "repository path of the images, without registry host"},
			&cli.StringFlag{Name: "identity-prefix", Usage: "signed references are PREFIX/NAME:TAG (default: the namespace)"},
			&cli.IntFlag{Name: "threshold", Usage: "M: distinct maintainer keys that must sign the same digest (default: 2, or 1 with one key)"},
			&cli.StringSliceFlag{Name: "key-file", Usage: "a maintainer's public key file (armored or binary); repeat for each maintainer"},
			&cli.PathFlag{Name: "keyring", TakesFile: true, Usage: "a keyring file holding any number of public keys (armored or binary)"},
			&cli.PathFlag{Name: "maintainers", TakesFile: true,
				Usage: "StageX's MAINTAINERS file: take only the keys whose primary fingerprints it lists"},
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
			if f := c.Path("keyring"); f != "" {
				data, err := os.ReadFile(f)
				if err != nil {
					return fail(exitData, fmt.Errorf("reading --keyring: %w", err))
				}
				keys = append(keys, release.PublicKey{Source: f, Data: data})
			}
			var maintainers []policy.Maintainer
			if f := c.Path("maintainers"); f != "" {
				data, err := os.ReadFile(f)
				if err != nil {
					return fail(exitData, fmt.Errorf("reading --maintainers: %w", err))
				}
				if maintainers, err = policy.ParseMaintainers(data); err != nil {
					return fail(exitData, fmt.Errorf("%s: %w", f, err),
						`MAINTAINERS names each maintainer key as a table [keys.<person>.<label>] with id = "<primary fingerprint>"`)
				}
				if len(keys) == 0 {
					return usagef("--maintainers lists fingerprints only: give the keys with --keyring FILE (or --key-file)")
				}
			}
			var fprs []string
			for _, m := range maintainers {
				fprs = append(fprs, m.Fingerprint)
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
			repo, err := openRepo(env, dir)
			created := false // init made the repository: a refusal removes it again
			if err != nil {
				_, statErr := os.Stat(dir)
				if statErr == nil && !isEmptyDir(dir) && !c.Bool("bare") {
					return fail(exitData, err, "run tally init in an empty directory, a new path, or a git repository")
				}
				newDir := errors.Is(statErr, fs.ErrNotExist)
				if repo, err = gitstore.Init(dir, c.Bool("bare"), "main"); err != nil {
					undoInit(dir, newDir)
					return err
				}
				created = true
				defer func() {
					if created {
						undoInit(dir, newDir)
					}
				}()
			}
			res, err := release.Init(c.Context, repo, release.InitOptions{
				Namespace: c.String("namespace"), IdentityPrefix: c.String("identity-prefix"),
				Threshold: c.Int("threshold"), Keys: keys, Maintainers: fprs, Signer: signer, LockWait: c.Duration("lock-wait"),
				ExtraPaths: c.StringSlice("extra-path"), Files: files,
			})
			if cerr := repo.Close(); err == nil && cerr != nil {
				err = cerr
			}
			if err != nil {
				return initError(err, c.Path("keyring"))
			}
			created = false
			for _, w := range res.Warnings {
				fmt.Fprintf(env.stderr, "tally: warning: %s\n", w)
			}
			if c.Bool("json") {
				return writeJSON(env.stdout, res)
			}
			fmt.Fprintf(env.stdout, "initialised %s: namespace %s, %d of %d maintainers must sign\n",
				dir, res.Policy.Namespace, res.Policy.Threshold, len(res.Keys))
			for _, k := range res.Keys {
				fmt.Fprintf(env.stdout, "  %s  %s%s\n", k.Fingerprint, k.Name, maintainerLabel(maintainers, k.Fingerprint))
			}
			if c.IsSet("maintainers") {
				fmt.Fprintf(env.stdout, "took the %d key(s) MAINTAINERS lists; ignored %d other key(s) in the keys given\n", len(res.Keys), res.IgnoredKeys)
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

// initError gives init's refusals of a key the hint that fits init: which
// key, and how to bring it up to date.
func initError(err error, keyring string) error {
	var issue sigstore.KeyIssue
	if errors.As(err, &issue) && (errors.Is(err, sigstore.ErrKeyExpired) || errors.Is(err, sigstore.ErrKeyRevoked)) {
		if errors.Is(err, sigstore.ErrKeyRevoked) {
			return fail(exitData, err, fmt.Sprintf("a revoked key cannot be a maintainer: remove %s from the maintainer set (MAINTAINERS), or have its holder give a new key", issue.Fingerprint))
		}
		return fail(exitData, err, fmt.Sprintf("refresh the key %s: its holder extends the expiry and exports it again (gpg --export %s), then run tally init again with that key", issue.Fingerprint, issue.Fingerprint))
	}
	if errors.Is(err, release.ErrMissingKey) {
		where := "the keys given"
		if keyring != "" {
			where = keyring
		}
		return fail(exitData, err, fmt.Sprintf("add that maintainer's public key to %s (gpg --export FINGERPRINT), or correct MAINTAINERS", where))
	}
	return err
}

// maintainerLabel is " (person/label)" of a key MAINTAINERS lists.
func maintainerLabel(ms []policy.Maintainer, fpr string) string {
	for _, m := range ms {
		if m.Fingerprint == fpr {
			return " (" + m.Person + "/" + m.Label + ")"
		}
	}
	return ""
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

// undoInit removes what a refused tally init created: the directory when it
// made it, else what it put in the empty directory it was given.
func undoInit(dir string, newDir bool) {
	if newDir {
		_ = os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

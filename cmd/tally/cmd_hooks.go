package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/hooks"
	"github.com/tally-sig/tally/release"
)

func hooksCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:  "hooks",
		Usage: "install the git hooks that guard a signatures repository",
		Description: `The server hook (pre-receive, in the bare repository that receives pushes)
refuses every push that breaks the repository's rules; the client hooks
(pre-commit, pre-push, in a clone) apply the same rules earlier.

EXAMPLES:
   tally hooks install --server --repo /srv/git/signatures.git
   tally hooks install --repo ~/src/signatures`,
		Subcommands: []*cli.Command{hooksInstallCommand(env)},
		Action:      unknownSubcommand,
	}
}

func hooksInstallCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "install",
		Usage:     "install the server hook (pre-receive) or the client hooks (pre-commit, pre-push)",
		ArgsUsage: " ",
		Description: `With --server, installs a pre-receive hook into the bare repository that
receives pushes: every push is judged as "tally check" judges a range, and
refused as a whole when any change breaks a rule; each refusal reaches the
pusher as "remote: tally: refused: <path>: <reason>". Protected branches
(every branch, or protected_refs in tally.toml) only move forward and are
never deleted; tags never move. The first push into an empty repository
establishes the trust root. With --lookaside DIR, a post-receive hook is
installed as well: after each accepted push it exports the lookaside tree of
the default branch into DIR (tally lookaside export), for a web server to
serve to podman and skopeo.

Without --server, installs pre-commit (judges the staged changes) and
pre-push (judges the push as the server would) into a clone: the same rules,
earlier.

The hooks run the tally program that installs them (its absolute path is
recorded) and fall back to tally on PATH; with neither, they refuse. A hook
tally did not install is left alone unless --force, which keeps it as
<hook>.before-tally.

EXAMPLES:
   tally hooks install --server --repo /srv/git/signatures.git
   tally hooks install --server --repo /srv/git/signatures.git --lookaside /srv/www/sigs
   tally hooks install --repo ~/src/signatures`,
		Flags: []cli.Flag{
			repoFlag(),
			&cli.BoolFlag{Name: "server", Usage: "install the server hook into a bare repository"},
			&cli.BoolFlag{Name: "force", Usage: "replace hooks tally did not install (kept as <hook>.before-tally)"},
			&cli.PathFlag{Name: "lookaside", Usage: "with --server: also install post-receive, which exports the lookaside tree into `DIR` (served by a web server) after each accepted push"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("hooks install takes no arguments, got %q", c.Args().First())
			}
			bin, err := programPath()
			if err != nil {
				return fail(exitInternal, fmt.Errorf("finding the tally program to record in the hooks: %w", err))
			}
			repo, err := openRepo(env, c.Path("repo"))
			if err != nil {
				return err
			}
			defer repo.Close()
			lookaside := c.Path("lookaside")
			if lookaside != "" {
				if lookaside, err = filepath.Abs(lookaside); err != nil {
					return err
				}
			}
			res, err := hooks.Install(repo, hooks.InstallOptions{Server: c.Bool("server"), Force: c.Bool("force"), Binary: bin, Lookaside: lookaside})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(env.stdout, res)
			}
			for _, r := range res.Replaced {
				fmt.Fprintf(env.stdout, "kept the previous hook as %s\n", r)
			}
			for _, h := range res.Hooks {
				fmt.Fprintf(env.stdout, "installed %s\n", h)
			}
			fmt.Fprintf(env.stdout, "the hooks run %s (or tally on PATH)\n", res.Binary)
			return nil
		},
	}
}

// programPath is the absolute path of the running tally as it was invoked
// (a symbolic link such as /usr/local/bin/tally stays one, so upgrades
// reach the hooks).
func programPath() (string, error) {
	arg0 := os.Args[0]
	if !strings.ContainsRune(arg0, filepath.Separator) {
		if p, err := exec.LookPath(arg0); err == nil {
			arg0 = p
		} else {
			return os.Executable()
		}
	}
	return filepath.Abs(arg0)
}

// hookCommand is what the installed hooks run: "tally hook NAME [ARGS]".
func hookCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "hook",
		Usage:     "run a git hook (called by the hooks tally hooks install writes)",
		ArgsUsage: "pre-receive | pre-commit | pre-push REMOTE URL | post-receive DIR",
		Hidden:    true,
		Action: func(c *cli.Context) error {
			name := c.Args().First()
			dir, err := os.Getwd()
			if err != nil {
				return err
			}
			var res *hooks.Result
			switch name {
			case "post-receive":
				return postReceive(c, env, dir)
			case "pre-receive":
				gitDir := os.Getenv("GIT_DIR")
				if gitDir == "" {
					gitDir = dir
				}
				var alternates []string
				if a := os.Getenv("GIT_ALTERNATE_OBJECT_DIRECTORIES"); a != "" {
					alternates = filepath.SplitList(a)
				}
				res, err = hooks.PreReceive(hooks.ServerOptions{
					GitDir:              gitDir,
					ObjectDir:           os.Getenv("GIT_OBJECT_DIRECTORY"),
					AlternateObjectDirs: alternates,
					Input:               env.stdin,
					Now:                 timeNow,
				})
			case "pre-commit":
				res, err = hooks.PreCommit(hooks.ClientOptions{Dir: dir, IndexFile: os.Getenv("GIT_INDEX_FILE"), Now: timeNow})
			case "pre-push":
				res, err = hooks.PrePush(hooks.ClientOptions{Dir: dir, Remote: c.Args().Get(1), Input: env.stdin, Now: timeNow})
			default:
				return usagef("hook %q: tally runs pre-receive, pre-commit and pre-push", name)
			}
			if err != nil {
				return fmt.Errorf("%s hook: %w", name, err)
			}
			printRefusals(env.stderr, res, "tally check --json OLD..NEW lists them all")
			for _, n := range res.Notes {
				fmt.Fprintf(env.stderr, "tally: note: %s\n", n)
			}
			if err := res.Err(); err != nil {
				hint := "fix those commits (git rebase -i) and push again; tally check OLD..NEW shows the same before you push"
				if name == "pre-commit" {
					hint = "change what is staged (git restore --staged PATH) and commit again"
				}
				return fail(exitRefused, fmt.Errorf("%s: %w", name, err), hint)
			}
			if name == "pre-receive" {
				fmt.Fprintf(env.stderr, "tally: accepted: %d commit(s), %d new signature(s)\n", res.Commits, res.Signatures)
			}
			return nil
		},
	}
}

// postReceive exports the lookaside tree after an accepted push. Its
// output reaches the pusher as "remote:" lines; git ignores its exit
// status, the push having happened already.
func postReceive(c *cli.Context, env *environment, dir string) error {
	_, _ = io.Copy(io.Discard, env.stdin) // the updated refs: the export reads HEAD
	target := c.Args().Get(1)
	if target == "" {
		return usagef("hook post-receive needs the lookaside DIR")
	}
	gitDir := os.Getenv("GIT_DIR")
	if gitDir == "" {
		gitDir = dir
	}
	repo, err := openRepo(env, gitDir)
	if err != nil {
		return err
	}
	defer repo.Close()
	res, err := release.ExportLookaside(repo, release.LookasideOptions{Dir: target})
	if err != nil {
		return fmt.Errorf("post-receive: the lookaside at %s is NOT refreshed: %w", target, err)
	}
	if !res.Unchanged {
		fmt.Fprintf(env.stderr, "tally: lookaside: exported %s to %s (%d signature(s))\n", short(res.Commit), res.Dir, res.Signatures)
	}
	return nil
}

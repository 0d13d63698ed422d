package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/release"
)

func mergeCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "merge",
		Usage:     "merge other maintainers' signing work into the current branch, renumbering what collides",
		ArgsUsage: "SOURCE...",
		Description: `Merges other lines of signing work into the checked-out branch as one merge
commit, signed by your key like a sign commit. A SOURCE is a branch or
remote-tracking branch of this repository (bob, origin/main), or another
repository's path or URL with an optional #branch (its HEAD otherwise).

The rules: the branch's signature files keep their names and bytes; each
incoming signature the branch lacks is added at the first free signature-N of
its directory; one with the same bytes as a file already there, or by a key
that already signed that digest, is dropped and reported; incoming files that
fail the verify judgement are reported and not merged (exit 2) unless
--allow-invalid. Build records merge as the union of their runs; other files
merge when only one side changed them. Merging the same source again changes
nothing. Works on bare repositories too.

EXAMPLES:
   tally merge --repo ../signatures --key ~/keys/me.sec.asc origin/bob
   tally merge --repo ../signatures --gpg ../bob-signatures#release/2026.11.0
   tally merge --repo /srv/signatures.git --gpg https://example.org/carol/sigs.git`,
		Flags: append([]cli.Flag{
			repoFlag(),
			&cli.BoolFlag{Name: "allow-invalid", Usage: "also merge incoming files that fail the judgement (they are still reported)"},
			lockWaitFlag(),
			jsonFlag(),
		}, signerFlags(true)...),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("merge needs at least one SOURCE: a branch, or a repository path or URL")
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
			repo.SetRemoteOutput(env.stderr) // the remote's hook output, as git push shows it
			res, err := release.Merge(c.Context, repo, release.MergeOptions{
				Sources:      c.Args().Slice(),
				Signer:       signer,
				AllowInvalid: c.Bool("allow-invalid"),
				Now:          timeNow,
				LockWait:     c.Duration("lock-wait"),
			})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if err := writeJSON(env.stdout, res); err != nil {
					return err
				}
			} else {
				printMerge(env, res)
			}
			// Exit 2 when an invalid incoming file was left out: all of them
			// without --allow-invalid, links and the like even with it.
			left := 0
			for _, f := range res.Rejected {
				if !f.Merged && f.Severity == "invalid" {
					left++
				}
			}
			if left > 0 {
				hint := "the rest is merged; ask the source's maintainer to fix those files, or merge them anyway with --allow-invalid (only on the first merge of that source)"
				if c.Bool("allow-invalid") {
					hint = "the rest is merged; --allow-invalid merges only regular files"
				}
				return fail(exitInvalid, fmt.Errorf("%d invalid incoming file(s) were not merged", left), hint)
			}
			return nil
		},
	}
}

func printMerge(env *environment, res *release.MergeResult) {
	w := env.stdout
	if res.UpToDate() {
		for _, s := range res.Sources {
			fmt.Fprintf(w, "already up to date: %s contains %s (%s)\n", res.Branch, s.Source, short(s.Commit))
		}
		return
	}
	for _, s := range res.Sources {
		if s.UpToDate {
			fmt.Fprintf(w, "already merged: %s (%s)\n", s.Source, short(s.Commit))
		}
	}
	rejected := 0
	for _, f := range res.Rejected {
		if !f.Merged {
			rejected++
		}
	}
	fmt.Fprintf(w, "%d new signature(s), %d already here, %d not merged\n", len(res.Added), len(res.Dropped), rejected)
	for _, f := range res.Added {
		note := ""
		if f.Invalid {
			note = " (INVALID, merged with --allow-invalid)"
		}
		fmt.Fprintf(w, "  added     %s  <- %s:%s%s\n", f.Path, f.Source, f.From, note)
	}
	for _, f := range res.Dropped {
		switch f.Reason {
		case release.DropIdentical:
			fmt.Fprintf(w, "  dropped   %s:%s  (the same bytes are in %s)\n", f.Source, f.From, f.Existing)
		case release.DropSameKey:
			fmt.Fprintf(w, "  dropped   %s:%s  (that key already signed this digest: %s)\n", f.Source, f.From, f.Existing)
		case release.DropDeleted:
			fmt.Fprintf(w, "  ignored   %s:%s  (deleted there; signatures are never deleted)\n", f.Source, f.From)
		default:
			fmt.Fprintf(w, "  dropped   %s:%s  (%s %s)\n", f.Source, f.From, f.Reason, f.Existing)
		}
	}
	for _, f := range res.Rejected {
		state := "not merged"
		if f.Merged {
			state = "merged anyway"
		}
		fmt.Fprintf(w, "  %-9s %s:%s  %s (%s): %s\n", f.Severity, f.Source, f.From, f.Kind, state, f.Error)
	}
	for _, p := range res.Records {
		fmt.Fprintf(w, "  record    %s (union of both sides)\n", p)
	}
	for _, p := range res.Files {
		fmt.Fprintf(w, "  file      %s\n", p)
	}
	fmt.Fprintf(w, "merge commit %s on %s\n", short(res.Commit), res.Branch)
}

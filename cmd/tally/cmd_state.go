package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release"
	"github.com/tally-sig/tally/release/state"
)

// stateFlags are verify's rollback and freeze protection.
func stateFlags() []cli.Flag {
	return []cli.Flag{
		&cli.PathFlag{Name: "state", TakesFile: true,
			Usage: "record the commit and trust policy verified in FILE, and refuse a later history that no longer holds it or rolls its trust policy back"},
		&cli.DurationFlag{Name: "max-age",
			Usage: "with --state: refuse when the newest commit signed by a trusted key is older than this (a frozen repository), e.g. 720h"},
	}
}

// verifyChecked opens the repository (--repo) or the bundle (--bundle),
// checks it against --state, verifies it and, when the verification
// passed, records the new state.
func verifyChecked(env *environment, c *cli.Context, vopts release.VerifyOptions) (*release.VerifyResult, error) {
	file := c.Path("state")
	if file == "" && c.IsSet("max-age") {
		return nil, usagef("--max-age needs --state FILE")
	}
	if c.IsSet("max-age") && c.Duration("max-age") <= 0 {
		return nil, usagef("--max-age must be positive, got %s", c.Duration("max-age"))
	}
	var repo *gitstore.Repo
	var verify func() (*release.VerifyResult, error)
	if c.IsSet("bundle") {
		if c.IsSet("repo") {
			return nil, usagef("give --bundle or --repo, not both")
		}
		if len(vopts.Registry) > 0 {
			return nil, usagef("a bundle is verified offline: docker:// images are checked against a repository (--repo)")
		}
		b, err := release.OpenBundle(c.Path("bundle"))
		if err != nil {
			return nil, bundleError(err)
		}
		repo = b.Repo
		verify = func() (*release.VerifyResult, error) {
			res, err := release.VerifyBundle(c.Context, b, vopts)
			return res, bundleError(err)
		}
	} else {
		var err error
		if repo, err = openRepo(env, c.Path("repo")); err != nil {
			return nil, err
		}
		verify = func() (*release.VerifyResult, error) { return release.Verify(c.Context, repo, vopts) }
	}
	defer repo.Close()
	if file == "" {
		return verify()
	}
	old, err := state.Read(file)
	if err != nil {
		return nil, fail(exitData, err, "the state file is tally's own record: restore it, or remove it to trust the repository as it is now")
	}
	next, err := state.Check(repo, old, state.Options{Keys: vopts.Keys, MaxAge: c.Duration("max-age"), Now: timeNow()})
	if err := stateError(err, file); err != nil {
		return nil, err
	}
	res, err := verify()
	if err == nil && res.Outcome == release.OutcomeOK {
		if werr := state.Write(file, next); werr != nil {
			return nil, fail(exitIOErr, werr)
		}
	}
	return res, err
}

// stateError gives the refusals of the state check their exit code and hint.
func stateError(err error, file string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, state.ErrRewritten):
		return fail(exitRefused, err, "someone rewrote the history you verified (a revocation or a maintainer's removal may be gone): ask the maintainers, and do not trust this copy")
	case errors.Is(err, state.ErrPolicyRolledBack):
		return fail(exitRefused, err, "an older keyring or threshold is back: ask the maintainers; a deliberate return to an old policy must change it (a new tally.toml commit)")
	case errors.Is(err, state.ErrFrozen):
		return fail(exitRefused, err, "the repository or mirror may be frozen at an old state: fetch a fresh copy, or ask the maintainers for a signed commit")
	case errors.Is(err, state.ErrOtherRepository):
		return fail(exitUsage, err, fmt.Sprintf("use one state file per signatures repository (%s is another's)", file))
	}
	return err
}

package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	git "github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/tally-sig/tally/sigstore"
)

// signerFlags are the flags of every command that signs: a key file or gpg.
func signerFlags(required bool) []cli.Flag {
	what := "sign with"
	if !required {
		what = "also sign the commit with"
	}
	return []cli.Flag{
		&cli.PathFlag{Name: "key", Usage: what + " this armored OpenPGP secret key file (passphrase from $TALLY_PASSPHRASE or a prompt)", TakesFile: true},
		&cli.BoolFlag{Name: "gpg", Usage: what + " the gpg program (gpg-agent, smart cards)"},
		&cli.StringFlag{Name: "local-user", Aliases: []string{"u"}, Usage: "with --gpg: the key to use (default: git config user.signingkey)"},
	}
}

// passphraseEnv names the environment variable that holds a key file's passphrase.
const passphraseEnv = "TALLY_PASSPHRASE"

// openSigner builds the signer the flags ask for; nil when none is asked for
// and none is required.
func openSigner(c *cli.Context, env *environment, required bool) (sigstore.Signer, error) {
	keyFile, useGPG := c.Path("key"), c.Bool("gpg")
	switch {
	case keyFile != "" && useGPG:
		return nil, usagef("--key and --gpg cannot be used together")
	case keyFile == "" && !useGPG:
		if required {
			return nil, usagef("say which key signs: --key SECRET.asc or --gpg")
		}
		return nil, nil
	case c.IsSet("local-user") && !useGPG:
		return nil, usagef("--local-user goes with --gpg")
	}
	if useGPG {
		user := c.String("local-user")
		if user == "" {
			user = gitSigningKey()
		}
		if user == "" {
			return nil, fail(exitUsage, errors.New("--gpg needs a key: no --local-user and no git config user.signingkey"),
				"pass --local-user FINGERPRINT, or run: git config --global user.signingkey FINGERPRINT")
		}
		s, err := sigstore.NewGPGSigner(sigstore.GPGOptions{LocalUser: user})
		if err != nil {
			return nil, err
		}
		warnSubkey(env, s.SubkeyOnly())
		return s, nil
	}
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fail(exitData, fmt.Errorf("reading key file: %w", err))
	}
	s, err := sigstore.NewKeySigner(data, func() ([]byte, error) { return passphrase(keyFile) })
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", keyFile, err)
	}
	warnSubkey(env, s.SubkeyOnly())
	return s, nil
}

func warnSubkey(env *environment, subkeyOnly bool) {
	if subkeyOnly {
		fmt.Fprintln(env.stderr, "tally: warning: this key signs only with a subkey; clients built on containers/image before 5.37 (podman/skopeo on Debian bookworm and older) reject subkey signatures")
	}
}

// passphrase reads a key's passphrase from $TALLY_PASSPHRASE or, on a
// terminal, from a prompt that does not echo. Never from the command line.
func passphrase(keyFile string) ([]byte, error) {
	if p, ok := os.LookupEnv(passphraseEnv); ok {
		return []byte(p), nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		if tty != nil {
			tty.Close()
		}
		return nil, fmt.Errorf("%w: %s is protected and there is no terminal to ask on; set %s", sigstore.ErrBadPassphrase, keyFile, passphraseEnv)
	}
	defer tty.Close()
	fmt.Fprintf(tty, "Passphrase for %s: ", keyFile)
	p, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return nil, fmt.Errorf("reading passphrase: %w", err)
	}
	return p, nil
}

// gitSigningKey returns git's user.signingkey as git would pick it from the
// current directory: repository config first, then global and system config.
func gitSigningKey() string {
	if repo, err := git.PlainOpenWithOptions(".", &git.PlainOpenOptions{DetectDotGit: true}); err == nil {
		if cfg, err := repo.ConfigScoped(gitconfig.SystemScope); err == nil {
			if v := cfg.Raw.Section("user").Option("signingkey"); v != "" {
				return strings.TrimSpace(v)
			}
		}
	}
	for _, scope := range []gitconfig.Scope{gitconfig.GlobalScope, gitconfig.SystemScope} {
		if cfg, err := gitconfig.LoadConfig(scope); err == nil {
			if v := cfg.Raw.Section("user").Option("signingkey"); v != "" {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}

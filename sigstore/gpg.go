package sigstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// gpgMu serialises every gpg invocation of the process: smart cards (and
// their pinentry) fail when several signing operations overlap.
var gpgMu sync.Mutex

// GPGOptions configures a GPGSigner.
type GPGOptions struct {
	// Program is the gpg executable; "" means "gpg" from PATH.
	Program string
	// Home is the GnuPG home directory (--homedir); "" uses gpg's default
	// (GNUPGHOME or ~/.gnupg).
	Home string
	// LocalUser selects the secret key, as gpg's --local-user does: a
	// fingerprint (recommended), key ID, or user ID. "" means the only
	// secret key of the keyring; several are then an error.
	LocalUser string
}

// GPGSigner signs by running gpg, so that keys on smart cards and in
// gpg-agent work. All gpg runs of the process are serialised.
type GPGSigner struct {
	program     string
	home        string
	fingerprint string // primary, uppercase
	signWith    string // fingerprint passed as --local-user FPR!
	keyID       uint64 // of signWith
	subkeyOnly  bool
	warnings    []KeyIssue
}

// NewGPGSigner finds the secret key opts.LocalUser names with
// gpg --with-colons and prepares to sign with its primary key (forced with
// --local-user FPR!). When the primary key may not sign or its secret part
// is not available (an offline primary key), it signs with the newest usable
// signing subkey and SubkeyOnly reports true. The public key is exported
// from gpg and judged with CheckKey: refusals are errors wrapping
// ErrKeyExpired, ErrKeyRevoked or ErrKeyUnsupported. gpg's standard error is
// part of every error from a failed gpg run.
func NewGPGSigner(opts GPGOptions) (*GPGSigner, error) {
	s := &GPGSigner{program: opts.Program, home: opts.Home}
	if s.program == "" {
		s.program = "gpg"
	}
	args := []string{"--batch", "--with-colons", "--fixed-list-mode", "--with-fingerprint", "--with-subkey-fingerprint", "--list-secret-keys"}
	if opts.LocalUser != "" {
		args = append(args, "--", opts.LocalUser)
	}
	out, err := s.run(nil, args...)
	if err != nil {
		return nil, fmt.Errorf("finding secret key %q: %w", opts.LocalUser, err)
	}
	keys, err := parseSecretKeyList(out)
	if err != nil {
		return nil, fmt.Errorf("finding secret key %q: %w", opts.LocalUser, err)
	}
	switch {
	case len(keys) == 0:
		return nil, fmt.Errorf("finding secret key %q: gpg lists no secret key", opts.LocalUser)
	case len(keys) > 1:
		var fprs []string
		for _, k := range keys {
			fprs = append(fprs, k.fingerprint)
		}
		return nil, fmt.Errorf("finding secret key %q: it matches %d keys (%s): give a fingerprint", opts.LocalUser, len(keys), strings.Join(fprs, ", "))
	}
	key := keys[0]
	s.fingerprint = key.fingerprint

	public, err := s.run(nil, "--batch", "--export", "--", key.fingerprint)
	if err != nil {
		return nil, fmt.Errorf("exporting public key %s: %w", key.fingerprint, err)
	}
	ring, err := ReadKeyring(public)
	if err != nil {
		return nil, fmt.Errorf("exporting public key %s: %w", key.fingerprint, err)
	}
	entity, ok := ring.Entity(key.fingerprint)
	if !ok {
		return nil, fmt.Errorf("exporting public key %s: gpg exported another key", key.fingerprint)
	}
	issues, pk, subkey := checkKey(entity, time.Now(), func(pk *packet.PublicKey) bool {
		return key.secretAvailable[fingerprintHex(pk.Fingerprint)]
	})
	for _, issue := range issues {
		if issue.Refuse {
			return nil, fmt.Errorf("checking secret key: %w", issue)
		}
		s.warnings = append(s.warnings, issue)
	}
	s.signWith = fingerprintHex(pk.Fingerprint)
	s.keyID = pk.KeyId
	s.subkeyOnly = subkey
	return s, nil
}

// SigningKey returns the fingerprint of the key that makes the signatures:
// the primary key's, or the signing subkey's.
func (s *GPGSigner) SigningKey() string { return s.signWith }

// gpgSecretKey is one secret key listed by gpg --with-colons.
type gpgSecretKey struct {
	fingerprint     string          // primary
	secretAvailable map[string]bool // fingerprints whose secret part gpg can use
}

// parseSecretKeyList reads gpg --with-colons --list-secret-keys output:
// "sec"/"ssb" records, each followed by its "fpr" record. Field 15 of a
// sec/ssb record is "#" for a stub (secret part not available) and "+" or a
// card serial number when it can sign.
func parseSecretKeyList(out []byte) ([]gpgSecretKey, error) {
	var keys []gpgSecretKey
	pendingAvailable := false
	expectFpr := ""
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Split(strings.TrimRight(line, "\r"), ":")
		switch fields[0] {
		case "sec", "ssb":
			if fields[0] == "sec" {
				keys = append(keys, gpgSecretKey{secretAvailable: map[string]bool{}})
			} else if len(keys) == 0 {
				return nil, errors.New("gpg listed a subkey before its key")
			}
			expectFpr = fields[0]
			pendingAvailable = len(fields) > 14 && fields[14] != "#"
		case "fpr":
			if expectFpr == "" {
				continue
			}
			if len(fields) < 10 || fields[9] == "" {
				return nil, errors.New("gpg listed a fingerprint record without a fingerprint")
			}
			fpr := normalizeFingerprint(fields[9])
			k := &keys[len(keys)-1]
			if expectFpr == "sec" {
				k.fingerprint = fpr
			}
			k.secretAvailable[fpr] = pendingAvailable
			expectFpr = ""
		}
	}
	for _, k := range keys {
		if k.fingerprint == "" {
			return nil, errors.New("gpg listed a secret key without its fingerprint")
		}
	}
	return keys, nil
}

// Fingerprint implements Signer.
func (s *GPGSigner) Fingerprint() string { return s.fingerprint }

// SubkeyOnly reports whether the signatures are made by a subkey
// (containers/image before 5.37 rejects them).
func (s *GPGSigner) SubkeyOnly() bool { return s.subkeyOnly }

// Warnings returns CheckKey's warnings for the key.
func (s *GPGSigner) Warnings() []KeyIssue { return s.warnings }

// SignMessage implements Signer with gpg --sign (a compressed signed
// message). The output is checked: one signature, by the chosen key, with
// SHA-256, over payload.
func (s *GPGSigner) SignMessage(payload []byte) ([]byte, error) {
	out, err := s.run(payload, "--local-user", s.signWith+"!", "--digest-algo", "SHA256", "--sign")
	if err != nil {
		return nil, fmt.Errorf("signing with %s: %w", s.fingerprint, err)
	}
	if err := checkMadeMessage(out, payload, s.keyID); err != nil {
		return nil, fmt.Errorf("signing with %s: %w", s.fingerprint, err)
	}
	return out, nil
}

// SignDetached implements Signer with gpg --detach-sign --armor.
func (s *GPGSigner) SignDetached(data []byte) ([]byte, error) {
	out, err := s.run(data, "--local-user", s.signWith+"!", "--digest-algo", "SHA256", "--detach-sign", "--armor")
	if err != nil {
		return nil, fmt.Errorf("signing with %s: %w", s.fingerprint, err)
	}
	return out, nil
}

// run runs gpg with args under the process-wide mutex, stdin as input.
func (s *GPGSigner) run(stdin []byte, args ...string) ([]byte, error) {
	if s.home != "" {
		args = append([]string{"--homedir", s.home}, args...)
	}
	gpgMu.Lock()
	defer gpgMu.Unlock()
	cmd := exec.CommandContext(context.Background(), s.program, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return nil, fmt.Errorf("running %s: %w", s.program, err)
		}
		return nil, fmt.Errorf("running %s: %w: %s", s.program, err, msg)
	}
	return stdout.Bytes(), nil
}

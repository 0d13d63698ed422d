package main

import (
	"bytes"
	"crypto"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/tally-sig/tally/sigstore"
)

// mksigMain is the test scripts' "mksig" command: it writes a signature
// file that tally itself never makes, to test how tally judges it:
//
//	mksig [-created TIME] [-expires DURATION] [-legacy] SECRET-KEY REFERENCE DIGEST OUT
//
// -created sets the signature's creation time (RFC 3339; default
// $TALLY_TEST_NOW), -expires gives it a lifetime, -legacy writes StageX's
// pre-2025 payload form (REFERENCE then names the repository).
func mksigMain() int {
	if err := mksig(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "mksig: %v\n", err)
		return 1
	}
	return 0
}

func mksig(args []string) error {
	fl := flag.NewFlagSet("mksig", flag.ContinueOnError)
	created := fl.String("created", os.Getenv("TALLY_TEST_NOW"), "creation time (RFC 3339)")
	expires := fl.Duration("expires", 0, "signature lifetime")
	legacy := fl.Bool("legacy", false, "write the pre-2025 StageX payload form")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 4 {
		return errors.New("usage: mksig [-created TIME] [-expires DURATION] [-legacy] SECRET-KEY REFERENCE DIGEST OUT")
	}
	at, err := time.Parse(time.RFC3339, *created)
	if err != nil {
		return err
	}
	keyData, err := os.ReadFile(fl.Arg(0))
	if err != nil {
		return err
	}
	keys, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(keyData))
	if err != nil {
		return err
	}
	var body []byte
	if *legacy {
		body = []byte(`[{"critical":{"identity":{"docker-reference":"` + fl.Arg(1) + `"},"image":{"docker-manifest-digest":"` +
			strings.TrimPrefix(fl.Arg(2), "sha256:") + `"},"type":"pgp container image signature"},"optional":null}]`)
	} else if body, err = (sigstore.Payload{Reference: fl.Arg(1), Digest: fl.Arg(2)}).Marshal(); err != nil {
		return err
	}
	var out bytes.Buffer
	cfg := &packet.Config{DefaultHash: crypto.SHA256, SigLifetimeSecs: uint32(*expires / time.Second), Time: func() time.Time { return at }}
	w, err := openpgp.Sign(&out, keys[0], &openpgp.FileHints{IsBinary: true}, cfg)
	if err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return os.WriteFile(fl.Arg(3), out.Bytes(), 0o644)
}

// mkkeyMain is the test scripts' "mkkey" command: it generates an Ed25519
// key (legacy EdDSA, as StageX maintainers use) created at -created and
// expiring after -lifetime, writes PREFIX.pub.asc and PREFIX.sec.asc and
// prints the fingerprint; -revoked adds a key revocation (key compromised):
//
//	mkkey [-created TIME] [-lifetime DURATION] [-revoked] NAME PREFIX
func mkkeyMain() int {
	fpr, err := mkkey(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "mkkey: %v\n", err)
		return 1
	}
	fmt.Println(fpr)
	return 0
}

// mkkey is mkkeyMain's work; it returns the fingerprint.
func mkkey(args []string) (string, error) {
	fl := flag.NewFlagSet("mkkey", flag.ContinueOnError)
	created := fl.String("created", os.Getenv("TALLY_TEST_NOW"), "creation time (RFC 3339)")
	lifetime := fl.Duration("lifetime", 0, "key lifetime")
	revoked := fl.Bool("revoked", false, "revoke the key (key compromised) at its creation time")
	if err := fl.Parse(args); err != nil {
		return "", err
	}
	if fl.NArg() != 2 {
		return "", errors.New("usage: mkkey [-created TIME] [-lifetime DURATION] [-revoked] NAME PREFIX")
	}
	at, err := time.Parse(time.RFC3339, *created)
	if err != nil {
		return "", err
	}
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return at },
		KeyLifetimeSecs: uint32(*lifetime / time.Second)}
	name := fl.Arg(0)
	e, err := openpgp.NewEntity(name, "tally TEST KEY, not secret", name+"@example.invalid", cfg)
	if err != nil {
		return "", err
	}
	if *revoked {
		if err := e.RevokeKey(packet.KeyCompromised, "test key revoked", cfg); err != nil {
			return "", err
		}
	}
	write := func(path, blockType string, serialize func(*bytes.Buffer) error) error {
		var raw, armored bytes.Buffer
		if err := serialize(&raw); err != nil {
			return err
		}
		w, err := armor.Encode(&armored, blockType, nil)
		if err != nil {
			return err
		}
		if _, err := w.Write(raw.Bytes()); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		return os.WriteFile(path, append(armored.Bytes(), '\n'), 0o600)
	}
	if err := write(fl.Arg(1)+".pub.asc", openpgp.PublicKeyType, func(b *bytes.Buffer) error { return e.Serialize(b) }); err != nil {
		return "", err
	}
	if err := write(fl.Arg(1)+".sec.asc", openpgp.PrivateKeyType, func(b *bytes.Buffer) error { return e.SerializePrivate(b, nil) }); err != nil {
		return "", err
	}
	return fmt.Sprintf("%X", e.PrimaryKey.Fingerprint), nil
}

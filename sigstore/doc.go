// Package sigstore reads and writes the signature files of a containers
// "lookaside" store: the simple-signing payload, the OpenPGP signed message
// that carries it, the signature-N paths, and the one judgement of a
// signature file that every tally command uses.
//
// Start with Judge to check a signature file, and with a Signer to make one:
//
//	keys, err := sigstore.ReadKeyring(keyringBytes)
//	loc, err := sigstore.ParseLocation("stagex/core-gcc@sha256=<hex>/signature-1")
//	v := sigstore.Judge(loc, "stagex/core-gcc", blob, keys)
//	if v.OK() { /* counts towards the quorum of v.Signature.Signer */ }
//
// The whole judgement is, in this order: Verify (format and cryptography,
// cacheable by blob and Keyring.ID), JudgeVerified (digest and identity of
// the directory, for legacy payloads too), JudgeLifetime (the signature's
// expiry and the key's lifetime at the times the caller names, and whether
// stock clients refuse it now) and JudgeDirectory (a numbering gap,
// poisoning, a second signature by one key, over the files that still count).
// JudgeFiles runs them all; Judge is the first two.
//
// VerifyDetached checks the detached signatures of commits and of trust
// policy approvals (made up to MaxClockSkew after the time they claim), and
// KeyUpdate says what a new version of a key changes beyond what its holder
// may add alone.
//
// Everything here matches what stock clients (podman and skopeo on
// containers/image with GnuPG 2.2, and statically built ones) accept: a
// signature that tally counts is one they verify.
package sigstore

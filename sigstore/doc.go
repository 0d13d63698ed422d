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
// Judge is Verify (format and cryptography, cacheable by blob and
// Keyring.ID) followed by JudgeVerified (digest and identity).
// JudgeDirectory adds the problems only a whole directory shows (a numbering
// gap, a second signature by one key), and Keyring.ValidAt judges key expiry
// and revocation at the time a signature entered the repository.
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

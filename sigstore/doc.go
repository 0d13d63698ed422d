// Package sigstore reads and writes the signature files of a containers
// "lookaside" store: the simple-signing payload, the OpenPGP signed message
// that carries it, the signature-N paths, and the one judgement of a
// signature file that every tally command uses.
//
// Start with Judge to check a signature file, and with a Signer to make one.
package sigstore

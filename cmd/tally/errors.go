package main

import (
	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/hooks"
	"github.com/tally-sig/tally/release"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/quorum"
	"github.com/tally-sig/tally/release/registry"
	"github.com/tally-sig/tally/sigstore"
)

// classes maps the libraries' errors to exit codes and the hint a user needs.
// The first matching row wins.
var classes = []errorClass{
	{[]error{gitstore.ErrLocked}, exitTempFail,
		[]string{"another tally is working on this repository; run the command again when it is done"}},
	{[]error{gitstore.ErrRaced}, exitTempFail,
		[]string{"the branch moved while tally worked; nothing was committed: run the command again"}},
	{[]error{gitstore.ErrNonFastForward}, exitTempFail,
		[]string{"the remote has commits you do not have: fetch and merge them (tally sync), then push again"}},
	{[]error{gitstore.ErrDirty}, exitRefused,
		[]string{"commit, move or remove that file first: tally never overwrites uncommitted work"}},
	{[]error{gitstore.ErrTagExists}, exitRefused,
		[]string{"tags are never moved or replaced; choose a new version"}},
	{[]error{gitstore.ErrStaleWorktree}, exitIOErr,
		[]string{"the commit was made but the working tree is behind it; run: git -C REPO checkout -- ."}},
	{[]error{gitstore.ErrNotRepository}, exitData,
		[]string{"pass the signatures repository with --repo DIR, or create one with: tally init --repo DIR --key-file KEY.pub.asc"}},
	{[]error{quorum.ErrBadThreshold}, exitUsage, []string{"give --threshold between 1 and the number of keys in the keyring you trust"}},
	{[]error{policy.ErrNoPolicy}, exitData,
		[]string{"create the trust policy with: tally init --repo DIR --key-file KEY.pub.asc"}},
	{[]error{release.ErrPublishMismatch}, exitMismatch,
		[]string{"publish only what the maintainers signed: rebuild until your digests match the release (tally release plan shows them), or point --out at that build"}},
	{[]error{registry.ErrRegistryUnavailable}, exitTempFail,
		[]string{"the registry could not be reached or failed; run the command again: what is published already is skipped"}},
	{[]error{registry.ErrRegistryDenied}, exitData,
		[]string{"log in first (docker login REGISTRY): tally reads the docker config and its credential helpers"}},
	{[]error{release.ErrNotCut}, exitData,
		[]string{"cut the release first: tally release cut --repo DIR VERSION --key KEY.sec.asc"}},
	{[]error{release.ErrNotOnBranch}, exitData,
		[]string{"check out the branch the release was cut on (and fetch it), then run the command again"}},
	{[]error{release.ErrNoUpstream}, exitData,
		[]string{"set an upstream: git -C REPO branch --set-upstream-to=origin/BRANCH (what was committed is kept; push again after)"}},
	{[]error{registry.ErrBadTarget, release.ErrBadPolicyOptions}, exitUsage, []string{`run "tally help release publish" or "tally help policy export" for usage`}},
	{[]error{release.ErrInexpressible}, exitData,
		[]string{"use --require all or --require any, or have the maintainers sign every platform of the image"}},
	{[]error{release.ErrBadManifest}, exitData,
		[]string{"the committed release manifest disagrees with the signatures: inspect releases/VERSION/ and the tag"}},
	{[]error{release.ErrNoSigner}, exitUsage,
		[]string{"say which maintainer key signs the commit: --key SECRET.asc or --gpg"}},
	{[]error{release.ErrBadSource}, exitUsage,
		[]string{"a SOURCE is a branch of this repository (bob, origin/main) or a repository path or URL with an optional #branch"}},
	{[]error{release.ErrConflict}, exitData,
		[]string{"tally merges signatures and build records by itself, other files only when one side left them alone"}},
	{[]error{release.ErrPublished}, exitRefused,
		[]string{"consumers fetch signatures by path: --force moves them anyway, if you know nobody relies on those paths"}},
	{[]error{hooks.ErrRefused}, exitRefused, nil},
	{[]error{hooks.ErrForeignHook}, exitRefused,
		[]string{"look at that hook first: --force keeps it as <hook>.before-tally and installs tally's"}},
	{[]error{hooks.ErrWrongRepository, hooks.ErrNothingToApprove, hooks.ErrBadHookInput}, exitData, nil},
	{[]error{release.ErrAlreadyInitialised}, exitData,
		[]string{"edit tally.toml in a commit signed by a maintainer to change the policy"}},
	{[]error{release.ErrUntrustedSigner}, exitData,
		[]string{"ask the maintainers to add your public key to the repository's keyring, or sign with a maintainer key"}},
	{[]error{release.ErrDetached}, exitData, nil},
	{[]error{sigstore.ErrBadPassphrase}, exitData,
		[]string{"the passphrase comes from $TALLY_PASSPHRASE or the prompt"}},
	{[]error{sigstore.ErrKeyExpired, sigstore.ErrKeyRevoked}, exitData,
		[]string{"sign with a current maintainer key"}},
	{[]error{sigstore.ErrKeyUnsupported}, exitData,
		[]string{"use a v4 RSA (2048 bits or more), ECDSA P-256 or Ed25519 (legacy EdDSA) key: bookworm's podman and skopeo verify those"}},
	{[]error{sigstore.ErrSecretKey}, exitData,
		[]string{"give the public key: gpg --armor --export FINGERPRINT > key.pub.asc"}},
	{[]error{buildout.ErrNotLayout}, exitData,
		[]string{"--out must hold one OCI image layout per package (oci-layout, index.json, blobs/); run make first"}},
	{[]error{buildout.ErrNoTag}, exitData,
		[]string{"the build must set the org.opencontainers.image.ref.name annotation to the package version"}},
	{[]error{buildout.ErrBadName}, exitData,
		[]string{"image names are the layout directory names under --out: lowercase letters, digits and . _ - separators"}},
	{[]error{buildout.ErrCorrupt, buildout.ErrAmbiguous}, exitData,
		[]string{"rebuild the package; tally signs only layouts it can read completely"}},
}

#!/usr/bin/env bash
# The tally demo: the whole story on throwaway keys (internal/testkeys) and
# sample build output (internal/sample), in .demo/.
#
#   two maintainers, alice and bob, must both sign (2 of 2);
#   alice builds release 2026.11.0, signs and pushes;
#   bob builds on a cloud VM from a checkout with an uncommitted patch; its
#   output diverges, his build record says what differed (the source tree's
#   state), and he sees it before pushing;
#   bob fixes his environment, rebuilds, agrees, signs and pushes;
#   the release manager plans, cuts (signed tag) and publishes the release to
#   a local OCI layout, pushing the signatures and the tag to origin;
#   the consumer policy for podman/skopeo is printed.
#
# Needs Go and git; nothing else, no network. Run it with: make demo
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
demo=$root/.demo

# The first build on a fresh machine compiles every dependency: say so, or
# the demo looks hung for a minute or more.
echo "demo: building bin/tally and bin/mksample (the first build on a fresh machine takes a minute or two)..." >&2
go build -o bin/tally ./cmd/tally
go build -o bin/mksample ./internal/sample/cmd/mksample
echo "demo: built; the story starts" >&2
export PATH=$root/bin:$PATH
# Plain git below only clones, pulls and resets: no identity or config needed,
# and none of the user's configuration may change the story.
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0

rm -rf "$demo"
mkdir -p "$demo/keys"
cp internal/testkeys/keys/{alice,bob}.{pub,sec}.asc "$demo/keys/"
cd "$demo"

# Bold only on a terminal: a log file (make demo > demo.log) gets plain text.
bold= plain=
if [[ -t 1 ]]; then
	bold=$(tput bold 2>/dev/null || true)
	plain=$(tput sgr0 2>/dev/null || true)
fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
run() {
	printf '%s$ %s%s\n' "$bold" "$*" "$plain"
	"$@"
}
# fails runs a command that is expected to exit non-zero and shows the code.
fails() {
	printf '%s$ %s%s\n' "$bold" "$*" "$plain"
	local code=0
	"$@" || code=$?
	if [[ $code == 0 ]]; then
		echo "demo: expected a failure from: $*" >&2
		exit 1
	fi
	echo "(exit $code)"
}
quiet() { "$@" >/dev/null; }
# has_command says whether this tally has a command (tally status comes with
# the verify work; the demo uses it when it is there).
has_command() { tally --help | grep -Eq "^ +$1( |,)"; }

step "1. alice creates the signatures repository: 2 of 2 maintainers must sign"
quiet git init -q --bare --initial-branch=main origin.git
run tally init --repo alice --namespace stagex --threshold 2 \
	--key-file keys/alice.pub.asc --key-file keys/bob.pub.asc --key keys/alice.sec.asc
quiet git -C alice remote add origin "$demo/origin.git"
run git -C alice push -q -u origin main

step "2. both build release 2026.11.0; bob's cloud VM checkout carries an uncommitted patch"
# The distribution's source: one commit. The build records name the source
# commit and whether the tree had uncommitted changes; both run on this one
# machine, so what tells the two builds apart here is bob's dirty checkout.
quiet git init -q --initial-branch=main src
echo 'the distribution source' > src/README
quiet git -C src add README
GIT_AUTHOR_NAME=stagex GIT_AUTHOR_EMAIL=ci@stagex.invalid GIT_COMMITTER_NAME=stagex GIT_COMMITTER_EMAIL=ci@stagex.invalid \
	GIT_AUTHOR_DATE=2026-11-01T00:00:00Z GIT_COMMITTER_DATE=2026-11-01T00:00:00Z quiet git -C src commit -q -m source
quiet git clone -q src bob-vm-src
echo 'a local patch nobody reviewed' >> bob-vm-src/README
run mksample -out alice-out core-hello:1.0 core-multi:2.0::linux/amd64,linux/arm64
run mksample -out bob-out core-hello:1.0 core-multi:2.0:cloud-vm:linux/amd64,linux/arm64

step "3. alice signs what she built and pushes"
run tally sign --repo alice --release 2026.11.0 --out alice-out --source src --key keys/alice.sec.asc --push

step "4. bob clones, signs his build, and looks before pushing"
quiet git clone -q "$demo/origin.git" bob
run tally sign --repo bob --release 2026.11.0 --out bob-out --source bob-vm-src --key keys/bob.sec.asc
if has_command status; then
	fails tally status --repo bob --release 2026.11.0
fi
fails tally release plan --repo bob 2026.11.0

step "5. bob drops that commit, fixes his build environment and rebuilds: the digests agree"
run git -C bob reset -q --hard origin/main
rm -rf bob-out
run mksample -out bob-out core-hello:1.0 core-multi:2.0::linux/amd64,linux/arm64
run tally sign --repo bob --release 2026.11.0 --out bob-out --source src --key keys/bob.sec.asc --push

step "6. alice, the release manager, pulls, plans and cuts the release"
run git -C alice pull -q --ff-only
if has_command status; then
	run tally status --repo alice --release 2026.11.0
fi
run tally release plan --repo alice 2026.11.0
run tally release cut --repo alice 2026.11.0 --key keys/alice.sec.asc
run cat alice/releases/2026.11.0/digests.txt
run git -C alice tag -l --format='%(contents:subject)%0a%(contents:body)' 2026.11.0

step "7. publish: the images into a local OCI layout, the signatures and tag to origin"
run tally release publish --repo alice 2026.11.0 --out alice-out --to oci:"$demo/published"
echo "# a second run finds everything there and writes nothing:"
run tally release publish --repo alice 2026.11.0 --out alice-out --to oci:"$demo/published"
run git -C origin.git tag

step "8. what consumers put in podman/skopeo: the closest stock policy"
run tally policy export --repo alice --release 2026.11.0 \
	--registry registry.example.org/stagex --lookaside https://sigs.example.org --out policy
run cat policy/registries.d/stagex.yaml
run cat policy/policy.json

printf '\n%sdemo: done.%s Everything is in %s (make clean removes it).\n' "$bold" "$plain" "$demo"

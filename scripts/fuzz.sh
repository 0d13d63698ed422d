#!/usr/bin/env bash
# Runs every Fuzz* target in the module for FUZZTIME each (default 10s), one
# at a time: go test -fuzz takes one target per run, and two fuzzers at once
# would fight over the 2 cores. Stops at the first target that finds a
# failure (the failing input is kept under that package's testdata/fuzz/).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10s}

targets=$(grep -rE --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]*\(' . \
	| grep -v '/testdata/' | sed -E 's/^(.*)\/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($/\1 \2/' | sort -u)
if [[ -z $targets ]]; then
	echo "fuzz: no Fuzz targets found"
	exit 0
fi
n=0
while read -r dir name; do
	n=$((n + 1))
	echo "fuzz: $dir $name for $fuzztime"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$dir" </dev/null
done <<<"$targets"
echo "fuzz: $n targets ran for $fuzztime each, no failure"

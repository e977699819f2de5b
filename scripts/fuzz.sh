#!/usr/bin/env bash
# Runs every fuzz target of the module briefly (FUZZTIME each, default
# 30000 inputs, or the target's own "fuzz-count"): enough to catch a decoder that panics on the seed corpus'
# neighbours. A count, not a duration: Go 1.26's fuzz coordinator can fail a
# duration run with a bare "context deadline exceeded" when a worker is
# busy at the deadline (golang/go#75804, fixed in Go 1.27); a count has no
# deadline to race.
set -euo pipefail
cd "$(dirname "$0")/.."
count=0
while IFS=: read -r file name; do
	pkg="./$(dirname "$file")"
	# a target whose every input writes to a real database may lower its
	# count with a line "// fuzz-count: N" just above it
	own="$(grep -B1 "^func ${name}(" "$file" | grep -oE 'fuzz-count: [0-9]+x' | cut -d' ' -f2 || true)"
	fuzztime="${FUZZTIME:-${own:-30000x}}"
	start=$(date +%s)
	go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$pkg" > /tmp/fjord-fuzz.log 2>&1 || { cat /tmp/fjord-fuzz.log; exit 1; }
	echo "fuzz $pkg $name ($fuzztime): $(( $(date +%s) - start )) s"
	count=$((count + 1))
done < <(grep -rhoE --include='*_test.go' '^func (Fuzz[A-Za-z0-9_]+)' . -H | sed -E 's/^(.*):func (Fuzz[A-Za-z0-9_]+)$/\1:\2/' | sort -u)
echo "fuzz: $count targets ran without a failure"

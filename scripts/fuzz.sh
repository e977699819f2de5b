#!/usr/bin/env bash
# Runs every fuzz target of the module briefly (FUZZTIME each, default
# 10000 inputs, or the target's own "fuzz-count"): enough to catch a
# decoder that panics on the seed corpus' neighbours. A count, not a
# duration: Go 1.26's fuzz coordinator can fail a duration run with a bare
# "context deadline exceeded" when a worker is busy at the deadline
# (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
#
# Each package's instrumented test binary is built once and runs all of
# its targets: `go test -fuzz` would link it again for every target,
# which cost more than the fuzzing itself (10-20 s a target for the
# packages that link DuckDB).
set -euo pipefail
cd "$(dirname "$0")/.."
bins="$(mktemp -d)"
trap 'rm -rf "$bins"' EXIT
count=0
built=""
while IFS=: read -r file name; do
	dir="$(dirname "$file")"
	bin="$bins/$(echo "$dir" | tr / _).test"
	if [[ " $built " != *" $dir "* ]]; then
		start=$(date +%s)
		go test -c -fuzz=. -o "$bin" "./$dir" > /tmp/fjord-fuzz.log 2>&1 || { cat /tmp/fjord-fuzz.log; exit 1; }
		echo "fuzz: built ./$dir in $(( $(date +%s) - start )) s"
		built="$built $dir"
	fi
	# a target whose every input is slow (a real database, a PNG) may
	# lower its count with a line "// fuzz-count: N" just above it
	own="$(grep -B1 "^func ${name}(" "$file" | grep -oE 'fuzz-count: [0-9]+x' | cut -d' ' -f2 || true)"
	fuzztime="${FUZZTIME:-${own:-10000x}}"
	start=$(date +%s)
	# the binary runs in its package's directory, as go test runs it, so
	# that testdata/ (and the seed corpus in testdata/fuzz) is found
	(cd "$dir" && "$bin" -test.run='^$' -test.fuzz="^${name}\$" -test.fuzztime="$fuzztime" \
		-test.fuzzcachedir="$bins/cache" -test.timeout=10m) > /tmp/fjord-fuzz.log 2>&1 || { cat /tmp/fjord-fuzz.log; exit 1; }
	echo "fuzz ./$dir $name ($fuzztime): $(( $(date +%s) - start )) s"
	count=$((count + 1))
done < <(grep -rhoE --include='*_test.go' '^func (Fuzz[A-Za-z0-9_]+)' . -H | sed -E 's/^\.\/(.*):func (Fuzz[A-Za-z0-9_]+)$/\1:\2/' | sort -u)
echo "fuzz: $count targets ran without a failure"

#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given time each.
# Minimization is capped (-fuzzminimizetime 50x): with the default 60 s,
# minimizing a new interesting input can outlive a short -fuzztime and the
# run ends in "context deadline exceeded" although nothing failed (and
# Go's own deadline race, below, does the same).
set -euo pipefail
t=${1:-30s}
cd "$(dirname "$0")/.."
go list -f '{{.Dir}}' ./... | while read -r dir; do
	{ grep -ho "^func Fuzz[A-Za-z0-9_]*" "$dir"/*_test.go 2>/dev/null || true; } | sed 's/^func //' | sort -u | while read -r fz; do
		pkg=$(cd "$dir" && go list .)
		echo "fuzz: $pkg $fz ($t)" >&2
		log=$(mktemp)
		if ! go test -run '^$' -fuzz "^${fz}\$" -fuzztime "$t" -fuzzminimizetime 50x "$pkg" >"$log" 2>&1; then
			# Go's fuzz coordinator can report its own -fuzztime deadline as
			# a failure (golang/go#75804, not fixed in Go 1.26): a bare
			# "context deadline exceeded" with no failing input written is
			# that race, not a finding. Anything else fails the run.
			if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
				echo "fuzz: $fz: the fuzztime deadline race of Go's fuzzer, no failing input: passed" >&2
			else
				cat "$log" >&2
				rm -f "$log"
				exit 1
			fi
		fi
		rm -f "$log"
	done
done
echo "fuzz: all targets passed" >&2

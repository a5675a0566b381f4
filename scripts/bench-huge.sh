#!/usr/bin/env bash
# Times export and import of a generated pair with one very large layer
# (scripts/hugepair: real files from the corpus, replicated; mostly
# unchanged with scattered edits), checks the rebuilt image byte for byte
# (manifest digest) and peak RSS < 512 MiB, then deletes the generated
# files (HUGE_KEEP=1 keeps them).
#   HUGE_SIZE=10GiB   uncompressed layer size
#   HUGE_JOBS="2"     --jobs values to run, e.g. "1 2"
#   HUGE_DIR=.cache/huge
# Disk: about 3x HUGE_SIZE while it runs (two gzip layouts, the spooled
# baseline, the rebuilt image).
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS_DIR=${CORPUS_DIR:-$PWD/.cache/corpus}
SIZE=${HUGE_SIZE:-10GiB}
JOBS=${HUGE_JOBS:-2}
DIR=${HUGE_DIR:-$PWD/.cache/huge}
BIN=${BIN:-bin/diffah}
mkdir -p "$DIR"
df -h "$DIR"
cleanup() { [ "${HUGE_KEEP:-0}" = 1 ] || rm -rf "$DIR"; }
trap cleanup EXIT
start=$(date +%s)
go run ./scripts/hugepair -corpus "$CORPUS_DIR" -out "$DIR" -size "$SIZE"
echo "generated in $(( $(date +%s) - start )) s"
du -sh "$DIR/old" "$DIR/new"
want=$(jq -r '.manifests[0].digest' "$DIR/new/index.json")
export TMPDIR="$DIR/tmp"
mkdir -p "$TMPDIR"
fail=0
# measure NAME CMD...: wall, user+sys and peak RSS from GNU time.
measure() {
	local name=$1; shift
	/usr/bin/time -v "$@" 2> "$DIR/time.txt" || { cat "$DIR/time.txt"; exit 1; }
	local wall cpu rss
	wall=$(grep 'Elapsed (wall clock)' "$DIR/time.txt" | awk '{print $NF}')
	cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.1f", s}' "$DIR/time.txt")
	rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$DIR/time.txt")
	printf '%-22s wall %-10s cpu %8s s  peak RSS %5s MiB\n' "$name" "$wall" "$cpu" "$rss"
	if [ "$rss" -ge 512 ]; then echo "MISSED: peak RSS $rss MiB >= 512 MiB"; fail=1; fi
}
for j in $JOBS; do
	rm -rf "$DIR/out" "$DIR/delta.dlt"
	measure "export --jobs $j" "$BIN" export --jobs "$j" --target "oci:$DIR/new" --baseline "oci:$DIR/old" -o "$DIR/delta.dlt"
	echo "delta: $(stat -c %s "$DIR/delta.dlt") bytes; new layer: $(jq -r '.layers[0].size' "$DIR/new/blobs/sha256/${want#sha256:}") bytes"
	measure "import --jobs $j" "$BIN" import --jobs "$j" --baseline "oci:$DIR/old" -o "oci:$DIR/out:img" "$DIR/delta.dlt"
	got=$(jq -r '.manifests[0].digest' "$DIR/out/index.json")
	if [ "$got" = "$want" ]; then echo "byte-identical: ok ($got)"; else echo "MISSED: rebuilt $got, want $want"; fail=1; fi
done
exit $fail

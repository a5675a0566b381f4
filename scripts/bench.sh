#!/usr/bin/env bash
# Runs the benchmark driver over the corpus (built by scripts/corpus.sh;
# export and import are timed with --jobs 1 and 2 side by side, 4 too on
# a machine with 4 CPUs or more; BENCH_JOBS=1,2,8 chooses):
# table on stdout, JSON in bench-out/results.json. Then the Go benchmarks of
# the codec packages. Exits non-zero when a target (byte-identical rebuild,
# size at most 0.9x the smaller of the zstd and bsdiff references, 0.8x on
# the binary-heavy pairs, peak RSS under 512 MiB on the 1 GiB pair) is
# missed.
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS_DIR=${CORPUS_DIR:-$PWD/.cache/corpus}
go run ./scripts/bench -corpus "$CORPUS_DIR" -bin "${BIN:-bin/diffah}" -json bench-out/results.json ${BENCH_ONLY:+-only "$BENCH_ONLY"} ${BENCH_JOBS:+-jobs "$BENCH_JOBS"}
# The fleet pair (scripts/fleet.sh): 10, 50 and 200 services moved to one
# new release, as one bundle (BENCH_FLEET=0 skips it; FLEET_SIZES picks).
if [ "${BENCH_FLEET:-1}" = 1 ]; then
	CORPUS_DIR="$CORPUS_DIR" BIN="${BIN:-bin/diffah}" scripts/fleetbench.sh | tee bench-out/fleet.txt
fi
# diffah diff against GNU diff on the same real images.
DIFFAH_CORPUS="$CORPUS_DIR" go test -count=1 -run '^TestCorpusDiff$' -v ./cmd/diffah 2>&1 | grep -E '^(---|ok|FAIL|PASS)|files differ' | tee bench-out/corpus-diff.txt
if [ "${BENCH_GO:-1}" = 1 ]; then
	go test -run '^$' -bench . -benchtime 3x ./recompress/ ./tarpatch/ ./deflatetok/ 2>&1 | tee bench-out/go-bench.txt
fi
# Layers from foreign compressors (GNU gzip, pigz, zlib, libdeflate,
# zopfli) on the corpus's changed layers: what diffah ships vs the same
# pair as Go-gzip-6 layers (BENCH_FOREIGN=0 skips it).
if [ "${BENCH_FOREIGN:-1}" = 1 ]; then
	DIFFAH_FOREIGN_BENCH=1 DIFFAH_FOREIGN_CORPUS="$CORPUS_DIR" go test -count=1 -timeout 2h -run '^TestForeignRatios$' -v ./blobpatch/ 2>&1 |
		grep -E 'pair |compressor|  (gzip|pigz|zlib|py|libdeflate|zopfli)|^(ok|FAIL|---)' | tee bench-out/foreign.txt
fi

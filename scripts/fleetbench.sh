#!/usr/bin/env bash
# The fleet benchmark (make bench runs it after the pairs): the fleet pair
# of scripts/fleet.sh — services on one small base, all rebuilt with the
# same new Go release — delivered as one bundle of FLEET_SIZES services
# (default 10 50 200). Per size it measures plan (one process per service)
# and pack of the bundle (wall time, peak RSS), the bundle's size against
# --independent (each image to its own baseline: how bundles were before
# target-layer sources) and against the largest single-service delta
# (pack of one plan, over the first 5 services: they are alike). A bundle
# is zstd-compressed by default (pack --compress auto), which takes out the
# per-image records (sidecar JSON, manifest, config, tar headers: about
# 8 kB a service); the table also gives the plain tar (--compress none)
# against the single delta, and the bundle against the single delta
# compressed the same way (--compress zstd), and import of the
# bundle (peak RSS), checking every rebuilt manifest digest against the
# fleet's. Table on stdout, JSON in bench-out/fleet.json. Targets: the
# 50-service bundle at most 3x the largest single-service delta, every
# image byte-exact, pack and import under 512 MiB peak RSS; a miss fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BIN:-bin/diffah}; case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
FLEET_DIR=${FLEET_DIR:-$ROOT/.cache/fleet}
SIZES=${FLEET_SIZES:-10 50 200}
max=0
for n in $SIZES; do ((n > max)) && max=$n; done
FLEET_N=$max FLEET_DIR=$FLEET_DIR scripts/fleet.sh
[ "$(wc -l <"$FLEET_DIR/names")" -ge "$max" ] || { echo "fleetbench: $FLEET_DIR has fewer than $max services; delete it and run again" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p bench-out
log() { echo "fleetbench: $*" >&2; }
# timed OUT CMD...: run CMD under GNU time; OUT gets "seconds rss_kib".
timed() {
	local out=$1
	shift
	/usr/bin/time -f '%e %M' -o "$out" "$@"
}
misses=0
json="["
printf '| services | plan s (all) | pack s | pack s/service | pack peak RSS | bundle | --independent | largest single | bundle ÷ single | plain tar ÷ single | bundle ÷ single zstd | import s | import peak RSS | byte-exact |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n'
for n in $SIZES; do
	d=$work/$n
	mkdir -p "$d"
	head -"$n" "$FLEET_DIR/names" >"$d/names"
	start=$(date +%s.%N)
	while read -r name; do
		"$BIN" plan --quiet --name "$name" --target "oci:$FLEET_DIR/new:$name" --baseline "oci:$FLEET_DIR/old:$name" >"$d/plan-$name.json"
	done <"$d/names"
	plan_s=$(echo "$(date +%s.%N) - $start" | bc)
	while read -r name; do cat "$d/plan-$name.json"; done <"$d/names" >"$d/plans.json"
	log "$n: pack"
	timed "$d/pack.time" "$BIN" pack --quiet -o "$d/bundle.dlt" "$d/plans.json"
	"$BIN" pack --quiet --independent -o "$d/indep.dlt" "$d/plans.json"
	"$BIN" pack --quiet --compress none -o "$d/plain.dlt" "$d/plans.json"
	"$BIN" pack --quiet --compress zstd -o "$d/one-z.dlt" "$(head -1 "$d/names" | sed "s|^|$d/plan-|; s|$|.json|")"
	single=0
	k=0
	while read -r name && ((k < 5)); do
		k=$((k + 1))
		rm -f "$d/one.dlt"
		"$BIN" pack --quiet -o "$d/one.dlt" "$d/plan-$name.json"
		s=$(stat -c %s "$d/one.dlt")
		((s > single)) && single=$s
	done <"$d/names"
	args=()
	while read -r name; do args+=(--baseline "$name=oci:$FLEET_DIR/old:$name" -o "$name=oci:$d/out:$name"); done <"$d/names"
	log "$n: import"
	timed "$d/import.time" "$BIN" import --quiet "${args[@]}" "$d/bundle.dlt"
	exact=yes
	want=$(jq -r '.manifests[] | .annotations["org.opencontainers.image.ref.name"] + " " + .digest' "$FLEET_DIR/new/index.json" | sort)
	while read -r name; do
		got=$(jq -r --arg n "$name" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $n) | $n + " " + .digest' "$d/out/index.json")
		grep -qxF "$got" <<<"$want" || { exact=no; log "$name: rebuilt manifest $got is not the fleet's"; }
	done <"$d/names"
	read -r pack_s pack_kib <"$d/pack.time"
	read -r imp_s imp_kib <"$d/import.time"
	bundle=$(stat -c %s "$d/bundle.dlt")
	indep=$(stat -c %s "$d/indep.dlt")
	ratio=$(echo "scale=3; $bundle / $single" | bc)
	plain=$(stat -c %s "$d/plain.dlt")
	ratio_plain=$(echo "scale=3; $plain / $single" | bc)
	ratio_z=$(echo "scale=3; $bundle / $(stat -c %s "$d/one-z.dlt")" | bc)
	printf '| %d | %.1f | %.1f | %.3f | %d MiB | %s | %s | %s | %s | %s | %s | %.1f | %d MiB | %s |\n' "$n" "$plan_s" "$pack_s" "$(echo "scale=4; $pack_s / $n" | bc)" $((pack_kib / 1024)) \
		"$(numfmt --to=si "$bundle")B" "$(numfmt --to=si "$indep")B" "$(numfmt --to=si "$single")B" "$ratio" "$ratio_plain" "$ratio_z" "$imp_s" $((imp_kib / 1024)) "$exact"
	json+=$(printf '{"services":%d,"planSeconds":%s,"packSeconds":%s,"packPeakKiB":%d,"bundleBytes":%d,"independentBytes":%d,"largestSingleBytes":%d,"plainBytes":%d,"zstdRatio":%s,"importSeconds":%s,"importPeakKiB":%d,"byteExact":%s},' \
		"$n" "$plan_s" "$pack_s" "$pack_kib" "$bundle" "$indep" "$single" "$plain" "$ratio_z" "$imp_s" "$imp_kib" "$([ $exact = yes ] && echo true || echo false)")
	[ $exact = yes ] || misses=$((misses + 1))
	((pack_kib < 512 * 1024)) || { log "$n: pack peak RSS $((pack_kib / 1024)) MiB: target < 512 MiB missed"; misses=$((misses + 1)); }
	((imp_kib < 512 * 1024)) || { log "$n: import peak RSS $((imp_kib / 1024)) MiB: target < 512 MiB missed"; misses=$((misses + 1)); }
	if [ "$n" = 50 ] && (($(echo "$ratio > 3" | bc))); then
		log "50 services: bundle is ${ratio}x the largest single-service delta: target <= 3x missed"
		misses=$((misses + 1))
	fi
	rm -rf "$d/out" "$d"/*.dlt
done
echo "${json%,}]" | jq . >bench-out/fleet.json
log "wrote bench-out/fleet.json"
((misses == 0)) || { log "$misses target(s) missed"; exit 1; }

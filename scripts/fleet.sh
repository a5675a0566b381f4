#!/usr/bin/env bash
# Builds the fleet benchmark pair: FLEET_N (default 200) services on one
# small Debian base (base-files and ca-certificates), each with an app
# layer holding the same Go program under the service's own name
# (/usr/local/bin/NAME) and its own config (/etc/NAME/config.json). The old
# fleet runs goimports from golang.org/x/tools v0.51.0, the new one v0.52.0
# (the corpus's builds, in $CORPUS_DIR/dl): a release rolled out to every
# service at once. Two OCI layouts, old/ and new/, hold one image per
# service, tagged with its name, so the shared base is stored once.
# Service names carry no digits (so only content, not a path pattern,
# tells that two services hold the same binary). Idempotent.
#
#   scripts/fleet.sh            # → .cache/fleet/{old,new}, .cache/fleet/names
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CORPUS_DIR=${CORPUS_DIR:-$ROOT/.cache/corpus}
FLEET_DIR=${FLEET_DIR:-$ROOT/.cache/fleet}
N=${FLEET_N:-200}
DL=$CORPUS_DIR/dl
log() { echo "fleet: $*" >&2; }
if [ -f "$FLEET_DIR/done" ] && [ "$(wc -l <"$FLEET_DIR/names")" -ge "$N" ]; then
	log "$FLEET_DIR: $(wc -l <"$FLEET_DIR/names") services exist"
	exit 0
fi
old=$DL/gobin-golang.org_x_tools_cmd_goimports_v0.51.0/goimports
new=$DL/gobin-golang.org_x_tools_cmd_goimports_v0.52.0/goimports
for f in "$old" "$new"; do [ -x "$f" ] || { log "$f missing: run scripts/corpus.sh (make corpus) first"; exit 1; }; done
rm -rf "$FLEET_DIR"
mkdir -p "$FLEET_DIR"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/corpus" ./scripts/corpus
mkdir -p "$work/base"
for p in base-files ca-certificates; do
	deb=$(ls "$DL"/"$p"_*.deb | head -1)
	dpkg-deb -x "$deb" "$work/base"
done
adj=(amber brisk calm dusty eager fancy gentle hasty icy jolly keen lucky mellow nimble orange proud quiet rapid silver tidy)
noun=(auth billing cart dispatch email feed gateway history inventory ledger)
names=()
for ((i = 0; i < N; i++)); do names+=("${adj[i % 20]}-${noun[(i / 20) % 10]}"); done
((N <= 200)) || { log "at most 200 services"; exit 1; }
for ((i = 0; i < N; i++)); do
	name=${names[i]}
	for v in old new; do
		bin=$old ver=v0.51.0
		[ $v = new ] && bin=$new ver=v0.52.0
		app=$work/$v-$name
		mkdir -p "$app/usr/local/bin" "$app/etc/$name"
		ln "$bin" "$app/usr/local/bin/$name" 2>/dev/null || cp "$bin" "$app/usr/local/bin/$name"
		printf '{"service":"%s","port":%d,"replicas":%d,"release":"%s"}\n' "$name" $((8000 + i)) $((1 + i % 5)) "$ver" >"$app/etc/$name/config.json"
		"$work/corpus" -o "$FLEET_DIR/$v" -tag "$name" "$work/base" "$app"
		rm -rf "$app"
	done
	echo "$name" >>"$FLEET_DIR/names"
done
touch "$FLEET_DIR/done"
log "$FLEET_DIR: $N services, $(du -sh "$FLEET_DIR" | cut -f1)"

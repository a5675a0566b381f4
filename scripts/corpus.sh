#!/usr/bin/env bash
# Builds the benchmark corpus: pairs of OCI images made from real software
# (Go programs from the Go module proxy, npm packages, Debian packages),
# written by scripts/corpus (deterministic tars, gzip level 6). Idempotent:
# pairs that exist are kept. Output: $CORPUS_DIR/pairs.json for
# scripts/bench, and the uncompressed tars of the changed layers.
# CORPUS_LARGE=1 adds a pair with a layer over 1 GiB.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CORPUS_DIR=${CORPUS_DIR:-$ROOT/.cache/corpus}
DL=$CORPUS_DIR/dl
mkdir -p "$CORPUS_DIR" "$DL"
log() { echo "corpus: $*" >&2; }

# --- downloads (cached) -----------------------------------------------------
deb() { # deb PKG=VERSION DEST: extract one Debian package version into DEST
	local spec=$1 dest=$2 file
	file=$(ls "$DL"/"${spec%%=*}"_"$(echo "${spec#*=}" | sed 's/:/%3a/')"_*.deb 2>/dev/null | head -1 || true)
	if [ -z "$file" ]; then
		(cd "$DL" && apt-get download "$spec" >/dev/null 2>&1) || { log "apt-get download $spec failed (run apt-get update?)"; exit 1; }
		file=$(ls "$DL"/"${spec%%=*}"_*.deb | grep -F "$(echo "${spec#*=}" | sed 's/:/%3a/')" | head -1)
	fi
	mkdir -p "$dest"
	dpkg-deb -x "$file" "$dest"
}
npmpkg() { # npmpkg NAME@VERSION DEST: unpack into DEST/node_modules/NAME
	local spec=$1 dest=$2 name=${1%@*} tgz
	tgz="$DL/npm-$(echo "$spec" | tr '/@' '__').tgz"
	if [ ! -s "$tgz" ]; then
		(cd "$DL" && npm pack --silent "$spec" 2>/dev/null | tail -1 | xargs -I{} mv {} "$tgz") || { log "npm pack $spec failed"; exit 1; }
	fi
	mkdir -p "$dest/node_modules/$name"
	tar -xzf "$tgz" -C "$dest/node_modules/$name" --strip-components=1
}
gobin() { # gobin MODULE@VERSION DEST: build a Go program into DEST/usr/local/bin
	local spec=$1 dest=$2 out="$DL/gobin-$(echo "$1" | tr '/@' '__')"
	if [ ! -d "$out" ]; then
		mkdir -p "$out.tmp"
		GOBIN="$out.tmp" CGO_ENABLED=0 GOFLAGS=-trimpath go install "$spec" >&2 || { log "go install $spec failed"; exit 1; }
		mv "$out.tmp" "$out"
	fi
	mkdir -p "$dest/usr/local/bin"
	cp "$out"/* "$dest/usr/local/bin/"
}

# A small Debian rootfs shared by several pairs.
BASE_PKGS="base-files libc6=2.36-9+deb12u14 ca-certificates tzdata=2026b-0+deb12u1 libssl3=3.0.20-1~deb12u2"
rootfs() { # rootfs DEST [PKG=VER...]: extract packages (defaults: BASE_PKGS)
	local dest=$1
	shift
	local pkgs=("$@")
	((${#pkgs[@]})) || read -r -a pkgs <<<"$BASE_PKGS"
	for p in "${pkgs[@]}"; do
		case $p in *=*) ;; *) p="$p=$(apt-cache policy "$p" | awk '/Candidate:/ {print $2}')" ;; esac
		deb "$p" "$dest"
	done
}

pair() { # pair NAME: true if it must be built
	[ -f "$CORPUS_DIR/$1/new/index.json" ] && [ -f "$CORPUS_DIR/$1/old/index.json" ] && { log "$1: exists"; return 1; }
	rm -rf "$CORPUS_DIR/$1"
	mkdir -p "$CORPUS_DIR/$1"
	log "$1: building"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
helper=$work/corpus-helper
go build -o "$helper" ./scripts/corpus
build_image() { "$helper" -o "$@"; }

# (a) app-rebuild: same Debian base; Go programs rebuilt at nearby tags.
if pair app-rebuild; then
	rootfs "$work/a-base"
	gobin golang.org/x/tools/cmd/goimports@v0.51.0 "$work/a-app-old"
	gobin golang.org/x/tools/cmd/stringer@v0.51.0 "$work/a-app-old"
	gobin golang.org/x/tools/cmd/goimports@v0.52.0 "$work/a-app-new"
	gobin golang.org/x/tools/cmd/stringer@v0.52.0 "$work/a-app-new"
	build_image "$CORPUS_DIR/app-rebuild/old" "$work/a-base" "$work/a-app-old"
	build_image "$CORPUS_DIR/app-rebuild/new" "$work/a-base" "$work/a-app-new"
fi

# (b) npm-bump: node_modules from two versions of real packages.
if pair npm-bump; then
	rootfs "$work/b-base"
	for spec in typescript@5.3.3 lodash@4.17.20 express@4.18.1 react-dom@18.2.0 react@18.2.0; do npmpkg "$spec" "$work/b-old/app"; done
	for spec in typescript@5.4.5 lodash@4.17.21 express@4.18.2 react-dom@18.3.1 react@18.3.1; do npmpkg "$spec" "$work/b-new/app"; done
	build_image "$CORPUS_DIR/npm-bump/old" "$work/b-base" "$work/b-old"
	build_image "$CORPUS_DIR/npm-bump/new" "$work/b-base" "$work/b-new"
fi

# (c) debian-update: a rootfs where packages got security updates.
if pair debian-update; then
	rootfs "$work/c-old" base-files libc6=2.36-9+deb12u7 libssl3=3.0.20-1~deb12u2 openssl=3.0.20-1~deb12u2 \
		libcurl4=7.88.1-10+deb12u5 curl=7.88.1-10+deb12u5 libxml2=2.9.14+dfsg-1.3~deb12u4 tzdata=2026b-0+deb12u1
	rootfs "$work/c-new" base-files libc6=2.36-9+deb12u14 libssl3=3.0.22-1~deb12u2 openssl=3.0.22-1~deb12u2 \
		libcurl4=7.88.1-10+deb12u15 curl=7.88.1-10+deb12u15 libxml2=2.9.14+dfsg-1.3~deb12u6 tzdata=2026f-0+deb12u1
	build_image "$CORPUS_DIR/debian-update/old" "$work/c-old"
	build_image "$CORPUS_DIR/debian-update/new" "$work/c-new"
fi

# (d) multi-layer: five layers, only the middle one changes.
if pair multi-layer; then
	rootfs "$work/d-base"
	mkdir -p "$work/d-2" "$work/d-4" "$work/d-5"
	npmpkg lodash@4.17.21 "$work/d-2/app"
	gobin golang.org/x/tools/cmd/goimports@v0.52.0 "$work/d-4"
	echo '{"service":"demo","replicas":3}' >"$work/d-5/config.json"
	npmpkg express@4.18.1 "$work/d-3-old/app"
	npmpkg express@4.18.2 "$work/d-3-new/app"
	build_image "$CORPUS_DIR/multi-layer/old" "$work/d-base" "$work/d-2" "$work/d-3-old" "$work/d-4" "$work/d-5"
	build_image "$CORPUS_DIR/multi-layer/new" "$work/d-base" "$work/d-2" "$work/d-3-new" "$work/d-4" "$work/d-5"
fi

# (e) large: a layer over 1 GiB: five copies of the Go toolchain tree, each
# but the first missing a different subtree (so the copies are not one
# block repeated), and Debian packages; the new one with the Go programs
# rebuilt at a newer tag, the security-updated packages and one toolchain
# binary replaced.
if [ "${CORPUS_LARGE:-0}" = 1 ] && pair large; then
	drop=("" test "api misc" src/cmd/vendor "lib doc")
	for side in old new; do
		d="$work/e-$side"
		for i in 1 2 3 4 5; do
			mkdir -p "$d/opt/go$i"
			cp -a /usr/local/go/. "$d/opt/go$i/"
			for sub in ${drop[$((i - 1))]}; do rm -rf "${d:?}/opt/go$i/$sub"; done
		done
		if [ $side = old ]; then
			rootfs "$d" libc6=2.36-9+deb12u7 libssl3=3.0.20-1~deb12u2 openssl=3.0.20-1~deb12u2 libxml2=2.9.14+dfsg-1.3~deb12u4
			gobin golang.org/x/tools/cmd/goimports@v0.51.0 "$d"
		else
			rootfs "$d" libc6=2.36-9+deb12u14 libssl3=3.0.22-1~deb12u2 openssl=3.0.22-1~deb12u2 libxml2=2.9.14+dfsg-1.3~deb12u6
			gobin golang.org/x/tools/cmd/goimports@v0.52.0 "$d"
			cp "$DL"/gobin-golang.org_x_tools_cmd_goimports_v0.52.0/goimports "$d/opt/go2/bin/gofmt"
		fi
		size=$(du -sb --apparent-size "$d" | cut -f1)
		log "large/$side: $size bytes of files"
		((size >= 1 << 30)) || { log "large/$side: only $size bytes, want at least 1 GiB (is /usr/local/go a full Go tree?)"; exit 1; }
	done
	build_image "$CORPUS_DIR/large/old" "$work/e-old"
	build_image "$CORPUS_DIR/large/new" "$work/e-new"
fi

# pairs.json lists the pairs that exist, with the uncompressed tars of their
# changed layers (NAME/tars/DIFFID.tar) for the zstd --patch-from reference.
"$helper" -pairs "$CORPUS_DIR" app-rebuild npm-bump debian-update multi-layer large
log "wrote $CORPUS_DIR/pairs.json"

#!/usr/bin/env bash
# Installs the Debian tools diffah's tests, demo and benchmarks use, when
# they are missing: skopeo and umoci (independent validators), the CNCF
# distribution registry (docker-registry), zstd and bsdiff (benchmark
# references), jq, GNU time (peak RSS), openssl (key interop tests), podman
# (a real container engine for the docker-daemon: tests) and the foreign
# gzip compressors the deflate token form is tested against (pigz, zopfli,
# libdeflate-gzip; GNU gzip and python3's zlib are there already).
set -euo pipefail
need=()
for pair in skopeo:skopeo umoci:umoci docker-registry:docker-registry zstd:zstd bsdiff:bsdiff jq:jq /usr/bin/time:time openssl:openssl podman:podman pigz:pigz zopfli:zopfli libdeflate-gzip:libdeflate-tools; do
	bin=${pair%%:*} pkg=${pair#*:}
	if ! command -v "$bin" >/dev/null 2>&1; then need+=("$pkg"); fi
done
# The package manager's output goes to a log file, not the terminal; it
# is printed only when the install fails.
log=${DEPS_LOG:-${TMPDIR:-/tmp}/diffah-deps.log}
if ((${#need[@]})); then
	echo "deps: installing ${need[*]} from Debian (log: $log)" >&2
	SUDO=""
	if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
	if ! { $SUDO apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$log" 2>&1; then
		cat "$log" >&2
		echo "deps: installing ${need[*]} failed (log above, kept in $log)" >&2
		exit 1
	fi
fi
go mod download >>"$log" 2>&1 || { cat "$log" >&2; echo "deps: go mod download failed" >&2; exit 1; }

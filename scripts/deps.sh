#!/usr/bin/env bash
# Installs the Debian tools diffah's tests, demo and benchmarks use, when
# they are missing: skopeo and umoci (independent validators), the CNCF
# distribution registry (docker-registry), zstd (benchmark reference), jq,
# GNU time (peak RSS) and openssl (key interop tests).
set -euo pipefail
need=()
for pair in skopeo:skopeo umoci:umoci docker-registry:docker-registry zstd:zstd jq:jq /usr/bin/time:time openssl:openssl; do
	bin=${pair%%:*} pkg=${pair#*:}
	if ! command -v "$bin" >/dev/null 2>&1; then need+=("$pkg"); fi
done
if ((${#need[@]})); then
	echo "deps: installing ${need[*]}" >&2
	SUDO=""
	if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
	$SUDO apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
go mod download

#!/usr/bin/env bash
# Provides `registry` (CNCF distribution, the reference OCI registry) to the release test, which
# pushes the chart and the image to it on loopback: built from the Go module proxy into a cache
# outside the clone, and printed as the last line of stdout.
#
# Environment:
#   PIKO_K8S_CACHE    cache root (default $HOME/.cache/piko-k8s)
#   REGISTRY_BINARY   use this registry instead of building (it must run); nothing is cached
#   PIKO_K8S_GO       the go command (default /usr/local/go/bin/go, else go from PATH)
set -euo pipefail

REGISTRY_MODULE=github.com/distribution/distribution/v3
REGISTRY_VERSION=v3.1.2

log() { printf 'build-registry: %s\n' "$*" >&2; }

runs() { [[ -f $1 && -x $1 ]] && "$1" --version >/dev/null 2>&1; }

cache_root=${PIKO_K8S_CACHE:-$HOME/.cache/piko-k8s}

# shellcheck source=../tools/go-build-cached.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tools/go-build-cached.sh"
exit_with_override REGISTRY_BINARY

go_build_cached "$REGISTRY_MODULE" "$REGISTRY_VERSION" cmd/registry registry registry

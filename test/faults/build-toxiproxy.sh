#!/usr/bin/env bash
# Provides toxiproxy-server (github.com/Shopify/toxiproxy, the fault-injecting TCP proxy) to the
# fault-injection tests: built from the Go module proxy into a cache outside the clone, and
# printed as the last line of stdout.
#
# Environment:
#   PIKO_K8S_CACHE    cache root (default $HOME/.cache/piko-k8s)
#   TOXIPROXY_BINARY  use this toxiproxy-server instead of building (it must run); nothing is cached
#   PIKO_K8S_GO       the go command (default /usr/local/go/bin/go, else go from PATH)
set -euo pipefail

TOXIPROXY_MODULE=github.com/Shopify/toxiproxy/v2
TOXIPROXY_VERSION=v2.5.0

log() { printf 'build-toxiproxy: %s\n' "$*" >&2; }

runs() { [[ -f $1 && -x $1 ]] && "$1" -version >/dev/null 2>&1; }

cache_root=${PIKO_K8S_CACHE:-$HOME/.cache/piko-k8s}

# shellcheck source=../tools/go-build-cached.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tools/go-build-cached.sh"
exit_with_override TOXIPROXY_BINARY

go_build_cached "$TOXIPROXY_MODULE" "$TOXIPROXY_VERSION" cmd/server toxiproxy-server toxiproxy

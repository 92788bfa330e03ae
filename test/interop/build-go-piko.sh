#!/usr/bin/env bash
# Provides the original Go Piko binary to the interop tests and benchmarks.
#
# Builds github.com/andydunstall/piko from the Go module proxy into a cache outside the clone,
# keyed by version, and prints the binary path as the last line of stdout. A binary already in
# the cache that runs is reused without touching the network.
#
# Versions are tried newest first. The module proxy refuses v0.9.0, v0.8.1 and v0.8.0 ("403
# Forbidden: This module version is not available"); v0.7.0 is served, and speaks the same
# protocol (WebSocket + yamux), so it is the fallback. A refusal is remembered for a day so a
# test run does not ask again every time.
#
# Environment:
#   PIKO_K8S_CACHE  cache root (default $HOME/.cache/piko-k8s)
#   GO_PIKO_BINARY  use this binary instead of building (it must run); nothing is cached
#   PIKO_K8S_GO     the go command (default /usr/local/go/bin/go, else go from PATH)
set -euo pipefail

GO_PIKO_VERSIONS=(v0.9.0 v0.7.0)
GO_PIKO_MODULE=github.com/andydunstall/piko

log() { printf 'build-go-piko: %s\n' "$*" >&2; }

# `piko --help` is the cheapest proof the binary is whole and executable for this machine.
runs() { [[ -f $1 && -x $1 ]] && "$1" --help >/dev/null 2>&1; }

cache_root=${PIKO_K8S_CACHE:-$HOME/.cache/piko-k8s}

# shellcheck source=../tools/go-build-cached.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tools/go-build-cached.sh"
exit_with_override GO_PIKO_BINARY

for version in "${GO_PIKO_VERSIONS[@]}"; do
  if go_build_cached "$GO_PIKO_MODULE" "$version" . piko go-piko; then
    exit 0
  fi
  log "falling back from $version"
done
log "no version of $GO_PIKO_MODULE could be built: ${GO_PIKO_VERSIONS[*]}"
exit 1

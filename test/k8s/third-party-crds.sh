#!/usr/bin/env bash
# Provides the CRDs of the optional APIs the operator uses (Gateway API, cert-manager,
# Prometheus Operator) to the tests, as their projects publish them in their Go modules: the
# module proxy serves each module's source, YAML included, and `go mod download` keeps it in the
# Go module cache (outside the clone, verified against the checksum database), where a later run
# finds it without the network. Prints one line per module: NAME=DIRECTORY.
#
# Environment: PIKO_K8S_GO, the go command (default /usr/local/go/bin/go, else go from PATH).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf 'third-party-crds: %s\n' "$*" >&2; }
# shellcheck source=../tools/go-build-cached.sh
source "$here/../tools/go-build-cached.sh"
find_go

# name module version: pinned, bumped by hand.
modules=(
  "gateway-api sigs.k8s.io/gateway-api v1.6.3"
  "cert-manager github.com/cert-manager/cert-manager v1.21.2"
  "prometheus-operator github.com/prometheus-operator/prometheus-operator v0.85.0"
)

for entry in "${modules[@]}"; do
  read -r name module version <<<"$entry"
  # Outside any module, so the clone's own go.mod files play no part.
  if ! json=$(cd / && GOFLAGS=-mod=mod "$go_cmd" mod download -json "$module@$version"); then
    log "$module@$version: go mod download failed"
    exit 1
  fi
  dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  if [[ -z $dir || ! -d $dir ]]; then
    log "$module@$version: no directory in: $json"
    exit 1
  fi
  printf '%s=%s\n' "$name" "$dir"
done

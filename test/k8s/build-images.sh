#!/usr/bin/env bash
# Builds the images the test node runs, with no registry and no container engine: each is an OCI
# image layout made with umoci (Debian's package) from binaries built here, packed as a tar that
# `ctr images import` takes. Prints the directory holding <name>.tar for each as the last line.
#   pause    registry.k8s.io/pause:3.10.2, the sandbox image containerd pins (test/k8s/images/pause)
#   coredns  piko-k8s.test/coredns:<version>, CoreDNS as build-node.sh built it
#
# Environment:
#   PIKO_K8S_CACHE  cache root (default $HOME/.cache/piko-k8s)
#   PIKO_K8S_GO     the go command (default /usr/local/go/bin/go, else go from PATH)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${PIKO_K8S_CACHE:-$HOME/.cache/piko-k8s}
log() { printf 'build-images: %s\n' "$*" >&2; }
runs() { [[ -x $1 ]]; }
# shellcheck source=../tools/go-build-cached.sh
source "$here/../tools/go-build-cached.sh"
find_go

node_bin=$(bash "$here/build-node.sh" | tail -n 1)
out=$cache_root/node/images
mkdir -p "$out"
work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# image NAME TAG USER ENTRYPOINT FILE...: an image of one layer holding FILEs at the root.
image() {
  local name=$1 tag=$2 user=$3 entrypoint=$4
  shift 4
  local layout=$work/$name
  umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  umoci unpack --image "$layout:$tag" "$work/$name-bundle" >/dev/null
  cp "$@" "$work/$name-bundle/rootfs/"
  umoci repack --image "$layout:$tag" "$work/$name-bundle"
  umoci config --image "$layout:$tag" --os linux --architecture amd64 --config.user "$user" \
    --config.entrypoint "$entrypoint"
  umoci gc --layout "$layout"
  tar -C "$layout" -cf "$work/$name.tar" .
  mv -f "$work/$name.tar" "$out/$name.tar"
  log "$name:$tag: $(du -h "$out/$name.tar" | cut -f1)"
}

mkdir "$work/bin"
(cd "$here/images/pause" && CGO_ENABLED=0 GOWORK=off GOFLAGS= "$go_cmd" build -trimpath -ldflags="-s -w" -o "$work/bin/pause" .)
image pause 3.10.2 65535 /pause "$work/bin/pause"
cp -L "$node_bin/coredns" "$work/bin/coredns"
image coredns v1.14.7 65532 /coredns "$work/bin/coredns"
printf '%s\n' "$out"

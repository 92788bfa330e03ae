#!/usr/bin/env bash
# Provides what a Kubernetes node runs besides the kubelet and kube-proxy (which
# build-control-plane.sh builds with the rest of Kubernetes): containerd and its runc shim, the
# CNI plugins bridge, host-local, loopback and portmap, CoreDNS, and from Debian's packages runc,
# iptables and conntrack. Go programs are built from the Go module proxy into the cache, each at
# the pinned version below, as their own main module; Debian's packages are installed once.
# Prints the directory holding every binary as the last line of stdout.
#
# Environment:
#   PIKO_K8S_CACHE  cache root (default $HOME/.cache/piko-k8s)
#   PIKO_K8S_GO     the go command (default /usr/local/go/bin/go, else go from PATH)
set -euo pipefail

CONTAINERD_MODULE=github.com/containerd/containerd/v2
CONTAINERD_VERSION=v2.4.2
CNI_MODULE=github.com/containernetworking/plugins
CNI_VERSION=v1.10.0
COREDNS_MODULE=github.com/coredns/coredns
COREDNS_VERSION=v1.14.7
DEBIAN_PACKAGES=(runc iptables conntrack umoci)

log() { printf 'build-node: %s\n' "$*" >&2; }

# The cheapest proof each binary is whole and runs here.
runs() {
  [[ -f $1 && -x $1 ]] || return 1
  case $(basename "$1") in
    bridge | host-local | loopback | portmap) CNI_COMMAND=VERSION "$1" </dev/null >/dev/null 2>&1 ;;
    coredns) "$1" -version >/dev/null 2>&1 ;;
    *) "$1" --version >/dev/null 2>&1 ;;
  esac
}

cache_root=${PIKO_K8S_CACHE:-$HOME/.cache/piko-k8s}
# shellcheck source=../tools/go-build-cached.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tools/go-build-cached.sh"

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
  log "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi

bin_dir=$cache_root/node/bin
mkdir -p "$bin_dir"
link() { ln -sf "$1" "$bin_dir/$(basename "$1")"; }

for pkg in cmd/containerd cmd/containerd-shim-runc-v2 cmd/ctr; do
  link "$(go_build_cached "$CONTAINERD_MODULE" "$CONTAINERD_VERSION" "$pkg" "$(basename "$pkg")" node/containerd | tail -n 1)"
done
for pkg in plugins/main/bridge plugins/ipam/host-local plugins/main/loopback plugins/meta/portmap; do
  link "$(go_build_cached "$CNI_MODULE" "$CNI_VERSION" "$pkg" "$(basename "$pkg")" node/cni | tail -n 1)"
done
link "$(go_build_cached "$COREDNS_MODULE" "$COREDNS_VERSION" . coredns node/coredns | tail -n 1)"
for tool in runc iptables conntrack umoci; do
  link "$(command -v "$tool")"
done
printf '%s\n' "$bin_dir"

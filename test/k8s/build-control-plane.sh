#!/usr/bin/env bash
# Provides a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager), the
# node's kube-scheduler, kubelet and kube-proxy, plus kubectl and helm to the tests, built from source through the Go module proxy. There is no
# container engine on our machines, so kind and k3d cannot run; these are the same binaries a
# cluster runs, as plain processes on 127.0.0.1 (see control-plane.ts).
#
# Versions are pinned by tools/go.mod (Kubernetes, etcd) and helm/go.mod (Helm), with their
# go.sum files. The binaries go into a cache outside the clone, keyed by a hash of those files,
# the Go version and the build flags:
#   $PIKO_K8S_CACHE/control-plane/<key>/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy,kubectl,helm}
# A complete directory that runs is reused without touching the network or the compiler; the bin
# directory is printed as the last line of stdout. A cold build (empty Go caches) took 12 min on
# two busy cores, downloading 1.1 GB of modules and filling 4.8 GB of Go build cache; the binaries
# take 361 MB and are bit-for-bit the same from build to build.
#
# Environment:
#   PIKO_K8S_CACHE  cache root (default $HOME/.cache/piko-k8s)
#   PIKO_K8S_GO     the go command (default /usr/local/go/bin/go, else go from PATH)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${PIKO_K8S_CACHE:-$HOME/.cache/piko-k8s}
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl helm)

log() { printf 'build-control-plane: %s\n' "$*" >&2; }

# shellcheck source=../tools/go-build-cached.sh
source "$here/../tools/go-build-cached.sh"
find_go

# The version strings a release build stamps in (Kubernetes' hack/lib/version.sh, Helm's
# Makefile). Without them the apiserver reports v0.0.0-master, which Helm's kubeVersion checks
# and kubectl's skew warnings would trip over. The build date is the release's, not now, so the
# same inputs give the same binaries.
k8s_version=v1.37.2
k8s_build_date=2026-10-27T12:01:04Z
helm_version=v4.3.1
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=37"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$k8s_build_date"
done
helm_ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$helm_version"
helm_ldflags+=" -X helm.sh/helm/v4/internal/version.gitTreeState=clean"

for f in tools/go.mod tools/go.sum helm/go.mod helm/go.sum; do
  if [[ ! -f $here/$f ]]; then
    log "missing $here/$f"
    exit 1
  fi
done
# The stamped versions must follow the pins, or a bump would report the old release.
if ! grep -Eq "k8s.io/kubernetes $k8s_version( |\$)" "$here/tools/go.mod" ||
  ! grep -Eq "helm.sh/helm/v4 $helm_version( |\$)" "$here/helm/go.mod"; then
  log "the versions in this script ($k8s_version, helm $helm_version) do not match tools/go.mod and helm/go.mod"
  exit 1
fi

go_version=$("$go_cmd" env GOVERSION)
key=$(
  cd "$here"
  {
    cat tools/go.mod tools/go.sum helm/go.mod helm/go.sum
    printf '%s\n%s\n%s\n' "$go_version" "$k8s_ldflags" "$helm_ldflags"
  } | sha256sum | cut -c1-16
)
dest=$cache_root/control-plane/$key

# `--version` is the cheapest proof each binary is whole and executable on this machine.
complete() {
  local dir=$1 bin
  for bin in "${binaries[@]}"; do
    [[ -x $dir/$bin ]] || return 1
    case $bin in
      kubectl) "$dir/kubectl" version --client >/dev/null 2>&1 ;;
      helm) "$dir/helm" version >/dev/null 2>&1 ;;
      *) "$dir/$bin" --version >/dev/null 2>&1 ;;
    esac || return 1
  done
}

if complete "$dest"; then
  printf '%s\n' "$dest"
  exit 0
fi

mkdir -p "$cache_root/control-plane"
# Jest workers and `make k8s-up` may call this concurrently; one builds, the others wait and
# reuse its result. go runs with fd 9 closed so a go left behind by a killed script cannot hold
# the lock.
exec 9>"$cache_root/control-plane/.lock-$key"
flock 9
if complete "$dest"; then
  printf '%s\n' "$dest"
  exit 0
fi

# Holding the lock, any temp dir for this key is left over from a killed build.
rm -rf "$cache_root/control-plane/.build-$key".*
# The temp dir sits beside the destination so the final mv is a rename on one filesystem: a
# build killed part-way never leaves a half-filled $dest.
tmp_dir=$(mktemp -d "$cache_root/control-plane/.build-$key.XXXXXX")
trap 'rm -rf "$tmp_dir"' EXIT

log "building Kubernetes $k8s_version, etcd and Helm $helm_version with $go_version into $dest (a cold build takes 10-15 min on two cores)"
started=$SECONDS

# A private environment so the build neither depends on nor pollutes the user's Go set-up:
# GOENV=off ignores `go env -w`, the module and build caches live under the cache root
# (-modcacherw lets `rm -rf` clear them), -mod=readonly refuses to edit the committed go.mod, and
# no private-module exceptions apply.
(
  export GOENV=off GOFLAGS="-mod=readonly -modcacherw" GOPATH="$cache_root/go/path" \
    GOMODCACHE="$cache_root/go/mod" GOCACHE="$cache_root/go/build" GONOPROXY= GONOSUMDB= \
    GOPRIVATE= GOINSECURE= GOWORK=off GOTOOLCHAIN=auto CGO_ENABLED=0
  cd "$here/tools"
  # One go build for the Kubernetes commands shares the compilation of their common packages;
  # -o into a directory names each after its package. The scheduler, kubelet and kube-proxy are
  # the node's (test/k8s/node.ts).
  "$go_cmd" build -trimpath -ldflags="$k8s_ldflags" -o "$tmp_dir/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy \
    k8s.io/kubernetes/cmd/kubectl
  log "Kubernetes built after $((SECONDS - started)) s"
  "$go_cmd" build -trimpath -ldflags="-s -w" -o "$tmp_dir/etcd" go.etcd.io/etcd/server/v3
  log "etcd built after $((SECONDS - started)) s"
  cd "$here/helm"
  "$go_cmd" build -trimpath -ldflags="$helm_ldflags" -o "$tmp_dir/helm" helm.sh/helm/v4/cmd/helm
  log "helm built after $((SECONDS - started)) s"
) 9>&-

if ! complete "$tmp_dir"; then
  log "a built binary does not run (\`--version\` failed for one of: ${binaries[*]})"
  exit 1
fi
chmod 755 "$tmp_dir"
rm -rf "$dest"
mv "$tmp_dir" "$dest"
trap - EXIT
log "built in $((SECONDS - started)) s"
printf '%s\n' "$dest"

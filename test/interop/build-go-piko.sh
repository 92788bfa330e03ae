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

if [[ -n ${GO_PIKO_BINARY:-} ]]; then
  if ! runs "$GO_PIKO_BINARY"; then
    log "GO_PIKO_BINARY=$GO_PIKO_BINARY does not run (\`--help\` failed)"
    exit 1
  fi
  printf '%s\n' "$GO_PIKO_BINARY"
  exit 0
fi

cache_root=${PIKO_K8S_CACHE:-$HOME/.cache/piko-k8s}


go_cmd=${PIKO_K8S_GO:-}
if [[ -z $go_cmd ]]; then
  if [[ -x /usr/local/go/bin/go ]]; then
    go_cmd=/usr/local/go/bin/go
  elif go_cmd=$(command -v go); then
    :
  else
    log "no go command: install Go or set PIKO_K8S_GO"
    exit 1
  fi
fi

# build_version VERSION: prints the binary path, or fails (the reason on stderr).
build_version() {
GO_PIKO_VERSION=$1
dest_dir=$cache_root/go-piko/$GO_PIKO_VERSION
bin=$dest_dir/piko
if runs "$bin"; then
  printf '%s\n' "$bin"
  return 0
fi
if [[ -n $(find "$dest_dir/.unavailable" -mmin -1440 2>/dev/null) ]]; then
  log "$GO_PIKO_MODULE@$GO_PIKO_VERSION: refused by the module proxy earlier today: $(tail -n 1 "$dest_dir/.unavailable")"
  return 1
fi
mkdir -p "$dest_dir"

# Jest workers may call this concurrently; one builds, the others wait and then reuse its result.
# go runs with fd 9 closed so a go left behind by a killed script cannot hold the lock.
exec 9>"$dest_dir/.lock"
flock 9
if runs "$bin"; then
  printf '%s\n' "$bin"
  return 0
fi

# Holding the lock, any other temp dir is left over from a killed build.
rm -rf "$dest_dir"/.build.*

# The temp dir sits beside the destination so the final mv is a rename on one filesystem:
# a build killed part-way leaves only a temp dir, never a half-written binary at $bin.
tmp_dir=$(mktemp -d "$dest_dir/.build.XXXXXX")
trap 'rm -rf "$tmp_dir"' RETURN

log "building $GO_PIKO_MODULE@$GO_PIKO_VERSION with $("$go_cmd" version)"
started=$SECONDS

# A private environment so the build does not depend on (or pollute) the user's Go set-up:
# GOENV=off ignores the user's `go env -w` file, the module and build caches live under the
# cache root, -modcacherw lets `rm -rf` clear that cache, and no private-module exceptions apply.
build_status=0
(
  cd "$tmp_dir"
  export GOENV=off GOFLAGS=-modcacherw GOPATH="$cache_root/go/path" GOMODCACHE="$cache_root/go/mod" \
    GOCACHE="$cache_root/go/build" GONOPROXY= GONOSUMDB= GOPRIVATE= GOINSECURE= GOWORK=off \
    GOTOOLCHAIN=auto CGO_ENABLED=0
  # Not `go install module@version`: that also reads the module's version list, which the proxy
  # refuses for this module. Downloading the one version and building it as the main module
  # (its own go.mod and go.sum, no replace lines) is the same build.
  src=$("$go_cmd" mod download -json "$GO_PIKO_MODULE@$GO_PIKO_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -n $src ]] || exit 1
  cd "$src"
  "$go_cmd" build -trimpath -ldflags="-s -w" -o "$tmp_dir/piko" .
) 9>&- 2>"$tmp_dir/go.err" || build_status=$?
cat "$tmp_dir/go.err" >&2

if [[ $build_status -ne 0 ]]; then
  if grep -q 'This module version is not available' "$tmp_dir/go.err"; then
    cp "$tmp_dir/go.err" "$dest_dir/.unavailable"
  fi
  log "go install $GO_PIKO_MODULE@$GO_PIKO_VERSION failed with exit status $build_status (the go error is above)"
  return "$build_status"
fi

if ! runs "$tmp_dir/piko"; then
  log "the built binary does not run (\`piko --help\` failed)"
  return 1
fi

mv -f "$tmp_dir/piko" "$bin"
log "built in $((SECONDS - started)) s"
printf '%s\n' "$bin"
}

for version in "${GO_PIKO_VERSIONS[@]}"; do
  if build_version "$version"; then
    exit 0
  fi
  log "falling back from $version"
done
log "no version of $GO_PIKO_MODULE could be built: ${GO_PIKO_VERSIONS[*]}"
exit 1

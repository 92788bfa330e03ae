# Sourced by the scripts that provide a Go binary to tests (test/interop/build-go-piko.sh,
# test/faults/build-toxiproxy.sh): builds one version of a module from the Go module proxy into
# a cache outside the clone, keyed by version, and reuses a cached binary that runs without
# touching the network.
#
# The caller defines:
#   log MESSAGE...   how to report (stderr)
#   runs PATH        succeeds when the binary at PATH is whole and runs on this machine
# and sets cache_root. Environment: PIKO_K8S_GO, the go command (default /usr/local/go/bin/go,
# else go from PATH). test/k8s/build-control-plane.sh uses find_go alone.

# find_go: sets go_cmd, or exits when there is no go command.
find_go() {
  go_cmd=${PIKO_K8S_GO:-}
  [[ -n $go_cmd ]] && return 0
  if [[ -x /usr/local/go/bin/go ]]; then
    go_cmd=/usr/local/go/bin/go
  elif go_cmd=$(command -v go); then
    :
  else
    log "no go command: install Go or set PIKO_K8S_GO"
    exit 1
  fi
}

# exit_with_override VAR: when the environment variable VAR names a binary, prints it and exits
# (failing if it does not run); nothing is built or cached then.
exit_with_override() {
  local var=$1
  local value=${!var:-}
  [[ -z $value ]] && return 0
  if ! runs "$value"; then
    log "$var=$value does not run"
    exit 1
  fi
  printf '%s\n' "$value"
  exit 0
}

# go_build_cached MODULE VERSION PACKAGE NAME DIR: prints the binary's path as the last line of
# stdout, or fails (the reason on stderr). PACKAGE is the main package's directory inside the
# module ("." for its root); the binary is $cache_root/DIR/VERSION/NAME. A version the module proxy refuses is remembered for a day, so a
# test run does not ask again every time.
go_build_cached() {
  local module=$1 version=$2 package=$3 name=$4
  find_go
  local dest_dir=$cache_root/$5/$version
  local bin=$dest_dir/$name
  if runs "$bin"; then
    printf '%s\n' "$bin"
    return 0
  fi
  if [[ -n $(find "$dest_dir/.unavailable" -mmin -1440 2>/dev/null) ]]; then
    log "$module@$version: refused by the module proxy earlier today: $(tail -n 1 "$dest_dir/.unavailable")"
    return 1
  fi
  mkdir -p "$dest_dir"

  # Jest workers may call this concurrently; one builds, the others wait and then reuse its
  # result. go runs with fd 9 closed so a go left behind by a killed script cannot hold the lock.
  exec 9>"$dest_dir/.lock"
  flock 9
  if runs "$bin"; then
    printf '%s\n' "$bin"
    return 0
  fi

  # Holding the lock, any other temp dir is left over from a killed build.
  rm -rf "$dest_dir"/.build.*

  # The temp dir sits beside the destination so the final mv is a rename on one filesystem: a
  # build killed part-way leaves only a temp dir, never a half-written binary at $bin.
  local tmp_dir
  tmp_dir=$(mktemp -d "$dest_dir/.build.XXXXXX")
  trap 'rm -rf "$tmp_dir"' RETURN

  log "building $module@$version with $("$go_cmd" version)"
  local started=$SECONDS

  # A private environment so the build does not depend on (or pollute) the user's Go set-up:
  # GOENV=off ignores the user's `go env -w` file, the module and build caches live under the
  # cache root, -modcacherw lets `rm -rf` clear that cache, and no private-module exceptions apply.
  local build_status=0
  (
    cd "$tmp_dir"
    export GOENV=off GOFLAGS=-modcacherw GOPATH="$cache_root/go/path" GOMODCACHE="$cache_root/go/mod" \
      GOCACHE="$cache_root/go/build" GONOPROXY= GONOSUMDB= GOPRIVATE= GOINSECURE= GOWORK=off \
      GOTOOLCHAIN=auto CGO_ENABLED=0
    # Not `go install module@version`: that also reads the module's version list, which the proxy
    # refuses for some modules. Downloading the one version and building it as the main module
    # (its own go.mod and go.sum, no replace lines) is the same build.
    src=$("$go_cmd" mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -n $src ]] || exit 1
    cd "$src"
    "$go_cmd" build -trimpath -ldflags="-s -w" -o "$tmp_dir/$name" "./$package"
  ) 9>&- 2>"$tmp_dir/go.err" || build_status=$?
  cat "$tmp_dir/go.err" >&2

  if [[ $build_status -ne 0 ]]; then
    if grep -q 'This module version is not available' "$tmp_dir/go.err"; then
      cp "$tmp_dir/go.err" "$dest_dir/.unavailable"
    fi
    log "go install $module@$version failed with exit status $build_status (the go error is above)"
    return "$build_status"
  fi

  if ! runs "$tmp_dir/$name"; then
    log "the built binary does not run"
    return 1
  fi

  mv -f "$tmp_dir/$name" "$bin"
  log "built in $((SECONDS - started)) s"
  printf '%s\n' "$bin"
}

#!/usr/bin/env bash
# `make bench`: our server and agent against a direct Node upstream and the original Go Piko, on
# loopback. Installs wrk if missing, builds, profiles our server and agent, runs the benchmark,
# prints the table and writes docs/benchmarks/{README.md,results.svg} and bench/results/*.json.
#
# Environment:
#   BENCH_QUICK=1          short runs, one repetition (smoke test; docs/benchmarks is left alone
#                          unless BENCH_WRITE_DOCS=1)
#   BENCH_PROFILE=0        skip the --cpu-prof run
#   BENCH_SUITES=a,b       only these suites (http, bodies, distance, footprint, multi,
#                          pikobench, idle); the
#                          docs page is then left alone (it would miss rows)
#   BENCH_REPS, BENCH_DURATION   repetitions per measurement (3) and seconds per wrk run (7)
#   BENCH_MAX_LOAD=1.5     wait (at most BENCH_LOAD_WAIT_S, default 300 s) for the 1-minute load
#                          average to drop below this before starting
#   BENCH_MAX_SECONDS      watchdog for the benchmark proper (default 1500)
#   BENCH_NODE_OPTIONS     runtime flags for our server and agent (to weigh a V8 flag over a run)
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
export PATH="$root/node_modules/.bin:$PATH"

log() { printf 'bench: %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk (Debian package)"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get install -y wrk >/dev/null 2>&1 || { $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null; }
fi

[[ -f node_modules/.package-lock.json ]] || npm ci --no-audit --no-fund
tsc -p tsconfig.build.json

GO_PIKO_BIN=$(bash test/interop/build-go-piko.sh | tail -n 1)
go_cmd=/usr/local/go/bin/go
[[ -x $go_cmd ]] || go_cmd=go
export GO_PIKO_BIN
GO_PIKO_VERSION=$(basename "$(dirname "$GO_PIKO_BIN")")
GO_VERSION=$("$go_cmd" version 2>/dev/null || echo "go: unknown")
WRK_VERSION=$(wrk -v 2>&1 | head -n 1 | sed 's/ Copyright.*//' || true)
export GO_PIKO_VERSION GO_VERSION WRK_VERSION
# Which code was measured: the commit, and how many files under dataplane/ and bin/ differ from it.
BENCH_COMMIT=${BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
BENCH_DIRTY=${BENCH_DIRTY:-$(git status --porcelain -- dataplane bin 2>/dev/null | wc -l)}
export BENCH_COMMIT BENCH_DIRTY

# 10,000 idle tunnels need 10,000 descriptors in the server and as many across the client processes.
hard=$(ulimit -Hn)
if [[ $hard != unlimited && $hard -lt 12000 ]]; then
  log "the open-file limit is $hard; the 10,000-tunnel run needs about 12,000"
fi
ulimit -n "$hard"

if [[ -n ${BENCH_MAX_LOAD:-} ]]; then
  waited=0
  limit=${BENCH_LOAD_WAIT_S:-300}
  while awk -v max="$BENCH_MAX_LOAD" '{ exit !($1 >= max) }' /proc/loadavg && ((waited < limit)); do
    ((waited % 30 == 0)) && log "load average $(cut -d' ' -f1-3 /proc/loadavg), waiting for < $BENCH_MAX_LOAD"
    sleep 5
    waited=$((waited + 5))
  done
fi
log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

mkdir -p bench/results

# Each stage runs in its own process group (setsid), so the trap ends every process it started,
# whatever way this script ends.
pid=""
BENCH_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/piko-bench-run.XXXXXX")
export BENCH_TMPDIR
cleanup() {
  if [[ -n $pid ]]; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
}
trap 'cleanup; rm -rf "$BENCH_TMPDIR"' EXIT
trap 'exit 130' INT TERM

if [[ ${BENCH_PROFILE:-1} != 0 ]]; then
  log "profiling our server and agent (node --cpu-prof)"
  setsid ts-node --transpile-only bench/profile.ts &
  pid=$!
  if wait "$pid"; then
    export BENCH_PROFILE_SUMMARY="$root/bench/results/profile-summary.md"
  else
    log "the profile run failed; carrying on without it"
  fi
  cleanup
  pid=""
fi

setsid ts-node --transpile-only bench/bench.ts &
pid=$!
wait "$pid"

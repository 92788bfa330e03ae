#!/usr/bin/env bash
# Counts V8's garbage collections in our server and agent during 8 s of 1 MiB
# responses through the tunnel (wrk, 10 connections, all on loopback), under
# the runtime flags given as the first argument. This is the measurement behind
# the README's note on the young generation:
#
#   bash bench/gc-trace.sh ""                          # default: ~180 mark-compacts per process
#   bash bench/gc-trace.sh "--max-semi-space-size=1"   # ~30, and ~700 scavenges
#
# Needs `make build` and wrk (bench/run.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
flags=${1:-}
node=node_modules/node/bin/node
[[ -x $node ]] || node=node
dir=$(mktemp -d "${TMPDIR:-/tmp}/piko-gc-trace.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
"$node" -e "const b=Buffer.alloc(1<<20,97);require('http').createServer((q,s)=>{s.setHeader('content-length',b.length);s.end(b)}).listen($((port + 5)),'127.0.0.1')" &
pids+=($!)
# shellcheck disable=SC2086 # the flags are words
"$node" --trace-gc $flags dist/dataplane/cli/main.js server --proxy.bind-addr "127.0.0.1:$port" \
  --upstream.bind-addr "127.0.0.1:$((port + 1))" --admin.bind-addr "127.0.0.1:$((port + 2))" \
  --proxy.access-log.disable --log.level error --grace-period 1s >"$dir/server.log" &
pids+=($!)
for _ in $(seq 100); do curl -sf "127.0.0.1:$((port + 2))/ready" >/dev/null && break; sleep 0.1; done
# shellcheck disable=SC2086
"$node" --trace-gc $flags dist/dataplane/cli/main.js agent http gc "127.0.0.1:$((port + 5))" \
  --connect.url "http://127.0.0.1:$((port + 1))" --log.level error --access-log.disable --grace-period 1s >"$dir/agent.log" &
pids+=($!)
for _ in $(seq 100); do [[ $(curl -s -o /dev/null -w '%{http_code}' -H 'x-piko-endpoint: gc' "127.0.0.1:$port/") == 200 ]] && break; sleep 0.1; done
wrk -t2 -c10 -d2s -H 'x-piko-endpoint: gc' "http://127.0.0.1:$port/" >/dev/null
: >"$dir/server.log"
: >"$dir/agent.log"
echo "flags: [${flags}]"
wrk -t2 -c10 -d8s -H 'x-piko-endpoint: gc' "http://127.0.0.1:$port/" | grep -E 'Requests/sec|Transfer/sec'
for p in server agent; do
  echo "$p: $(grep -ac Scavenge "$dir/$p.log") scavenges, $(grep -ac Mark-Compact "$dir/$p.log") mark-compacts"
done

// The client side of the real-node end-to-end test, run inside the cluster by in-cluster-client.ts
// as `node -e <this file> <mode> <args...>` in a pod of our image (Node and /app/node_modules/ws
// are there). Each mode prints one JSON line on stdout and exits 0; a failure is part of that
// JSON, never an exit code, so the test can show what happened.
//
//   get <url> <endpoint>                    one request; {status, body}
//   websocket <url> <endpoint> <message>    one WebSocket round trip; {echo}
//   forward <proxy url> <endpoint> <path>   `piko forward tcp` on a local port, one HTTP request
//                                           through it; {status, body}
//   load <url> <endpoint> <workers>         requests on a new connection each until stdin ends;
//                                           a "mark" line on stdin records the time it arrived;
//                                           "flowing" once the first request succeeded, and at
//                                           the end {elapsedMs, marks, ok: [ms], failed: [{at, detail}]}
'use strict';
const http = require('http');
const net = require('net');
const dns = require('dns');
const { spawn } = require('child_process');

const REQUEST_TIMEOUT_MS = 15000;
const [mode, ...args] = process.argv.slice(1);
const started = performance.now();
const now = () => Math.round(performance.now() - started);
const print = (value) => process.stdout.write(JSON.stringify(value) + '\n');

function get(url, endpoint, agent) {
  return new Promise((resolve) => {
    const headers = endpoint ? { 'x-piko-endpoint': endpoint } : {};
    const req = http.get(url, { headers, agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', (err) => resolve({ error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ error: err.message }));
  });
}

async function load(url, endpoint, workers) {
  // Resolved once: a lookup per request would measure CoreDNS and the search path, not Piko.
  const target = new URL(url);
  const { address } = await dns.promises.lookup(target.hostname, { family: 4 });
  target.hostname = address;
  const agent = new http.Agent({ keepAlive: false });
  const result = { elapsedMs: 0, marks: [], ok: [], failed: [] };
  let running = true;
  let pending = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    pending += chunk;
    for (let i = pending.indexOf('\n'); i >= 0; i = pending.indexOf('\n')) {
      if (pending.slice(0, i).trim() === 'mark') result.marks.push(now());
      pending = pending.slice(i + 1);
    }
  });
  const stopped = new Promise((resolve) => process.stdin.once('end', resolve).once('close', resolve));
  stopped.then(() => (running = false));
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      const res = await get(target.href, endpoint, agent);
      if (res.status === 200 && res.body.includes(`"app":"${endpoint}"`)) {
        if (result.ok.length === 0) process.stdout.write('flowing\n');
        result.ok.push(now());
      }
      else result.failed.push({ at: now(), detail: res.error ?? `${res.status} ${res.body}`.slice(0, 200) });
    }
  });
  await stopped;
  await Promise.all(loops);
  result.elapsedMs = now();
  print(result);
}

function websocket(url, endpoint, message) {
  const WebSocket = require('/app/node_modules/ws');
  const ws = new WebSocket(url, { headers: { 'x-piko-endpoint': endpoint }, handshakeTimeout: REQUEST_TIMEOUT_MS });
  const timer = setTimeout(() => ws.terminate(), REQUEST_TIMEOUT_MS);
  ws.once('open', () => ws.send(message));
  ws.once('message', (data) => {
    clearTimeout(timer);
    print({ echo: data.toString() });
    ws.close();
  });
  ws.once('error', (err) => {
    clearTimeout(timer);
    print({ error: err.message });
  });
}

async function forward(proxyUrl, endpoint, path) {
  const port = 19000;
  const child = spawn(process.execPath, ['/app/dist/dataplane/cli/main.js', 'forward', 'tcp', `127.0.0.1:${port}`, endpoint, '--connect.url', proxyUrl], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (c) => (log = (log + c).slice(-2000)));
  const deadline = Date.now() + REQUEST_TIMEOUT_MS;
  const listening = () =>
    new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s.destroy() || true)).once('error', () => resolve(false));
    });
  while (!(await listening())) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      return print({ error: `piko forward did not listen on ${port}: ${log}` });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const res = await get(`http://127.0.0.1:${port}${path}`, undefined, undefined);
  child.kill('SIGTERM');
  print(res);
}

const modes = {
  get: () => get(args[0], args[1]).then(print).then(() => process.exit(0)),
  load: () => load(args[0], args[1], Number(args[2])),
  websocket: () => websocket(args[0], args[1], args[2]),
  forward: () => forward(args[0], args[1], args[2]).then(() => process.exit(0)),
};
if (!modes[mode]) {
  print({ error: `unknown mode ${mode}` });
} else {
  modes[mode]();
}

import { once } from 'node:events';
import WebSocket from 'ws';
import { BenchError, httpGet } from './procs';

/**
 * Forces a full garbage collection in a Node process started with
 * --inspect=127.0.0.1:<port>, through the DevTools protocol
 * (HeapProfiler.collectGarbage). Used only by the memory runs, so RSS is
 * compared between two collected heaps rather than two arbitrary GC phases.
 */
export async function forceGc(inspectPort: number, timeoutMs = 15_000): Promise<void> {
  const list = await httpGet(`http://127.0.0.1:${inspectPort}/json/list`, timeoutMs);
  const targets = JSON.parse(list.body) as { webSocketDebuggerUrl?: string }[];
  const url = targets[0]?.webSocketDebuggerUrl;
  if (!url) throw new BenchError('ERR_BENCH_INSPECTOR', `no inspector target on port ${inspectPort}`);
  const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
  try {
    await once(ws, 'open');
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new BenchError('ERR_BENCH_INSPECTOR', 'collectGarbage timed out')), timeoutMs);
      ws.on('message', (data: Buffer) => {
        const msg = JSON.parse(data.toString('utf8')) as { id?: number; error?: { message: string } };
        if (msg.id !== 1) return;
        clearTimeout(timer);
        if (msg.error) reject(new BenchError('ERR_BENCH_INSPECTOR', msg.error.message));
        else resolve();
      });
    });
    ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
    await done;
  } finally {
    ws.terminate();
  }
}

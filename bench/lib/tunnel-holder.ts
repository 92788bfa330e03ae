import WebSocket from 'ws';
import { Session } from '../../dataplane/tunnel/session';
import { WebSocketTransport } from '../../dataplane/tunnel/ws-transport';

/**
 * A child process (forked with IPC) that holds idle upstream tunnels: raw
 * WebSocket + yamux client sessions on /piko/v1/upstream/<id>, as our SDK's
 * `listen` opens them but without its reconnect machinery. The wire protocol
 * is Piko's, so it serves both servers. Sessions it loses are counted, not
 * re-opened: an idle tunnel the server drops must show in the result.
 */

export type HolderRequest = { type: 'open'; url: string; prefix: string; count: number; window: number } | { type: 'close' };

export type HolderReply =
  { type: 'ready' } | { type: 'opened'; ok: number; failed: number; ms: number; firstError?: string } | { type: 'closed'; lost: number };

const HANDSHAKE_TIMEOUT_MS = 60_000;

interface Held {
  ws: WebSocket;
  session: Session;
  /** Set when we close it, so the close is not counted as lost. */
  closing: boolean;
}

const held: Held[] = [];
let lost = 0;

function send(msg: HolderReply): void {
  process.send?.(msg);
}

function openOne(url: string, endpointId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/piko/v1/upstream/${endpointId}`, {
      perMessageDeflate: false,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    });
    // The session attaches inside 'open': frames may arrive in the same read as the 101.
    ws.once('open', () => {
      const entry: Held = {
        ws,
        session: new Session(new WebSocketTransport(ws), { role: 'client', keepaliveIntervalMs: 0 }),
        closing: false,
      };
      entry.session.on('stream', (s) => s.destroy());
      entry.session.on('close', () => {
        if (!entry.closing) lost++;
      });
      held.push(entry);
      resolve();
    });
    ws.once('unexpected-response', (_req, res) => {
      ws.terminate();
      reject(new Error(`upstream refused with ${res.statusCode}`));
    });
    ws.once('error', reject);
  });
}

async function open(req: Extract<HolderRequest, { type: 'open' }>): Promise<void> {
  const started = performance.now();
  let next = 0;
  let ok = 0;
  let failed = 0;
  let firstError: string | undefined;
  const worker = async (): Promise<void> => {
    while (next < req.count) {
      const i = next++;
      try {
        await openOne(req.url, `${req.prefix}-${i}`);
        ok++;
      } catch (err) {
        failed++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(req.window, req.count) }, worker));
  const reply: HolderReply = { type: 'opened', ok, failed, ms: performance.now() - started };
  if (firstError !== undefined) reply.firstError = firstError;
  send(reply);
}

function closeAll(): void {
  const lostBefore = lost;
  for (const entry of held.splice(0)) {
    entry.closing = true;
    entry.ws.terminate();
  }
  lost = 0;
  send({ type: 'closed', lost: lostBefore });
}

process.on('message', (msg: HolderRequest) => {
  if (msg.type === 'open') void open(msg);
  else if (msg.type === 'close') closeAll();
});
// The parent going away ends the holder too.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });

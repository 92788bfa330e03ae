import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** Carries the forwarding node's proof that it is one of us. */
export const FORWARD_AUTH_HEADER = 'x-piko-forward-auth';

// Long enough for clock skew between nodes, short enough that a captured
// header is of little use.
const MAX_SKEW_SECONDS = 60;

/**
 * Signs and checks the header one node adds to a request it forwards to
 * another: `<nodeId>.<unix seconds>.<hex HMAC-SHA256(secret, nodeId.seconds)>`.
 * The secret never crosses the wire, and a signature expires in a minute.
 */
export class ForwardAuth {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = Buffer.from(secret, 'utf8');
  }

  sign(nodeId: string, nowMs = Date.now()): string {
    const seconds = Math.floor(nowMs / 1000);
    return `${nodeId}.${seconds}.${this.mac(`${nodeId}.${seconds}`)}`;
  }

  /** The forwarding node's id when the header is valid, else undefined. */
  verify(headers: IncomingHttpHeaders, nowMs = Date.now()): string | undefined {
    const value = headers[FORWARD_AUTH_HEADER];
    if (typeof value !== 'string') return undefined;
    const lastDot = value.lastIndexOf('.');
    const secondDot = value.lastIndexOf('.', lastDot - 1);
    if (secondDot <= 0) return undefined;
    const nodeId = value.slice(0, secondDot);
    const secondsText = value.slice(secondDot + 1, lastDot);
    const seconds = Number(secondsText);
    if (!/^\d{1,12}$/.test(secondsText) || Math.abs(nowMs / 1000 - seconds) > MAX_SKEW_SECONDS) return undefined;
    const expected = Buffer.from(this.mac(`${nodeId}.${secondsText}`), 'hex');
    const given = Buffer.from(value.slice(lastDot + 1), 'hex');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    return nodeId;
  }

  private mac(message: string): string {
    return createHmac('sha256', this.key).update(message).digest('hex');
  }
}

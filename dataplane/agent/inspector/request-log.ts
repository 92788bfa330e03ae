/**
 * The inspector's memory of recent requests through the agent's HTTP listeners: the last
 * `maxRequests`, within `maxTotalBytes` of bodies and headers together (the oldest go first), each
 * body cut at `maxBodyBytes`. What the API shows has every credential header redacted; what a
 * replay sends (the headers as the local service got them) stays in this process only.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { redactHeaders } from '../../log/access-log';

export interface InspectorLimits {
  maxRequests: number;
  maxBodyBytes: number;
  maxTotalBytes: number;
}

export interface CapturedBody {
  /** Base64 of the first `maxBodyBytes` bytes. */
  base64: string;
  /** Bytes the body had in all. */
  bytes: number;
  truncated: boolean;
}

/** One request as the API shows it. */
export interface CapturedRequest {
  id: string;
  endpointId: string;
  /** ISO time the request arrived. */
  startedAt: string;
  durationMs: number;
  method: string;
  path: string;
  status: number;
  requestHeaders: Record<string, string[]>;
  responseHeaders: Record<string, string[]>;
  requestBody: CapturedBody;
  responseBody: CapturedBody;
  /** Set on a replay: the request it replayed. */
  replayOf?: string;
  /** Why the exchange failed (the local service unreachable, a timeout). */
  error?: string;
}

/** What a replay needs that the API does not show. */
export interface ReplaySource {
  endpointId: string;
  method: string;
  /** Path and query as the local service got them. */
  path: string;
  /** Headers as the local service got them, credentials included. */
  headers: OutgoingHttpHeaders;
  body: Buffer;
  complete: boolean;
}

interface Entry {
  shown: CapturedRequest;
  replay: ReplaySource;
  bytes: number;
}

/** Collects a body's first bytes, counting the rest. */
export class BodyTap {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private total = 0;

  constructor(private readonly max: number) {}

  add(chunk: Buffer | string): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.total += buf.length;
    if (this.kept >= this.max) return;
    const part = buf.subarray(0, this.max - this.kept);
    this.chunks.push(part);
    this.kept += part.length;
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get complete(): boolean {
    return this.total === this.kept;
  }

  captured(): CapturedBody {
    return { base64: this.bytes.toString('base64'), bytes: this.total, truncated: !this.complete };
  }
}

export interface NewCapture {
  endpointId: string;
  startedAtMs: number;
  durationMs: number;
  method: string;
  /** The path the client asked for (what the list shows). */
  path: string;
  status: number;
  /** As the local service got them: shown redacted, replayed as they are. */
  localRequestHeaders: OutgoingHttpHeaders;
  localPath: string;
  responseHeaders: IncomingHttpHeaders | OutgoingHttpHeaders;
  requestBody: BodyTap;
  responseBody: BodyTap;
  replayOf?: string;
  error?: string;
}

export class RequestLog {
  /** Oldest first. */
  private readonly entries: Entry[] = [];
  private readonly byId = new Map<string, Entry>();
  private totalBytes = 0;
  private readonly listeners = new Set<(request: CapturedRequest) => void>();

  constructor(readonly limits: InspectorLimits) {}

  add(c: NewCapture): CapturedRequest {
    const shown: CapturedRequest = {
      // Unguessable: a page of another origin cannot name a request to replay.
      id: randomBytes(9).toString('base64url'),
      endpointId: c.endpointId,
      startedAt: new Date(c.startedAtMs).toISOString(),
      durationMs: Math.round(c.durationMs * 10) / 10,
      method: c.method,
      path: c.path,
      status: c.status,
      requestHeaders: redactHeaders(c.localRequestHeaders),
      responseHeaders: redactHeaders(c.responseHeaders),
      requestBody: c.requestBody.captured(),
      responseBody: c.responseBody.captured(),
      ...(c.replayOf === undefined ? {} : { replayOf: c.replayOf }),
      ...(c.error === undefined ? {} : { error: c.error }),
    };
    const replay: ReplaySource = {
      endpointId: c.endpointId,
      method: c.method,
      path: c.localPath,
      headers: c.localRequestHeaders,
      body: c.requestBody.bytes,
      complete: c.requestBody.complete,
    };
    const entry: Entry = { shown, replay, bytes: sizeOf(shown) + replay.body.length };
    this.entries.push(entry);
    this.byId.set(shown.id, entry);
    this.totalBytes += entry.bytes;
    while (this.entries.length > this.limits.maxRequests || (this.totalBytes > this.limits.maxTotalBytes && this.entries.length > 1)) {
      const old = this.entries.shift()!;
      this.byId.delete(old.shown.id);
      this.totalBytes -= old.bytes;
    }
    for (const l of this.listeners) l(shown);
    return shown;
  }

  /** Newest first. */
  list(limit = this.limits.maxRequests): CapturedRequest[] {
    return this.entries
      .slice(-limit)
      .reverse()
      .map((e) => e.shown);
  }

  get(id: string): CapturedRequest | undefined {
    return this.byId.get(id)?.shown;
  }

  replaySource(id: string): ReplaySource | undefined {
    return this.byId.get(id)?.replay;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Called for each request added; returns the unsubscribe. */
  onAdd(listener: (request: CapturedRequest) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** What an entry holds, approximately: its bodies (base64), headers and strings, plus a fixed overhead. */
function sizeOf(request: CapturedRequest): number {
  let n = 256 + request.path.length + request.requestBody.base64.length + request.responseBody.base64.length;
  for (const headers of [request.requestHeaders, request.responseHeaders]) {
    for (const [name, values] of Object.entries(headers)) for (const v of values) n += name.length + v.length + 8;
  }
  return n;
}

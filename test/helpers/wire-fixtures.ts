import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

/**
 * Byte-level recordings of real Go Piko traffic (made by
 * test/interop/capture-go-fixtures.ts) and the small decoders the replay
 * tests need to use them without Go.
 */

/** One TCP connection as a tap between a Go process and its peer saw it, chunk boundaries kept. */
export interface WireFixture {
  description: string;
  /** What produced it: Go Piko version, command lines. */
  source: string;
  capturedAt: string;
  /** The endpoint the recorded connection served or dialled. */
  endpointId: string;
  /** Bytes the Go process wrote, in the chunks the tap read them; hex, or gzip+base64 when `gzip` is set. */
  fromGo: string[];
  /** Bytes the Go process read (our side's), when recorded. */
  toGo?: string[];
  gzip?: boolean;
  /** Anything else worth knowing about the exchange (sizes, requests sent). */
  notes?: Record<string, unknown>;
}

export function loadWireFixture(file: string): WireFixture {
  return JSON.parse(readFileSync(file, 'utf8')) as WireFixture;
}

export function decodeChunks(fixture: WireFixture, chunks: string[]): Buffer[] {
  return chunks.map((c) => (fixture.gzip ? gunzipSync(Buffer.from(c, 'base64')) : Buffer.from(c, 'hex')));
}

/** Splits an HTTP/1.1 head (request or response, up to CRLFCRLF) from the bytes after it. */
export function splitHttpHead(bytes: Buffer): { head: string; rest: Buffer } {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) throw new Error('no complete HTTP head in the recording');
  return { head: bytes.subarray(0, end + 4).toString('latin1'), rest: bytes.subarray(end + 4) };
}

export interface WsFrame {
  fin: boolean;
  opcode: number;
  masked: boolean;
  /** Unmasked payload. */
  payload: Buffer;
}

/** RFC 6455 frames in `bytes` (which must end on a frame boundary), unmasked. */
export function decodeWebSocketFrames(bytes: Buffer): WsFrame[] {
  const frames: WsFrame[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < 2) throw new Error(`truncated frame header at ${offset}`);
    const b0 = bytes[offset] as number;
    const b1 = bytes[offset + 1] as number;
    let len = b1 & 0x7f;
    let pos = offset + 2;
    if (len === 126) {
      len = bytes.readUInt16BE(pos);
      pos += 2;
    } else if (len === 127) {
      len = Number(bytes.readBigUInt64BE(pos));
      pos += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    let mask: Buffer | undefined;
    if (masked) {
      mask = bytes.subarray(pos, pos + 4);
      pos += 4;
    }
    if (pos + len > bytes.length) throw new Error(`truncated frame payload at ${offset}`);
    const payload = Buffer.from(bytes.subarray(pos, pos + len));
    if (mask) for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (mask[i % 4] as number);
    frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, masked, payload });
    offset = pos + len;
  }
  return frames;
}

/**
 * The binary messages carried by `frames`, fragments joined, in order.
 * Control frames (ping, pong, close) are skipped; a text message throws.
 */
export function webSocketMessages(frames: WsFrame[]): Buffer[] {
  const messages: Buffer[] = [];
  let parts: Buffer[] | undefined;
  for (const frame of frames) {
    if (frame.opcode >= 0x8) continue;
    if (frame.opcode === 0x1) throw new Error('text message in a binary tunnel recording');
    if (frame.opcode === 0x2) parts = [frame.payload];
    else if (frame.opcode === 0x0 && parts) parts.push(frame.payload);
    else throw new Error(`unexpected opcode ${frame.opcode}`);
    if (frame.fin) {
      messages.push(Buffer.concat(parts));
      parts = undefined;
    }
  }
  return messages;
}

export interface YamuxFrameSummary {
  type: 'data' | 'window-update' | 'ping' | 'go-away';
  flags: string[];
  streamId: number;
  length: number;
}

/** yamux frames in a byte stream, headers only: for readable notes and assertions. */
export function summariseYamux(bytes: Buffer): YamuxFrameSummary[] {
  const types = ['data', 'window-update', 'ping', 'go-away'] as const;
  const out: YamuxFrameSummary[] = [];
  let offset = 0;
  while (offset + 12 <= bytes.length) {
    const type = types[bytes[offset + 1] as number];
    if (bytes[offset] !== 0 || type === undefined) throw new Error(`not a yamux frame at ${offset}`);
    const flagBits = bytes.readUInt16BE(offset + 2);
    const flags = (['SYN', 'ACK', 'FIN', 'RST'] as const).filter((_, i) => (flagBits & (1 << i)) !== 0);
    const length = bytes.readUInt32BE(offset + 8);
    out.push({ type, flags, streamId: bytes.readUInt32BE(offset + 4), length });
    offset += 12 + (type === 'data' ? length : 0);
  }
  if (offset !== bytes.length) throw new Error('yamux recording ends inside a frame');
  return out;
}

import { TunnelError } from './errors';

// yamux framing as hashicorp/yamux (and Piko's fork of it) puts it on the wire:
// a 12-byte big-endian header, followed by `length` payload bytes for Data frames.

export const YAMUX_VERSION = 0;
export const HEADER_SIZE = 12;

export const TYPE_DATA = 0;
export const TYPE_WINDOW_UPDATE = 1;
export const TYPE_PING = 2;
export const TYPE_GO_AWAY = 3;
export type FrameType = typeof TYPE_DATA | typeof TYPE_WINDOW_UPDATE | typeof TYPE_PING | typeof TYPE_GO_AWAY;

export const FLAG_SYN = 0x1;
export const FLAG_ACK = 0x2;
export const FLAG_FIN = 0x4;
export const FLAG_RST = 0x8;

export const GO_AWAY_NORMAL = 0;
export const GO_AWAY_PROTOCOL_ERROR = 1;
export const GO_AWAY_INTERNAL_ERROR = 2;

/** Every stream starts with this window in each direction (yamux's fixed initial window). */
export const INITIAL_STREAM_WINDOW = 256 * 1024;

export interface FrameHeader {
  readonly type: FrameType;
  readonly flags: number;
  readonly streamId: number;
  /** Data: payload size. WindowUpdate: window delta. Ping: ping id. GoAway: error code. */
  readonly length: number;
}

export function encodeHeader(type: FrameType, flags: number, streamId: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_SIZE);
  writeHeader(buf, 0, type, flags, streamId, length);
  return buf;
}

/** Writes a header into `buf` at `offset`, for callers that pack frames into one buffer. */
export function writeHeader(buf: Buffer, offset: number, type: FrameType, flags: number, streamId: number, length: number): void {
  buf[offset] = YAMUX_VERSION;
  buf[offset + 1] = type;
  buf.writeUInt16BE(flags, offset + 2);
  buf.writeUInt32BE(streamId, offset + 4);
  buf.writeUInt32BE(length, offset + 8);
}

/** Decodes the header at `offset`; an unknown version or type is a protocol error. */
export function decodeHeader(buf: Buffer, offset = 0): FrameHeader {
  const version = buf[offset];
  if (version !== YAMUX_VERSION) {
    throw new TunnelError('ERR_YAMUX_PROTOCOL', `unsupported yamux version ${String(version)}`);
  }
  const type = buf[offset + 1] as number;
  if (type > TYPE_GO_AWAY) {
    throw new TunnelError('ERR_YAMUX_PROTOCOL', `unknown yamux frame type ${type}`);
  }
  return {
    type: type as FrameType,
    flags: buf.readUInt16BE(offset + 2),
    streamId: buf.readUInt32BE(offset + 4),
    length: buf.readUInt32BE(offset + 8),
  };
}

export function describeHeader(h: FrameHeader): string {
  const names = ['data', 'window-update', 'ping', 'go-away'];
  return `${names[h.type] ?? h.type} stream=${h.streamId} flags=0x${h.flags.toString(16)} length=${h.length}`;
}

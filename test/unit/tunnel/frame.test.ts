import { TunnelError } from '../../../dataplane/tunnel/errors';
import {
  decodeHeader,
  encodeHeader,
  FLAG_ACK,
  FLAG_SYN,
  TYPE_DATA,
  TYPE_GO_AWAY,
  TYPE_PING,
  TYPE_WINDOW_UPDATE,
} from '../../../dataplane/tunnel/frame';
import { FrameReader } from '../../../dataplane/tunnel/frame-reader';
import type { FrameHeader } from '../../../dataplane/tunnel/frame';

describe('yamux frame header', () => {
  // Byte fixtures as hashicorp/yamux writes them (version, type, flags BE16, stream BE32, length BE32).
  const fixtures: [string, FrameHeader, string][] = [
    [
      'window update SYN opening stream 2',
      { type: TYPE_WINDOW_UPDATE, flags: FLAG_SYN, streamId: 2, length: 0 },
      '000100010000000200000000',
    ],
    [
      'window update ACK with a 128 KiB delta',
      { type: TYPE_WINDOW_UPDATE, flags: FLAG_ACK, streamId: 3, length: 131072 },
      '000100020000000300020000',
    ],
    ['data frame of 5 bytes', { type: TYPE_DATA, flags: 0, streamId: 4, length: 5 }, '000000000000000400000005'],
    ['ping SYN id 7', { type: TYPE_PING, flags: FLAG_SYN, streamId: 0, length: 7 }, '000200010000000000000007'],
    ['go away protocol error', { type: TYPE_GO_AWAY, flags: 0, streamId: 0, length: 1 }, '000300000000000000000001'],
  ];

  it.each(fixtures)('encodes and decodes %s', (_name, header, hex) => {
    expect(encodeHeader(header.type, header.flags, header.streamId, header.length).toString('hex')).toBe(hex);
    expect(decodeHeader(Buffer.from(hex, 'hex'))).toEqual(header);
  });

  it('rejects an unknown version with a coded error', () => {
    expect(() => decodeHeader(Buffer.from('010000000000000100000000', 'hex'))).toThrow(
      expect.objectContaining({ code: 'ERR_YAMUX_PROTOCOL', message: 'unsupported yamux version 1' }),
    );
  });

  it('rejects an unknown frame type', () => {
    expect(() => decodeHeader(Buffer.from('000400000000000100000000', 'hex'))).toThrow(TunnelError);
  });
});

describe('FrameReader', () => {
  function record(): { events: string[]; reader: FrameReader } {
    const events: string[] = [];
    const reader = new FrameReader(
      {
        onFrame: (h) => events.push(`frame ${h.type}/${h.flags}/${h.streamId}/${h.length}`),
        onData: (_h, chunk) => events.push(`data ${chunk.toString('latin1')}`),
      },
      1024,
    );
    return { events, reader };
  }

  const wire = Buffer.concat([
    encodeHeader(TYPE_WINDOW_UPDATE, FLAG_SYN, 2, 0),
    encodeHeader(TYPE_DATA, 0, 2, 11),
    Buffer.from('hello world'),
    encodeHeader(TYPE_PING, FLAG_SYN, 0, 9),
    encodeHeader(TYPE_DATA, 4, 2, 0),
  ]);

  function joined(events: string[]): string[] {
    // Payload may arrive in several slices; join consecutive ones to compare.
    const out: string[] = [];
    for (const e of events) {
      const last = out[out.length - 1];
      if (e.startsWith('data ') && last?.startsWith('data ')) out[out.length - 1] = last + e.slice(5);
      else out.push(e);
    }
    return out;
  }

  it('parses frames delivered whole', () => {
    const { events, reader } = record();
    reader.push(wire);
    expect(events).toEqual(['frame 1/1/2/0', 'frame 0/0/2/11', 'data hello world', 'frame 2/1/0/9', 'frame 0/4/2/0']);
    expect(reader.idle).toBe(true);
  });

  it('gives the same frames for every way of cutting the bytes in two or three', () => {
    const { events: expected, reader: whole } = record();
    whole.push(wire);
    for (let i = 1; i < wire.length; i++) {
      for (let j = i; j < wire.length; j += 7) {
        const { events, reader } = record();
        reader.push(wire.subarray(0, i));
        reader.push(wire.subarray(i, j));
        reader.push(wire.subarray(j));
        expect(joined(events)).toEqual(joined(expected));
      }
    }
  });

  it('parses one byte at a time', () => {
    const { events, reader } = record();
    for (const byte of wire) reader.push(Buffer.from([byte]));
    expect(joined(events)).toEqual(['frame 1/1/2/0', 'frame 0/0/2/11', 'data hello world', 'frame 2/1/0/9', 'frame 0/4/2/0']);
  });

  it('rejects a data frame larger than any window before buffering it', () => {
    const { reader } = record();
    expect(() => reader.push(encodeHeader(TYPE_DATA, 0, 2, 1025))).toThrow(expect.objectContaining({ code: 'ERR_YAMUX_PROTOCOL' }));
  });
});

import { TunnelError } from './errors';
import { decodeHeader, HEADER_SIZE, TYPE_DATA, type FrameHeader } from './frame';

export interface FrameSink {
  /** Called for every frame header, Data frames included (before their payload). */
  onFrame(header: FrameHeader): void;
  /**
   * Called with the payload of the last Data frame passed to onFrame, in one
   * or more slices as bytes arrive. Slices share memory with the input chunk.
   */
  onData(header: FrameHeader, chunk: Buffer): void;
}

/**
 * Turns a byte stream cut at arbitrary places (WebSocket message boundaries
 * carry no meaning) into frames. Payloads are passed through as slices rather
 * than reassembled, so a 256 KiB Data frame costs no copy.
 */
export class FrameReader {
  private readonly headerBuf = Buffer.allocUnsafe(HEADER_SIZE);
  private headerFill = 0;
  private current: FrameHeader | undefined;
  private payloadLeft = 0;

  /** `maxDataLength` rejects frames no window could have allowed, before buffering anything. */
  constructor(
    private readonly sink: FrameSink,
    private readonly maxDataLength: number,
  ) {}

  push(chunk: Buffer): void {
    let offset = 0;
    const end = chunk.length;
    while (offset < end) {
      if (this.payloadLeft > 0) {
        const n = Math.min(this.payloadLeft, end - offset);
        const slice = offset === 0 && n === end ? chunk : chunk.subarray(offset, offset + n);
        this.payloadLeft -= n;
        offset += n;
        this.sink.onData(this.current as FrameHeader, slice);
        continue;
      }
      let header: FrameHeader;
      if (this.headerFill === 0 && end - offset >= HEADER_SIZE) {
        header = decodeHeader(chunk, offset);
        offset += HEADER_SIZE;
      } else {
        const n = Math.min(HEADER_SIZE - this.headerFill, end - offset);
        chunk.copy(this.headerBuf, this.headerFill, offset, offset + n);
        this.headerFill += n;
        offset += n;
        if (this.headerFill < HEADER_SIZE) return;
        this.headerFill = 0;
        header = decodeHeader(this.headerBuf, 0);
      }
      if (header.type === TYPE_DATA) {
        if (header.length > this.maxDataLength) {
          throw new TunnelError('ERR_YAMUX_PROTOCOL', `data frame of ${header.length} bytes exceeds the ${this.maxDataLength} byte limit`);
        }
        this.current = header;
        this.payloadLeft = header.length;
      }
      this.sink.onFrame(header);
    }
  }

  /** True when the input ended on a frame boundary. */
  get idle(): boolean {
    return this.headerFill === 0 && this.payloadLeft === 0;
  }
}

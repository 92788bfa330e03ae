/**
 * What a yamux session needs from the connection under it: an ordered byte
 * pipe. Message boundaries, if the carrier has them, mean nothing.
 */
export interface Transport {
  /**
   * Queues bytes for sending. Returns false once the carrier holds more
   * unsent bytes than it wants; `onDrain` fires when it is below that again.
   */
  send(data: Buffer): boolean;
  /** Bytes handed to `send` and not yet written to the socket. */
  readonly bufferedAmount: number;
  /**
   * Tears the connection down; `onClose` follows. `abort` drops what is
   * still queued and closes at once, for a peer that is not reading.
   */
  close(abort?: boolean): void;
  attach(handler: TransportHandler): void;
}

export interface TransportHandler {
  onData(data: Buffer): void;
  onDrain(): void;
  /** Called once; `err` is set when the carrier failed rather than closed. */
  onClose(err?: Error): void;
}

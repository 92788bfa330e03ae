import net from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * Copies bytes both ways between two connections with backpressure and,
 * as Piko does, closes both once either direction ends: what was already
 * read is still delivered, then each side gets its end (a yamux FIN, a
 * WebSocket close, a TCP FIN followed by a full close). An error on either
 * side destroys both. Resolves once both sides are closed, with the first
 * error seen, if any.
 */
export function joinStreams(a: Duplex, b: Duplex): Promise<Error | undefined> {
  return new Promise((resolve) => {
    let firstError: Error | undefined;
    let shuttingDown = false;
    let open = 2;

    const shutdown = (): void => {
      if (shuttingDown) return;
      shuttingDown = true;
      a.unpipe(b);
      b.unpipe(a);
      // Whatever still arrives is dropped, as after Go's Close; reading on
      // lets the peer's end be seen, and a yamux stream only closes once both
      // ends have been.
      a.resume();
      b.resume();
      endGracefully(a);
      endGracefully(b);
    };
    const fail = (err: Error): void => {
      firstError ??= err;
      a.destroy();
      b.destroy();
    };
    // A side that closed without an error (a clean close, or destroyed by its
    // owner) ends the other gracefully: destroying a yamux stream would reset
    // it, and a reset makes Go discard what its reader has not taken yet.
    const onClose = (): void => {
      shutdown();
      if (--open === 0) resolve(firstError);
    };

    for (const [side, other] of [
      [a, b],
      [b, a],
    ] as const) {
      side.on('error', fail);
      side.once('end', shutdown);
      // A side already gone will not say so again.
      if (side.closed) process.nextTick(onClose);
      else side.once('close', onClose);
      side.pipe(other, { end: true });
    }
  });
}

function endGracefully(stream: Duplex): void {
  if (stream.destroyed) return;
  // A TCP socket is closed fully once our FIN is out, as Go's Close does; a
  // yamux stream or a WebSocket closes itself when the peer answers.
  if (stream instanceof net.Socket) stream.once('finish', () => stream.destroy());
  if (!stream.writableEnded) stream.end();
}

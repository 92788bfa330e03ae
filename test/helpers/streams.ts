import type { Duplex } from 'node:stream';

/**
 * Resolves with the first `n` bytes (or more, if they arrive in the same
 * chunk) read from `stream`; rejects if it errors or closes before then, so
 * a broken connection fails the test instead of hanging it.
 */
export function readBytes(stream: Duplex, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (c: Buffer): void => {
      chunks.push(c);
      got += c.length;
      if (got >= n) {
        stream.off('data', onData);
        resolve(Buffer.concat(chunks));
      }
    };
    stream.on('data', onData);
    stream.once('error', reject);
    stream.once('close', () => reject(new Error(`closed after ${got} of ${n} bytes`)));
  });
}

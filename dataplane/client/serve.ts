import type net from 'node:net';
import type { Connection, Listener } from './listener';

/**
 * Hands every connection of `listener` to `server` (an http.Server,
 * https.Server for end-to-end TLS, or any net.Server) as if it had accepted
 * it itself. The server need not listen on a port. Returns a function that
 * stops the hand-over.
 *
 * Piko sends one request per connection (`Connection: close`), so a
 * graceful `listener.close()` completes as soon as in-flight requests do.
 */
export function serve(listener: Listener, server: net.Server): () => void {
  const onConnection = (conn: Connection): void => {
    server.emit('connection', conn);
  };
  listener.on('connection', onConnection);
  return () => {
    listener.off('connection', onConnection);
  };
}

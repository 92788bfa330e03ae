import type http from 'node:http';

// RFC 9110 §9.2.2 idempotent methods that carry no body by convention. PUT
// and DELETE are idempotent too, but nobody can tell whether a repeated one
// races another client's write, so like Go's Transport we do not guess.
const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** What became of one attempt to send a request to another node. */
export interface FailedAttempt {
  error: NodeJS.ErrnoException;
  /** Some of the request may have reached the peer: the connection was up when it was handed the request. */
  mayHaveBeenSent: boolean;
}

/**
 * The one rule for sending a request again after a connection to another
 * node dropped before any response, as nginx's `proxy_next_upstream`
 * decides it: a body we streamed cannot be rewound; a request none of
 * which left this process can always go again; one that may have reached
 * the peer goes again only if repeating it is harmless (an idempotent
 * method, or a key the client sent for that purpose). The caller bounds
 * the attempts.
 *
 * The usual case is the keep-alive race: the peer closes a connection it
 * holds as idle (its idle timeout, or it is shutting down) just as we
 * send on it. Whether it read the request first cannot be known, so a
 * POST then fails with 502 rather than risk being delivered twice.
 */
export function shouldReplay(req: http.IncomingMessage, attempt: FailedAttempt): boolean {
  if (hasRequestBody(req)) return false;
  if (!isConnectionDrop(attempt.error)) return false;
  return !attempt.mayHaveBeenSent || isIdempotent(req);
}

export function hasRequestBody(req: http.IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

// As Go's Transport, these headers are the client's promise that a repeat is safe.
function isIdempotent(req: http.IncomingMessage): boolean {
  if (IDEMPOTENT_METHODS.has(req.method ?? '')) return true;
  return req.headers['idempotency-key'] !== undefined || req.headers['x-idempotency-key'] !== undefined;
}

function isConnectionDrop(err: NodeJS.ErrnoException): boolean {
  return err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ECONNREFUSED';
}

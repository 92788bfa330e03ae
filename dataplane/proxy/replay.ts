import type http from 'node:http';

// RFC 9110 §9.2.2 idempotent methods that carry no body by convention. PUT
// and DELETE are idempotent too, but nobody can tell whether a repeated one
// races another client's write, so like Go's Transport we do not guess.
const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** What became of one attempt to send a request to another node. */
export interface FailedAttempt {
  error: NodeJS.ErrnoException;
  /** The connection had carried an earlier request (a pooled keep-alive connection). */
  reusedConnection: boolean;
  /** Some of the request may have reached the peer: the connection was up when it was handed the request. */
  mayHaveBeenSent: boolean;
}

/**
 * The one rule for sending a request again after a connection to another
 * node failed before any response, as Go's Transport and nginx's
 * `proxy_next_upstream` decide it: a body we streamed cannot be rewound;
 * a request none of which left this process can always go again; one that
 * may have reached the peer goes again only if it is idempotent and the
 * failure is the keep-alive race (the peer closed a pooled connection as
 * we reused it), never because a fresh connection broke, which says the
 * peer itself is failing.
 */
export function shouldReplay(req: http.IncomingMessage, attempt: FailedAttempt): boolean {
  if (hasRequestBody(req)) return false;
  if (!isConnectionDrop(attempt.error)) return false;
  if (!attempt.mayHaveBeenSent) return true;
  return attempt.reusedConnection && isIdempotent(req);
}

export function hasRequestBody(req: http.IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

// Go's Transport also treats these headers as the client's promise that a repeat is safe.
function isIdempotent(req: http.IncomingMessage): boolean {
  if (IDEMPOTENT_METHODS.has(req.method ?? '')) return true;
  return req.headers['idempotency-key'] !== undefined || req.headers['x-idempotency-key'] !== undefined;
}

function isConnectionDrop(err: NodeJS.ErrnoException): boolean {
  return err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ECONNREFUSED';
}

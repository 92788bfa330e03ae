import type http from 'node:http';
import { startTimer } from '../time/timer';

// How long a cut response may take to flush what is queued before its socket is destroyed.
const ABORT_LINGER_MS = 2_000;

/**
 * Ends a response that has begun and cannot be completed (its upstream
 * failed, a timeout passed). The status line and headers reach the client
 * if they had not yet (Node holds them until the first body byte, so a
 * plain destroy would leave a bare close), and the connection then closes
 * without another byte: the body is visibly cut (short of Content-Length,
 * or chunked with no last chunk), never padded with an error of ours.
 */
export function abortStartedResponse(res: http.ServerResponse): void {
  const socket = res.socket;
  if (!socket || socket.destroyed || res.writableFinished) {
    res.destroy();
    return;
  }
  res.flushHeaders();
  // end(), not destroy(): destroy may drop the head still queued, and on a
  // socket with unread input the kernel answers with a reset that can
  // discard what the client had not yet read.
  socket.end();
  const linger = startTimer(ABORT_LINGER_MS, () => socket.destroy()).unref();
  socket.once('close', () => linger.clear());
}

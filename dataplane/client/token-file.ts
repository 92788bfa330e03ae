/**
 * A token read from a file and re-read when the file changes: a Kubernetes
 * projected ServiceAccount token, which the kubelet replaces well before it
 * expires, or any credential a sidecar refreshes. The file is read again
 * at each poll and its content compared, not its stat: a rewrite that keeps
 * the size, the inode and the mtime's tick is still seen, and so is the
 * kubelet's swap of its `..data` link (the path is opened, so symlinks are
 * followed). A token is at most 64 KiB, so a read per second costs nothing.
 */
import { EventEmitter } from 'node:events';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { silentClientLogger, type ClientLogger } from './client-logger';
import { ClientError } from './errors';

// A JWT is a few KiB; anything this large is not a token.
const MAX_TOKEN_BYTES = 64 * 1024;

export interface TokenFileOptions {
  /** How often the file is checked for a change. Default 1 s. */
  pollIntervalMs?: number;
  logger?: ClientLogger;
}

export interface TokenFileEvents {
  /** The file now holds a different token. */
  change: [token: string];
}

export class TokenFile extends EventEmitter<TokenFileEvents> {
  private value: string;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  // Logged once per run of failed reads, not at every poll.
  private failing = false;
  private readonly log: ClientLogger;

  /** Reads the file once; throws ERR_CLIENT_TOKEN_FILE if it holds no usable token. */
  constructor(
    readonly path: string,
    private readonly options: TokenFileOptions = {},
  ) {
    super();
    this.log = (options.logger ?? silentClientLogger()).child({ subsystem: 'client', tokenFile: path });
    this.value = readToken(path);
  }

  /** The token as last read. */
  get token(): string {
    return this.value;
  }

  /** Starts watching; `change` fires after each rewrite that changes the token. */
  watch(): this {
    if (this.closed || this.timer) return this;
    this.timer = setInterval(() => this.reload(), this.options.pollIntervalMs ?? 1_000);
    // A watched token file alone never keeps the process alive.
    this.timer.unref();
    return this;
  }

  /** Re-reads now; the poll does the same. Returns whether the token changed. */
  reload(): boolean {
    if (this.closed) return false;
    let next: string;
    try {
      next = readToken(this.path);
    } catch (err) {
      // Mid-rotation or deleted: keep the last good token; the server decides when it is no longer good.
      if (!this.failing) this.log.warn('cannot re-read token file; keeping the last token', { error: (err as Error).message });
      this.failing = true;
      return false;
    }
    this.failing = false;
    if (next === this.value) return false;
    this.value = next;
    this.log.info('token file changed');
    this.emit('change', next);
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
  }
}

/** The file's content without surrounding whitespace; at most MAX_TOKEN_BYTES are read. */
function readToken(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ClientError('ERR_CLIENT_TOKEN_FILE', `cannot read token file ${path}: ${reason}`, { cause: err });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new ClientError('ERR_CLIENT_TOKEN_FILE', `token file ${path} is not a regular file`);
    // Sized by the file (plus one byte, to see it grow while read), never past the limit: a poll a
    // second allocates what the token needs, not 64 KiB.
    const buf = Buffer.alloc(Math.min(stat.size, MAX_TOKEN_BYTES) + 1);
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
    }
    if (n > MAX_TOKEN_BYTES) throw new ClientError('ERR_CLIENT_TOKEN_FILE', `token file ${path} is over ${MAX_TOKEN_BYTES} bytes`);
    // Longer than its size said: it is being written; the next read sees it whole.
    if (n === buf.length) throw new ClientError('ERR_CLIENT_TOKEN_FILE', `token file ${path} changed while it was read`);
    const token = buf.subarray(0, n).toString('utf8').trim();
    if (token === '') throw new ClientError('ERR_CLIENT_TOKEN_FILE', `token file ${path} is empty`);
    if (/\s/.test(token)) throw new ClientError('ERR_CLIENT_TOKEN_FILE', `token file ${path} holds more than one word`);
    return token;
  } finally {
    closeSync(fd);
  }
}

import { EventEmitter, once } from 'node:events';
import { PassThrough } from 'node:stream';
import { createLogger, type Logger } from '../../dataplane/log/logger';

export type LogRecord = Record<string, unknown>;

/** A logger whose JSON records the test can read back, or wait for. */
export function capturingLogger(): {
  logger: Logger;
  records: () => LogRecord[];
  waitFor: (match: (r: LogRecord) => boolean, timeoutMs?: number) => Promise<LogRecord>;
} {
  const stream = new PassThrough();
  const records: LogRecord[] = [];
  const added = new EventEmitter();
  let partial = '';
  stream.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      if (line === '') continue;
      records.push(JSON.parse(line) as LogRecord);
      added.emit('record');
    }
  });
  const waitFor = async (match: (r: LogRecord) => boolean, timeoutMs = 10_000): Promise<LogRecord> => {
    const signal = AbortSignal.timeout(timeoutMs);
    for (;;) {
      const found = records.find(match);
      if (found) return found;
      await once(added, 'record', { signal });
    }
  };
  return { logger: createLogger({ level: 'debug', stream }), records: () => [...records], waitFor };
}

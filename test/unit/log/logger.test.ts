import { PassThrough } from 'node:stream';
import { createLogger, type LogFormat } from '../../../dataplane/log/logger';
import { loadServerConfig } from '../../../dataplane/config/server-config';

/** A stream that says it is (or is not) a terminal, and what was written to it. */
function sink(tty: boolean): { stream: PassThrough; lines: () => string[] } {
  const stream = new PassThrough();
  (stream as unknown as { isTTY: boolean }).isTTY = tty;
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, lines: () => text.split('\n').filter((l) => l !== '') };
}

function logOnce(format: LogFormat | undefined, tty: boolean): string[] {
  const { stream, lines } = sink(tty);
  const logger = createLogger({ level: 'info', stream, ...(format === undefined ? {} : { format }) });
  logger.child({ subsystem: 'proxy' }).info('request', { method: 'GET', path: '/a b', status: 200, tags: ['x'] });
  logger.debug('not at info');
  return lines();
}

describe('the process logger', () => {
  const noColor = process.env['NO_COLOR'];
  afterEach(() => {
    if (noColor === undefined) delete process.env['NO_COLOR'];
    else process.env['NO_COLOR'] = noColor;
  });

  it('writes JSON where stderr is not a terminal (a pod), whatever else is configured', () => {
    const [line, ...more] = logOnce(undefined, false);
    expect(more).toEqual([]);
    expect(JSON.parse(line!)).toMatchObject({
      level: 'info',
      message: 'request',
      subsystem: 'proxy',
      method: 'GET',
      path: '/a b',
      status: 200,
      tags: ['x'],
      timestamp: expect.any(String),
    });
    expect(logOnce('json', true).map((l) => JSON.parse(l) as unknown)).toHaveLength(1);
  });

  it('writes one coloured, aligned line per event with the same fields on a terminal', () => {
    delete process.env['NO_COLOR'];
    const [line] = logOnce('auto', true);
    // eslint-disable-next-line no-control-regex
    const plain = line!.replace(/\x1b\[[0-9;]*m/g, '');
    expect(line).not.toBe(plain);
    expect(plain).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INF proxy {4}request {26}method=GET path="\/a b" status=200 tags=\["x"\]$/);
  });

  it('leaves colour out when asked for console off a terminal, or with NO_COLOR', () => {
    const [off] = logOnce('console', false);
    expect(off).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INF proxy {4}request {26}method=GET/);
    process.env['NO_COLOR'] = '1';
    const [noColour] = logOnce('auto', true);
    expect(noColour).not.toContain('\x1b[');
  });

  it('prints an access record as a request line, its headers after it', () => {
    const { stream, lines } = sink(false);
    const logger = createLogger({ level: 'info', stream, format: 'console' });
    logger.child({ subsystem: 'proxy.http.access' }).info('request', {
      endpointId: 'shop',
      request: { method: 'POST', path: '/orders', status: 201, duration: '3.2ms', request_headers: { Accept: ['*/*'] } },
    });
    expect(lines()[0]).toMatch(
      / INF proxy\.http\.access request POST \/orders 201 3\.2ms +endpointId=shop request_headers=\{"Accept":\["\*\/\*"\]\}$/,
    );
  });

  it('is chosen by --log.format, which refuses another value', () => {
    expect(loadServerConfig({ flags: { 'log.format': 'console' } }).log.format).toBe('console');
    expect(() => loadServerConfig({ flags: { 'log.format': 'pretty' } })).toThrow(/log.format/);
  });
});

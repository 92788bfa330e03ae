import { once } from 'node:events';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isClientError } from '../../../dataplane/client/errors';
import { TokenFile } from '../../../dataplane/client/token-file';

const POLL_MS = 20;

describe('TokenFile', () => {
  let dir: string;
  const open: TokenFile[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'piko-token-file-'));
  });
  afterEach(() => {
    for (const f of open.splice(0)) f.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const watched = (path: string): TokenFile => {
    const f = new TokenFile(path, { pollIntervalMs: POLL_MS }).watch();
    open.push(f);
    return f;
  };

  it('reads the token without surrounding whitespace', () => {
    const path = join(dir, 't');
    writeFileSync(path, '  abc.def.ghi\n');
    expect(new TokenFile(path).token).toBe('abc.def.ghi');
  });

  it.each([
    ['missing', (_p: string) => undefined, /cannot read token file .*: ENOENT/],
    ['empty', (p: string) => writeFileSync(p, ' \n'), /is empty/],
    ['two words', (p: string) => writeFileSync(p, 'a b'), /more than one word/],
    ['too large', (p: string) => writeFileSync(p, 'x'.repeat(64 * 1024 + 1)), /is over 65536 bytes/],
    ['a directory', (p: string) => mkdirSync(p), /is not a regular file/],
  ])('refuses a file that is %s with ERR_CLIENT_TOKEN_FILE', (_name, make, message) => {
    const path = join(dir, 't');
    make(path);
    let caught: unknown;
    try {
      new TokenFile(path);
    } catch (err) {
      caught = err;
    }
    expect(isClientError(caught, 'ERR_CLIENT_TOKEN_FILE')).toBe(true);
    expect((caught as Error).message).toMatch(message);
  });

  it('emits change when the file is rewritten with another token, and not for the same one', async () => {
    const path = join(dir, 't');
    writeFileSync(path, 'one');
    const f = watched(path);
    const changes: string[] = [];
    f.on('change', (t) => changes.push(t));
    writeFileSync(path, 'one\n'); // same token, new mtime and size
    writeFileSync(path, 'two');
    await once(f, 'change');
    expect(f.token).toBe('two');
    expect(changes).toEqual(['two']);
  });

  it('sees a rewrite in place that keeps the length (same inode, size and possibly mtime tick)', async () => {
    const path = join(dir, 't');
    writeFileSync(path, 'aaaa');
    const f = watched(path);
    writeFileSync(path, 'bbbb');
    const [token] = (await once(f, 'change')) as [string];
    expect(token).toBe('bbbb');
  });

  it("sees the kubelet's swap of the ..data symlink as a change", async () => {
    // The layout of a projected volume: token -> ..data/token, ..data -> a timestamped directory.
    mkdirSync(join(dir, 'v1'));
    writeFileSync(join(dir, 'v1', 'token'), 'first');
    symlinkSync('v1', join(dir, '..data'));
    symlinkSync('..data/token', join(dir, 'token'));
    const f = watched(join(dir, 'token'));
    mkdirSync(join(dir, 'v2'));
    writeFileSync(join(dir, 'v2', 'token'), 'second');
    symlinkSync('v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    const [token] = (await once(f, 'change')) as [string];
    expect(token).toBe('second');
  });

  it('keeps the last token while the file is gone, and takes the next one written', async () => {
    const path = join(dir, 't');
    writeFileSync(path, 'kept');
    const f = watched(path);
    unlinkSync(path);
    expect(f.reload()).toBe(false);
    expect(f.token).toBe('kept');
    writeFileSync(path, 'next');
    const [token] = (await once(f, 'change')) as [string];
    expect(token).toBe('next');
  });

  it('reads nothing once closed', () => {
    const path = join(dir, 't');
    writeFileSync(path, 'a');
    const f = watched(path);
    f.close();
    writeFileSync(path, 'b');
    expect(f.reload()).toBe(false);
    expect(f.token).toBe('a');
  });
});

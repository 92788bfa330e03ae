import { ItemExponentialRateLimiter, MaxOfRateLimiter, TokenBucketRateLimiter } from '../../../../operator/runtime/rate-limiter';
import { WorkQueue } from '../../../../operator/runtime/work-queue';

/** Whether a promise has settled, without waiting for it. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await Promise.resolve();
  await Promise.resolve();
  return done;
}

describe('WorkQueue', () => {
  let depths: number[];
  let queue: WorkQueue;

  beforeEach(() => {
    jest.useFakeTimers({ now: 0 });
    depths = [];
    queue = new WorkQueue({
      rateLimiter: new ItemExponentialRateLimiter(5, 1_000),
      onDepthChange: (d) => depths.push(d),
    });
  });

  afterEach(() => {
    queue.shutDown();
    jest.useRealTimers();
  });

  it('hands out keys in order and queues a key only once while it waits', async () => {
    queue.add('ns/a');
    queue.add('ns/b');
    queue.add('ns/a');
    expect(queue.length).toBe(2);
    expect(await queue.get()).toBe('ns/a');
    expect(await queue.get()).toBe('ns/b');
    expect(queue.length).toBe(0);
    expect(depths).toEqual([1, 2, 1, 0]);
  });

  it('never hands a key to two workers: re-added while processed, it comes back after done()', async () => {
    queue.add('ns/a');
    const key = await queue.get();
    queue.add('ns/a');
    queue.add('ns/a');
    // A second worker waits: the key is being processed.
    const second = queue.get();
    expect(await settled(second)).toBe(false);
    queue.done(key!);
    expect(await second).toBe('ns/a');
    queue.done('ns/a');
    expect(queue.length).toBe(0);
  });

  it('wakes a waiting worker when a key arrives', async () => {
    const next = queue.get();
    expect(await settled(next)).toBe(false);
    queue.add('ns/a');
    expect(await next).toBe('ns/a');
  });

  it('delays a key with addAfter, keeping the earliest of two delays', async () => {
    queue.addAfter('ns/a', 1_000);
    queue.addAfter('ns/a', 300);
    queue.addAfter('ns/a', 2_000);
    await jest.advanceTimersByTimeAsync(299);
    expect(queue.length).toBe(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(queue.length).toBe(1);
    await jest.advanceTimersByTimeAsync(5_000);
    expect(queue.length).toBe(1);
  });

  it('backs a failing key off exponentially, and forget() starts it over', async () => {
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      const start = Date.now();
      queue.addRateLimited('ns/a');
      const key = queue.get();
      await jest.advanceTimersByTimeAsync(5 * 2 ** i);
      expect(await key).toBe('ns/a');
      delays.push(Date.now() - start);
      queue.done('ns/a');
    }
    expect(delays).toEqual([5, 10, 20, 40]);
    expect(queue.numRequeues('ns/a')).toBe(4);
    queue.forget('ns/a');
    expect(queue.numRequeues('ns/a')).toBe(0);
    queue.addRateLimited('ns/a');
    await jest.advanceTimersByTimeAsync(5);
    expect(queue.length).toBe(1);
  });

  it('caps the backoff and applies the overall token bucket', async () => {
    const q = new WorkQueue({
      rateLimiter: new MaxOfRateLimiter(new ItemExponentialRateLimiter(5, 60_000), new TokenBucketRateLimiter({ qps: 1, burst: 2 })),
    });
    q.addRateLimited('a');
    q.addRateLimited('b');
    // The bucket is spent: c waits a second although its own backoff is 5 ms.
    q.addRateLimited('c');
    await jest.advanceTimersByTimeAsync(5);
    expect(q.length).toBe(2);
    await jest.advanceTimersByTimeAsync(995);
    expect(q.length).toBe(3);
    q.shutDown();
  });

  it('shutDown() drops queued and delayed keys and releases waiting workers', async () => {
    queue.add('ns/a');
    queue.addAfter('ns/b', 100);
    const key = await queue.get();
    const waiting = queue.get();
    queue.add('ns/c');
    queue.shutDown();
    queue.add('ns/d');
    expect(await queue.get()).toBeUndefined();
    expect(await waiting).toBe('ns/c');
    queue.done(key!);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(queue.length).toBe(0);
  });

  it('shutDownWithDrain() hands out what is queued and resolves once all of it is done', async () => {
    queue.add('ns/a');
    queue.add('ns/b');
    const first = await queue.get();
    const drained = queue.shutDownWithDrain();
    queue.add('ns/c');
    expect(await queue.get()).toBe('ns/b');
    expect(await queue.get()).toBeUndefined();
    expect(await settled(drained)).toBe(false);
    queue.done('ns/b');
    expect(await settled(drained)).toBe(false);
    queue.done(first!);
    await drained;
    expect(queue.isShuttingDown).toBe(true);
  });

  it('drains a key re-added while processing before it resolves', async () => {
    queue.add('ns/a');
    const key = await queue.get();
    queue.add('ns/a');
    const drained = queue.shutDownWithDrain();
    queue.done(key!);
    expect(await queue.get()).toBe('ns/a');
    expect(await settled(drained)).toBe(false);
    queue.done('ns/a');
    await drained;
  });
});

import { Backoff, sleep } from '../../../dataplane/time/backoff';

describe('Backoff', () => {
  it('starts at the minimum and doubles up to the maximum, as Piko', () => {
    const b = new Backoff({ minMs: 100, maxMs: 15_000, random: () => 0 });
    const delays = Array.from({ length: 10 }, () => b.next());
    expect(delays).toEqual([100, 200, 400, 800, 1600, 3200, 6400, 12_800, 15_000, 15_000]);
    expect(b.attempts).toBe(10);
  });

  it('adds up to 10 % jitter on top of the capped delay', () => {
    const b = new Backoff({ minMs: 100, maxMs: 15_000, random: () => 0.999 });
    expect(b.next()).toBe(110);
    for (let i = 0; i < 20; i++) b.next();
    expect(b.next()).toBe(16_499);
  });

  it('starts over after reset', () => {
    const b = new Backoff({ minMs: 100, maxMs: 1000, random: () => 0 });
    b.next();
    b.next();
    b.reset();
    expect(b.next()).toBe(100);
  });

  it('never overflows, however many attempts', () => {
    const b = new Backoff({ minMs: 1, maxMs: 5000, random: () => 0 });
    for (let i = 0; i < 5000; i++) b.next();
    expect(b.next()).toBe(5000);
  });

  it('refuses a maximum below the minimum', () => {
    expect(() => new Backoff({ minMs: 100, maxMs: 10 })).toThrow(RangeError);
    expect(() => new Backoff({ minMs: 0, maxMs: 10 })).toThrow(RangeError);
  });
});

describe('sleep', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('waits out the backoff delay on the timer, not sooner', async () => {
    const b = new Backoff({ minMs: 100, maxMs: 15_000, random: () => 0 });
    let done = false;
    const p = sleep(b.next()).then(() => (done = true));
    await jest.advanceTimersByTimeAsync(99);
    expect(done).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    await p;
    expect(done).toBe(true);
  });

  it('walks the whole schedule to the cap with fake time', async () => {
    const b = new Backoff({ minMs: 100, maxMs: 15_000, random: () => 0 });
    const start = Date.now();
    for (let i = 0; i < 9; i++) {
      const p = sleep(b.next());
      await jest.runOnlyPendingTimersAsync();
      await p;
    }
    // 100 + 200 + ... + 12800 + 15000
    expect(Date.now() - start).toBe(25_500 + 15_000);
  });

  it('rejects with the abort reason and clears its timer', async () => {
    const controller = new AbortController();
    const p = sleep(10_000, controller.signal);
    controller.abort(new Error('stopped'));
    await expect(p).rejects.toThrow('stopped');
    expect(jest.getTimerCount()).toBe(0);
  });

  it('rejects at once when the signal has already aborted', async () => {
    await expect(sleep(10, AbortSignal.abort(new Error('already')))).rejects.toThrow('already');
    expect(jest.getTimerCount()).toBe(0);
  });
});

import {
  defaultControllerRateLimiter,
  ItemExponentialRateLimiter,
  MaxOfRateLimiter,
  TokenBucketRateLimiter,
} from '../../../../operator/runtime/rate-limiter';

describe('ItemExponentialRateLimiter', () => {
  it('doubles the delay per failure of a key from 5 ms up to the cap', () => {
    const limiter = new ItemExponentialRateLimiter(5, 1_000_000);
    const delays = Array.from({ length: 20 }, () => limiter.when('ns/a'));
    expect(delays.slice(0, 5)).toEqual([5, 10, 20, 40, 80]);
    // 5 ms × 2^17 = 655 s, then the 1000 s cap.
    expect(delays.slice(17)).toEqual([655_360, 1_000_000, 1_000_000]);
    expect(limiter.numRequeues('ns/a')).toBe(20);
  });

  it('counts each key on its own and starts over once forgotten', () => {
    const limiter = new ItemExponentialRateLimiter(5, 300_000);
    limiter.when('ns/a');
    limiter.when('ns/a');
    expect(limiter.when('ns/b')).toBe(5);
    limiter.forget('ns/a');
    expect(limiter.numRequeues('ns/a')).toBe(0);
    expect(limiter.when('ns/a')).toBe(5);
  });

  it('never overflows after very many failures', () => {
    const limiter = new ItemExponentialRateLimiter(5, 300_000);
    let last = 0;
    for (let i = 0; i < 2000; i++) last = limiter.when('k');
    expect(last).toBe(300_000);
  });

  it('refuses a cap below the base', () => {
    expect(() => new ItemExponentialRateLimiter(10, 5)).toThrow(RangeError);
  });
});

describe('TokenBucketRateLimiter', () => {
  it('lets a burst through at once, then spreads calls at the rate', () => {
    let now = 0;
    const bucket = new TokenBucketRateLimiter({ qps: 10, burst: 3, now: () => now });
    expect([bucket.when(), bucket.when(), bucket.when()]).toEqual([0, 0, 0]);
    // In debt: each call waits for its token, 100 ms apart at 10 per second.
    expect([bucket.when(), bucket.when()]).toEqual([100, 200]);
    now = 1_000;
    // One second refills 10 tokens, capped at the burst, minus the debt of 2.
    expect(bucket.when()).toBe(0);
  });
});

describe('MaxOfRateLimiter', () => {
  it('waits the longest of its limiters and forgets in all of them', () => {
    const now = 0;
    const limiter = new MaxOfRateLimiter(
      new ItemExponentialRateLimiter(5, 1_000),
      new TokenBucketRateLimiter({ qps: 1, burst: 1, now: () => now }),
    );
    expect(limiter.when('a')).toBe(5);
    // The bucket is empty now: its 1 s beats the key's 5 ms.
    expect(limiter.when('b')).toBe(1_000);
    limiter.forget('a');
    expect(limiter.numRequeues('a')).toBe(0);
  });

  it("is client-go's default shape: 5 ms per key, 10 retries per second overall after a burst of 100", () => {
    const limiter = defaultControllerRateLimiter(() => 0);
    expect(limiter.when('x')).toBe(5);
    for (let i = 0; i < 99; i++) limiter.when(`k${i}`);
    expect(limiter.when('y')).toBe(100);
  });
});

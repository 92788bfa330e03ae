import { clampDelay, MAX_TIMER_DELAY_MS, startTimer } from '../../../dataplane/time/timer';

describe('startTimer', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('waits out a delay past 2^31 ms instead of firing at once', () => {
    const fired = jest.fn();
    const thirtyDays = 30 * 24 * 3600 * 1000;
    startTimer(thirtyDays, fired);
    jest.advanceTimersByTime(1);
    expect(fired).not.toHaveBeenCalled();
    jest.advanceTimersByTime(MAX_TIMER_DELAY_MS);
    expect(fired).not.toHaveBeenCalled();
    jest.advanceTimersByTime(thirtyDays - MAX_TIMER_DELAY_MS - 2);
    expect(fired).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it('fires an ordinary delay once, and never after clear', () => {
    const fired = jest.fn();
    const cleared = jest.fn();
    startTimer(100, fired);
    const timer = startTimer(MAX_TIMER_DELAY_MS * 3, cleared);
    jest.advanceTimersByTime(MAX_TIMER_DELAY_MS + 10);
    timer.clear();
    jest.advanceTimersByTime(MAX_TIMER_DELAY_MS * 3);
    expect(fired).toHaveBeenCalledTimes(1);
    expect(cleared).not.toHaveBeenCalled();
  });

  it('keeps unref across re-arming', () => {
    const timer = startTimer(MAX_TIMER_DELAY_MS * 2, () => undefined).unref();
    jest.advanceTimersByTime(MAX_TIMER_DELAY_MS + 1);
    // Nothing left keeps the loop alive: jest counts only ref'd fakes the same way, so check the count.
    expect(jest.getTimerCount()).toBe(1);
    timer.clear();
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('clampDelay', () => {
  it.each([
    [-5, 0],
    [Number.NaN, 0],
    [0, 0],
    [1.2, 2],
    [MAX_TIMER_DELAY_MS + 1, MAX_TIMER_DELAY_MS],
    [Number.POSITIVE_INFINITY, MAX_TIMER_DELAY_MS],
  ])('clamps %p to %p', (input, output) => expect(clampDelay(input)).toBe(output));
});

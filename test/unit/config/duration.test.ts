import { DurationError, formatDuration, parseDuration } from '../../../dataplane/config/duration';

describe('parseDuration', () => {
  it.each([
    ['0', 0],
    ['-0', 0],
    ['30s', 30_000],
    ['1m30s', 90_000],
    ['100ms', 100],
    ['1h', 3_600_000],
    ['1.5s', 1_500],
    ['.5s', 500],
    ['1.s', 1_000],
    ['2us', 0.002],
    ['2\u00b5s', 0.002],
    ['2\u03bcs', 0.002],
    ['1500ns', 0.0015],
    ['1h2m3s4ms', 3_723_004],
    ['+5s', 5_000],
    ['-1m', -60_000],
    ['0s', 0],
    ['1.1s', 1_100],
  ])('parses %j as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBeCloseTo(ms, 9);
  });

  it.each([
    ['', 'invalid duration ""'],
    ['30', 'missing unit in duration "30"'],
    ['1.5', 'missing unit in duration "1.5"'],
    ['5x', 'unknown unit "x" in duration "5x"'],
    ['5 s', 'unknown unit " s" in duration "5 s"'],
    ['s', 'invalid duration "s"'],
    ['.s', 'invalid duration ".s"'],
    ['-', 'invalid duration "-"'],
    ['1s junk', 'unknown unit "s junk" in duration "1s junk"'],
    ['9999999999h', 'invalid duration "9999999999h"'],
  ])('rejects %j', (text, message) => {
    expect(() => parseDuration(text)).toThrow(message);
    try {
      parseDuration(text);
    } catch (err) {
      expect(err).toBeInstanceOf(DurationError);
      expect((err as DurationError).code).toBe('ERR_INVALID_DURATION');
    }
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [30_000, '30s'],
    [60_000, '1m0s'],
    [90_000, '1m30s'],
    [300_000, '5m0s'],
    [3_600_000, '1h0m0s'],
    [1_500, '1.5s'],
    [100, '100ms'],
    [1.234, '1.234ms'],
    [0.002, '2\u00b5s'],
    [0.000_5, '500ns'],
    [-1_500, '-1.5s'],
  ])('formats %d ms as %j, as Go does', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips through parseDuration', () => {
    for (const ms of [0, 1, 999, 1_000, 61_001, 3_600_000 + 1, 0.001]) {
      expect(parseDuration(formatDuration(ms))).toBeCloseTo(ms, 9);
    }
  });
});

/**
 * Go's duration syntax (`time.ParseDuration` / `Duration.String`), so Piko
 * config files and flags mean the same here. Values are milliseconds as a
 * number; sub-millisecond units give fractions (`100us` is 0.1).
 */

export class DurationError extends Error {
  override readonly name = 'DurationError';
  readonly code = 'ERR_INVALID_DURATION';
}

const NS_PER_US = 1_000;
const NS_PER_MS = 1_000_000;
const NS_PER_S = 1_000_000_000;
const NS_PER_MIN = 60 * NS_PER_S;
const NS_PER_H = 60 * NS_PER_MIN;

// Both micro signs are accepted, as in Go: U+00B5 (micro) and U+03BC (mu).
const UNIT_NS: Readonly<Record<string, number>> = {
  ns: 1,
  us: NS_PER_US,
  '\u00b5s': NS_PER_US,
  '\u03bcs': NS_PER_US,
  ms: NS_PER_MS,
  s: NS_PER_S,
  m: NS_PER_MIN,
  h: NS_PER_H,
};

// Go durations are int64 nanoseconds; past this Go reports an overflow.
const MAX_NS = 2 ** 63 - 1;

const isDigit = (c: string): boolean => c >= '0' && c <= '9';

/**
 * Parses `30s`, `1m30s`, `1.5h`, `100ms`, `2us`, `-1s`, `0` into
 * milliseconds. A bare number other than 0 has no unit and is rejected, as
 * in Go.
 */
export function parseDuration(text: string): number {
  const quoted = JSON.stringify(text);
  let s = text;
  let negative = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    negative = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw new DurationError(`invalid duration ${quoted}`);

  let totalNs = 0;
  while (s !== '') {
    if (!(s[0] === '.' || isDigit(s[0]!))) throw new DurationError(`invalid duration ${quoted}`);
    let i = 0;
    while (i < s.length && isDigit(s[i]!)) i++;
    const whole = s.slice(0, i);
    let fraction = '';
    if (s[i] === '.') {
      let j = i + 1;
      while (j < s.length && isDigit(s[j]!)) j++;
      fraction = s.slice(i + 1, j);
      i = j;
    }
    if (whole === '' && fraction === '') throw new DurationError(`invalid duration ${quoted}`);
    s = s.slice(i);

    let u = 0;
    while (u < s.length && s[u] !== '.' && !isDigit(s[u]!)) u++;
    if (u === 0) throw new DurationError(`missing unit in duration ${quoted}`);
    const unit = s.slice(0, u);
    s = s.slice(u);
    const unitNs = UNIT_NS[unit];
    if (unitNs === undefined) {
      throw new DurationError(`unknown unit ${JSON.stringify(unit)} in duration ${quoted}`);
    }

    const wholeNs = (whole === '' ? 0 : Number(whole)) * unitNs;
    const fractionNs = fraction === '' ? 0 : (Number(fraction) * unitNs) / 10 ** fraction.length;
    totalNs += wholeNs + fractionNs;
    if (!Number.isFinite(totalNs) || totalNs > MAX_NS) throw new DurationError(`invalid duration ${quoted}`);
  }
  const ms = Math.round(totalNs) / NS_PER_MS;
  return negative ? -ms : ms;
}

/**
 * Go's `Duration.String` for a value in milliseconds: `0s`, `100ms`,
 * `1.5s`, `1m30s`, `1h0m0s`. Used for help text so defaults read as Piko
 * prints them.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new DurationError(`invalid duration ${String(ms)}`);
  let ns = Math.round(Math.abs(ms) * NS_PER_MS);
  if (ns === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  if (ns < NS_PER_US) return `${sign}${ns}ns`;
  if (ns < NS_PER_MS) return `${sign}${decimal(ns, 3)}\u00b5s`;
  if (ns < NS_PER_S) return `${sign}${decimal(ns, 6)}ms`;

  const seconds = decimal(ns % NS_PER_MIN, 9);
  ns = Math.floor(ns / NS_PER_MIN);
  if (ns === 0) return `${sign}${seconds}s`;
  const minutes = ns % 60;
  const hours = Math.floor(ns / 60);
  return hours > 0 ? `${sign}${hours}h${minutes}m${seconds}s` : `${sign}${minutes}m${seconds}s`;
}

// `value / 10^digits` without trailing zeros or a bare point, as Go's fmtFrac.
function decimal(value: number, digits: number): string {
  const scale = 10 ** digits;
  const whole = Math.floor(value / scale);
  const frac = String(value % scale)
    .padStart(digits, '0')
    .replace(/0+$/, '');
  return frac === '' ? String(whole) : `${whole}.${frac}`;
}

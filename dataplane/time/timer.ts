/**
 * Node keeps timer delays in a signed 32-bit millisecond count: anything
 * above 2^31 - 1 (24.8 days) fires after 1 ms, with only a process warning.
 * Durations come from users (`--proxy.timeout 720h`, a token valid for a
 * year), so every duration that becomes a timer goes through here.
 */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * For APIs that take a delay and cannot be re-armed (socket idle timeouts,
 * `http.Server` options, `setInterval`): 24.8 days stands in for "longer",
 * which for an idle or keepalive timer is the same thing. Negative and NaN
 * become 0.
 */
export function clampDelay(ms: number): number {
  if (!(ms > 0)) return 0;
  return Math.min(Math.ceil(ms), MAX_TIMER_DELAY_MS);
}

export interface Timer {
  /** Cancels the timer; harmless after it fired. */
  clear(): void;
  /** Lets the process exit while only this timer is pending. */
  unref(): Timer;
}

/**
 * `setTimeout` for any delay: a delay past Node's bound is waited out in
 * steps, so a timer set for a year fires in a year, not at once.
 */
export function startTimer(ms: number, callback: () => void): Timer {
  const deadline = performance.now() + Math.max(0, ms);
  let handle: NodeJS.Timeout | undefined;
  let unrefed = false;
  const arm = (): void => {
    const left = deadline - performance.now();
    if (left > MAX_TIMER_DELAY_MS) {
      handle = setTimeout(arm, MAX_TIMER_DELAY_MS);
    } else {
      handle = setTimeout(() => {
        handle = undefined;
        callback();
      }, clampDelay(left));
    }
    if (unrefed) handle.unref();
  };
  arm();
  const timer: Timer = {
    clear() {
      if (handle) clearTimeout(handle);
      handle = undefined;
    },
    unref() {
      unrefed = true;
      handle?.unref();
      return timer;
    },
  };
  return timer;
}

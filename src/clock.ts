/**
 * Time, injected. Every deadline outside the charts (the server link's heartbeat, the process
 * host's pinger and memory watch) reads and schedules through a `Clock`, so tests run them under
 * a simulated one. XState's `SimulatedClock` is one; so is the clock a chart's actor system uses
 * (`createActor(logic, { clock })`), which is why this is that interface plus `now()`.
 */

import { DeadlineExceededError } from './errors.ts';

export interface Clock {
  /** Milliseconds; only differences between two readings mean anything. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout | undefined),
};

/**
 * `work`, bounded: it settles as `work` does, or rejects with a `DeadlineExceededError` naming
 * `what` once `ms` have passed on `clock`. The timer is cleared on every path; `work` itself is
 * not cancelled (pass it an `AbortSignal` of its own for that).
 */
export function withDeadline<T>(
  work: PromiseLike<T>,
  ms: number,
  what: string,
  clock: Clock = systemClock,
): Promise<T> {
  let timer: unknown;
  const deadline = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(new DeadlineExceededError(what, ms)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clock.clearTimeout(timer));
}

/**
 * Runs `fn` every `ms` on `clock` until the returned function is called: chained timeouts (a
 * `Clock` has no interval), the next one set before `fn` runs, so a slow `fn` does not stretch
 * the period. On the system clock the timers do not keep the process alive (`unref`).
 */
export function repeatEvery(clock: Clock, ms: number, fn: () => void): () => void {
  let stopped = false;
  let timer: unknown;
  const schedule = () => {
    timer = clock.setTimeout(() => {
      if (stopped) return;
      schedule();
      fn();
    }, ms);
    unref(timer);
  };
  schedule();
  return () => {
    stopped = true;
    clock.clearTimeout(timer);
  };
}

/** `clock.setTimeout`, not keeping the process alive on the system clock (`unref`). */
export function backgroundTimeout(clock: Clock, fn: () => void, ms: number): unknown {
  const timer = clock.setTimeout(fn, ms);
  unref(timer);
  return timer;
}

function unref(timer: unknown): void {
  (timer as { unref?: () => void } | undefined)?.unref?.();
}

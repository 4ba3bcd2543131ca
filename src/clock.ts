/**
 * Time, injected. Every deadline outside the charts (the server link's heartbeat, the process
 * host's pinger and memory watch) reads and schedules through a `Clock`, so tests run them under
 * a simulated one. XState's `SimulatedClock` is one; so is the clock a chart's actor system uses
 * (`createActor(logic, { clock })`), which is why this is that interface plus `now()`.
 */

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

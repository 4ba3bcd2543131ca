/**
 * Samples a job process's RSS on a timer: warns above the soft limit (at most every 2 minutes,
 * or again after 50 MB of growth), and reports the hard limit once, then stops. Time comes from
 * the injected clock, the samples from `readRss` (the real `/proc` reader by default).
 */
import type { Clock } from '../clock.ts';
import type { Logger } from '../log/logger.ts';
import { readRssMb } from './memory.ts';

const WARN_COOLDOWN_MS = 120_000;
const WARN_GROWTH_MB = 50;

export interface MemoryWatchOptions {
  pid: number;
  /** 0 disables the warning. */
  warnMb: number;
  /** 0 disables the limit. */
  limitMb: number;
  intervalMs: number;
  clock: Clock;
  log: () => Logger;
  onExceeded: (rssMb: number) => void;
  /** Resident memory in MB, `undefined` when the process is gone. Default: `readRssMb`. */
  readRss?: (pid: number) => Promise<number | undefined>;
}

/** Starts sampling; returns the function that stops it (safe to call twice). */
export function startMemoryWatch(o: MemoryWatchOptions): () => void {
  if (o.warnMb <= 0 && o.limitMb <= 0) return () => {};
  const readRss = o.readRss ?? readRssMb;
  let timer: unknown;
  let stopped = false;
  let lastWarn: { at: number; rssMb: number } | undefined;

  const sample = async () => {
    const rss = await readRss(o.pid);
    if (stopped || rss === undefined) return schedule();
    const rssMb = Math.round(rss);
    if (o.limitMb > 0 && rssMb > o.limitMb) {
      o.log().error('job process exceeded its memory limit; ending it', {
        rssMb,
        limitMb: o.limitMb,
      });
      stopped = true;
      o.onExceeded(rssMb);
      return;
    }
    if (o.warnMb > 0 && rssMb > o.warnMb) {
      const now = o.clock.now();
      if (
        !lastWarn ||
        now - lastWarn.at > WARN_COOLDOWN_MS ||
        rssMb - lastWarn.rssMb >= WARN_GROWTH_MB
      ) {
        lastWarn = { at: now, rssMb };
        o.log().warn('job process memory is high', {
          rssMb,
          warnMb: o.warnMb,
          limitMb: o.limitMb,
          advisory: o.limitMb <= 0,
        });
      }
    }
    schedule();
  };
  // Chained timeouts, not an interval: a slow sample never overlaps the next one.
  const schedule = () => {
    if (!stopped) timer = o.clock.setTimeout(() => void sample(), o.intervalMs);
  };
  schedule();
  return () => {
    stopped = true;
    o.clock.clearTimeout(timer);
  };
}

/**
 * The event-loop stall watch, in the worker and in every job process: a timer that should fire
 * every `intervalMs` and notes how late it fires. A loop blocked for longer than the threshold
 * (synchronous work, a long GC) is reported once it turns again, with how long it was blocked.
 * One timer per process, unref'd: it costs a wake-up every 100 ms and never keeps a process alive.
 *
 * Stalls are also published in-process (`onLoopStall`), so the worker's metrics can count the
 * worker's own and those its job processes report over IPC without either knowing the other.
 */
import { systemClock, type Clock } from '../clock.ts';

/** Which kind of process stalled, the `process` label of the metric. */
export type ProcessKind = 'worker' | 'job';

export interface LoopStall {
  process: ProcessKind;
  /** How long the loop did not turn, beyond the probe's own interval. */
  stalledMs: number;
  /** The job the process was running, when it was a job process running one. */
  jobId?: string;
}

export interface LoopStallWatchOptions {
  /** A stall at least this long is reported; 0 disables the watch. */
  thresholdMs: number;
  onStall: (stalledMs: number) => void;
  /** Default 100 ms (a fifth of the default threshold or less). */
  intervalMs?: number;
  clock?: Clock;
}

/** Starts watching; returns the function that stops it (safe to call twice). */
export function watchEventLoop(o: LoopStallWatchOptions): () => void {
  if (o.thresholdMs <= 0) return () => {};
  const clock = o.clock ?? systemClock;
  const intervalMs = Math.min(o.intervalMs ?? 100, o.thresholdMs);
  let stopped = false;
  let timer: unknown;
  let last = clock.now();
  const probe = () => {
    if (stopped) return;
    const now = clock.now();
    const stalledMs = Math.round(now - last - intervalMs);
    last = now;
    schedule();
    if (stalledMs >= o.thresholdMs) o.onStall(stalledMs);
  };
  const schedule = () => {
    timer = clock.setTimeout(probe, intervalMs);
    (timer as { unref?: () => void } | undefined)?.unref?.();
  };
  schedule();
  return () => {
    stopped = true;
    clock.clearTimeout(timer);
  };
}

const listeners = new Set<(s: LoopStall) => void>();

/** Publishes a stall to this process's listeners (the worker's metrics, its tracer). */
export function publishLoopStall(s: LoopStall): void {
  for (const l of listeners) {
    try {
      l(s);
    } catch {
      // A listener's failure is its own; the others still hear it.
    }
  }
}

/** Follows the stalls published in this process; returns the remover. */
export function onLoopStall(listener: (s: LoopStall) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

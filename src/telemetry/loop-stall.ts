/**
 * The event-loop stall watch, in the worker and in every job process. Node's own loop-delay
 * monitor (`perf_hooks.monitorEventLoopDelay`) ticks a native timer every `intervalMs` and keeps
 * the longest gap between ticks; a JavaScript check once a second reads it and resets it. A loop
 * blocked for longer than the threshold (synchronous work, a long GC) is reported once it turns
 * again, within that second, with how long it was blocked. The ticks run no JavaScript, which is
 * why the watch is this shape: an idle process pays a wake-up a second in JavaScript, not ten
 * (docs/measurements.md, "Event-loop stall watch"). The check's timer is unref'd: the watch never
 * keeps a process alive.
 *
 * Stalls are also published in-process (`onLoopStall`), so the worker's metrics can count the
 * worker's own and those its job processes report over IPC without either knowing the other.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { systemClock, type Clock } from '../clock.ts';

/** Which kind of process stalled, the `process` label of the metric. */
export type ProcessKind = 'worker' | 'job';

export interface LoopStall {
  process: ProcessKind;
  /** How long the loop did not turn, beyond the monitor's own tick. */
  stalledMs: number;
  /** The job the process was running, when it was a job process running one. */
  jobId?: string;
}

export interface LoopStallWatchOptions {
  /** A stall at least this long is reported; 0 disables the watch. */
  thresholdMs: number;
  onStall: (stalledMs: number) => void;
  /** The monitor's tick. Default 100 ms (a fifth of the default threshold or less). */
  intervalMs?: number;
  /** How often the longest gap is read. Default 1 s. */
  checkEveryMs?: number;
  clock?: Clock;
}

/** Starts watching; returns the function that stops it (safe to call twice). */
export function watchEventLoop(o: LoopStallWatchOptions): () => void {
  if (o.thresholdMs <= 0) return () => {};
  const clock = o.clock ?? systemClock;
  const intervalMs = Math.max(1, Math.round(Math.min(o.intervalMs ?? 100, o.thresholdMs)));
  const checkEveryMs = o.checkEveryMs ?? 1_000;
  const monitor = monitorEventLoopDelay({ resolution: intervalMs });
  monitor.enable();
  let stopped = false;
  let timer: unknown;
  const check = () => {
    if (stopped) return;
    // `max` is the longest gap between two ticks, in ns; a gap with no stall is one tick long.
    const stalledMs = Math.round(monitor.max / 1e6 - intervalMs);
    monitor.reset();
    schedule();
    if (stalledMs >= o.thresholdMs) o.onStall(stalledMs);
  };
  const schedule = () => {
    timer = clock.setTimeout(check, checkEveryMs);
    (timer as { unref?: () => void } | undefined)?.unref?.();
  };
  schedule();
  return () => {
    if (stopped) return;
    stopped = true;
    clock.clearTimeout(timer);
    monitor.disable();
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

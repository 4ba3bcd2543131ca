/**
 * Load sampling: calls the user's `loadFnc` (or the default CPU window) on an interval. A
 * `loadFnc` that throws, hangs or returns nonsense is logged and skipped; the last known load
 * stays. `startLoadSampling` is the loop itself (a `WorkerGroup` runs one for the whole
 * process); `createLoadSampler` wraps it as the worker chart's `loadSampler` actor (contract:
 * machines/loadSampler.contract.ts), which sends `LOAD_SAMPLED`.
 */
import { fromCallback, type EventObject } from 'xstate';
import type { LoadSamplerReport } from '../../machines/loadSampler.contract.ts';
import { systemClock, withDeadline, type Clock } from '../clock.ts';
import type { Logger } from '../log/logger.ts';
import type { WorkerLoadView } from '../options/worker-options.ts';
import { clamp01, CpuWindow } from './cpu.ts';

export interface LoadSamplerOptions {
  loadFnc: ((worker: WorkerLoadView) => number | Promise<number>) | undefined;
  view: WorkerLoadView;
  logger: Logger;
  /** Default 500 ms. */
  intervalMs?: number;
  /** Time of the samples and of `loadFnc`'s deadline. Default: the system clock. */
  clock?: Clock;
}

/** Samples until the returned stopper is called; `onSample` gets each valid value in [0, 1]. */
export function startLoadSampling(
  opts: LoadSamplerOptions,
  onSample: (load: number) => void,
): () => void {
  const every = opts.intervalMs ?? 500;
  const clock = opts.clock ?? systemClock;
  const cpu = opts.loadFnc ? undefined : new CpuWindow();
  const loadFnc = opts.loadFnc ?? (() => cpu!.utilisation());
  let inFlight: Promise<void> | undefined;
  let stopped = false;

  const tick = () => {
    cpu?.sample();
    if (inFlight) return; // a slow loadFnc never piles up calls
    inFlight = (async () => {
      try {
        const value = await withDeadline(
          Promise.resolve(loadFnc(opts.view)),
          every * 4,
          'loadFnc',
          clock,
        );
        if (typeof value !== 'number' || Number.isNaN(value)) {
          opts.logger.warn('loadFnc returned a non-number; load unchanged', {
            value: String(value),
          });
          return;
        }
        if (!stopped) onSample(clamp01(value));
      } catch (err) {
        opts.logger.warn('loadFnc failed; load unchanged', { error: err });
      } finally {
        inFlight = undefined;
      }
    })();
  };
  // A chain of timeouts on the injected clock, not an interval: the clock has no interval.
  let timer: unknown;
  const loop = () => {
    tick();
    if (!stopped) timer = clock.setTimeout(loop, every);
  };
  loop();
  return () => {
    stopped = true;
    clock.clearTimeout(timer);
  };
}

export function createLoadSampler(opts: LoadSamplerOptions) {
  return fromCallback<EventObject, void>(({ sendBack }) =>
    startLoadSampling(opts, (load) => {
      const report: LoadSamplerReport = { type: 'LOAD_SAMPLED', load };
      sendBack(report);
    }),
  );
}

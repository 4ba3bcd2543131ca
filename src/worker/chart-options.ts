/** Derives the worker chart's options from the resolved worker options. */
import { availableParallelism } from 'node:os';
import type { WorkerChartOptions } from '../../machines/worker.context.ts';
import type { ResolvedWorkerOptions } from '../options.ts';

/** Protocol timings that are facts of the server, not user choices (docs/architecture.md §3). */
export const PROTOCOL_TIMINGS = {
  registerTimeout: 10_000,
  statusInterval: 2_500,
  /** agents-js waits 7.5 s for an assignment after accepting. */
  assignmentTimeout: 7_500,
} as const;

export function chartOptionsFrom(
  o: ResolvedWorkerOptions,
  random: () => number = Math.random,
): WorkerChartOptions {
  return {
    loadThreshold: o.loadThreshold,
    maxJobs: o.maxJobs,
    numIdleProcesses: o.numIdleProcesses,
    drainTimeout: o.drainTimeout,
    requestTimeout: o.requestTimeout,
    initializeProcessTimeout: o.initializeProcessTimeout,
    shutdownProcessTimeout: o.shutdownProcessTimeout,
    ...PROTOCOL_TIMINGS,
    reconnectBaseDelay: 500,
    reconnectMaxDelay: 30_000,
    spawnBaseDelay: 1_000,
    spawnMaxDelay: 30_000,
    // Booting is CPU-bound: twice the cores keeps every core busy without starving the worker.
    maxConcurrentPrewarms: Math.max(4, 2 * availableParallelism()),
    random,
  };
}

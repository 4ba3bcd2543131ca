/** Derives the worker chart's options from the resolved worker options. */
import { availableParallelism } from 'node:os';
import { systemClock, type Clock } from '../clock.ts';
import type { WorkerChartOptions } from '../../machines/worker.contract.ts';
import type { ResolvedWorkerOptions } from './resolve.ts';

/** Protocol timings that are facts of the server, not user choices (docs/architecture.md §3). */
const PROTOCOL_TIMINGS = {
  registerTimeout: 10_000,
  statusInterval: 2_500,
  /** agents-js waits 7.5 s for an assignment after accepting. */
  assignmentTimeout: 7_500,
} as const;

/**
 * The start time assumed until the first process is measured: a plain-node start with a trivial
 * prewarm on a busy small machine, rounded up (docs/measurements.md).
 */
const INITIAL_START_ESTIMATE = 1_000;

/**
 * How long a reused process beyond the `numIdleProcesses` spares may stay idle (ms): a steady
 * stream of jobs keeps taking it; after a burst the pool is back to its size within this.
 */
export const SURPLUS_IDLE_TIMEOUT = 5_000;

/**
 * How long after a job's entrypoint starts the spare that replaces its process is started. A
 * spare's boot is CPU-bound; started at once it runs while the entrypoint joins its room and
 * slows that join (docs/measurements.md). Long enough for a usual `ctx.connect()`, short next to
 * a start; jobs queued for a process never wait for it.
 */
export const SPARE_REFILL_DELAY = 500;

/**
 * How long after a job's entrypoint starts the spare replacing its process is started when that
 * process may come back for the next job (reuse) and another spare is left: as long as a kept
 * process may stay a surplus, so a short job brings its process back before a spare is spent on
 * it. A job that took the last spare while others run gets `SPARE_REFILL_DELAY`
 * (machines/worker.processes.ts).
 */
const REUSED_SPARE_REFILL_DELAY = SURPLUS_IDLE_TIMEOUT;

/**
 * How far back offers count for the elastic pool's arrival rate (ms): long enough that a steady
 * stream of a few jobs a minute keeps its spare, short enough that the pool is back to `min`
 * this long after a burst's last offer.
 */
const ARRIVAL_WINDOW = 10_000;

/**
 * The last part of that window whose own rate counts when it is higher (ms): a burst building
 * up raises the pool within a couple of seconds rather than ten.
 */
const BURST_WINDOW = 2_000;

/** How often the elastic pool lets go the spares beyond its target (ms). */
const POOL_RESIZE_INTERVAL = 1_000;

/** Chart timings that are not user options; tests may stretch or shorten them. */
export type ChartTuning = Partial<
  Pick<WorkerChartOptions, 'surplusIdleTimeout' | 'spareRefillDelay' | 'reusedSpareRefillDelay'>
>;

/**
 * The chart's options from the resolved ones. `clock` is the actor system's (the chart measures
 * its process starts with it); `random` feeds the backoffs' jitter.
 */
export function chartOptionsFrom(
  o: ResolvedWorkerOptions,
  { clock = systemClock, random = Math.random }: { clock?: Clock; random?: () => number } = {},
): WorkerChartOptions {
  return {
    agentName: o.agentName,
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
    // A start is CPU-bound: more starts at once than cores only stretch each one, for no more
    // starts per second (docs/measurements.md).
    maxConcurrentStarts: Math.max(1, availableParallelism()),
    jobStartBudget: o.jobStartBudget,
    jobsPerProcess: o.jobsPerProcess,
    reuseMemoryGrowthMb: o.reuseMemoryGrowthMb,
    surplusIdleTimeout: SURPLUS_IDLE_TIMEOUT,
    spareRefillDelay: SPARE_REFILL_DELAY,
    reusedSpareRefillDelay: REUSED_SPARE_REFILL_DELAY,
    initialStartEstimate: INITIAL_START_ESTIMATE,
    elasticPool: o.elasticIdleProcesses && {
      ...o.elasticIdleProcesses,
      arrivalWindow: ARRIVAL_WINDOW,
      burstWindow: BURST_WINDOW,
      resizeInterval: POOL_RESIZE_INTERVAL,
    },
    now: () => clock.now(),
    random,
  };
}

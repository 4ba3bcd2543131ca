/**
 * The pure functions the worker chart's guards and actions are built from, over its context
 * (whose shape, with what the outside reads of it, is in `worker.contract.ts`). Kept apart from
 * the chart so the chart reads as structure and these read as arithmetic.
 */
import type { Job } from '@livekit/protocol';
import {
  DEFAULT_KILL_TIMEOUT,
  DEFAULT_TERMINATE_TIMEOUT,
  shutdownBudget,
  type JobOutcome,
} from './jobProcess.contract.ts';
import type { ResolvedAcceptArguments } from './jobRequest.contract.ts';
import {
  activeJobCount,
  type AnswerDecision,
  type JobRecord,
  type ProcRecord,
  type WorkerContext,
} from './worker.contract.ts';

/**
 * A job whose process dies before its entrypoint ran (the hand-off) goes back to the queue for
 * another process, up to this many hand-offs in all; a job that started is never run twice.
 */
const MAX_LAUNCH_ATTEMPTS = 2;

/** Whether a job's end is a failed hand-off to retry rather than the job's end. */
export const retriesLaunch = (job: JobRecord, outcome: JobOutcome): boolean =>
  job.phase === 'launching' &&
  outcome === 'failed' &&
  !job.endRequested &&
  job.launchAttempts < MAX_LAUNCH_ATTEMPTS;

export const decidingJob = (job: Job): JobRecord => ({
  jobId: job.id,
  job,
  phase: 'deciding',
  acceptArguments: undefined,
  launch: undefined,
  procId: undefined,
  launchAttempts: 0,
  endRequested: false,
});

export const prewarmingProc = (
  procId: string,
  spawnedAt: number,
  generation: number,
): ProcRecord => ({
  procId,
  phase: 'prewarming',
  pid: undefined,
  jobId: undefined,
  spawnedAt,
  generation,
  jobsRun: 0,
});

export const procList = (c: WorkerContext): ProcRecord[] => Object.values(c.procs);
export const jobList = (c: WorkerContext): JobRecord[] => Object.values(c.jobs);

export const idleProcCount = (c: WorkerContext): number =>
  procList(c).filter((p) => p.phase === 'idle').length;

/** Every reserved slot counts, so two concurrent requests can never both take the last one. */
export const hasFreeSlot = (c: WorkerContext): boolean => jobList(c).length < c.options.maxJobs;

/** Jobs that hold a slot but no process yet: being decided, or accepted and not yet assigned. */
export const waitingJobCount = (c: WorkerContext): number =>
  jobList(c).filter((j) => j.phase === 'deciding' || j.phase === 'accepted').length;

const prewarmingCount = (c: WorkerContext): number =>
  procList(c).filter((p) => p.phase === 'prewarming').length;

/** Processes running a job. */
export const runningProcCount = (c: WorkerContext): number =>
  procList(c).filter((p) => p.phase === 'running').length;

/** A warm or starting process is left for a job beyond those already promised one. */
export const hasSpareForNextJob = (c: WorkerContext): boolean =>
  idleProcCount(c) + prewarmingCount(c) > waitingJobCount(c) + queuedJobs(c).length;

/** Assigned jobs waiting for a warm process, oldest first. */
export const queuedJobs = (c: WorkerContext): JobRecord[] =>
  jobList(c).filter((j) => j.phase === 'queued');

/**
 * How long an offer taken now would wait for a warm process (ms): every job that holds a slot
 * without a process, this one included, takes an idle process or waits for a start; starts run
 * `maxConcurrentStarts` at a time, each taking the measured start time.
 */
function expectedStartDelay(c: WorkerContext): number {
  const needing = waitingJobCount(c) + queuedJobs(c).length + 1;
  const starts = Math.max(0, needing - idleProcCount(c));
  return Math.ceil(starts / c.options.maxConcurrentStarts) * c.startEstimate;
}

export const startsInTime = (c: WorkerContext): boolean =>
  expectedStartDelay(c) <= c.options.jobStartBudget;

/**
 * Why a worker says no to an offer by itself: `startDelay` when the user's policy (load, slots)
 * would take the job and only its expected start delay is over budget; `full` otherwise.
 */
export function fullDecline(c: WorkerContext): { decision: 'full' | 'startDelay'; reason: string } {
  if (loadBelowThreshold(c) && hasFreeSlot(c) && !startsInTime(c)) {
    const delay = expectedStartDelay(c);
    const budget = c.options.jobStartBudget;
    return {
      decision: 'startDelay',
      reason: `expected start delay ${delay} ms is over jobStartBudget (${budget} ms)`,
    };
  }
  return { decision: 'full', reason: 'full' };
}

/** Weight of the newest measured start in the moving average. */
const START_ESTIMATE_WEIGHT = 0.3;
export const nextStartEstimate = (estimate: number, measured: number): number =>
  Math.round((1 - START_ESTIMATE_WEIGHT) * estimate + START_ESTIMATE_WEIGHT * measured);

/** How long an assigned job may wait in the queue before it is failed (ms). */
export const startDeadline = (c: WorkerContext): number =>
  // Timers hold at most 2^31 − 1 ms; a longer one would fire at once.
  Math.min(2 ** 31 - 1, c.options.jobStartBudget + c.options.initializeProcessTimeout);

/** Weight of the newest measured RSS of a warm process in its moving average. */
const MEMORY_ESTIMATE_WEIGHT = 0.3;
export const nextSpareMemoryEstimate = (estimate: number | undefined, measured: number): number =>
  estimate === undefined
    ? measured
    : Math.round((1 - MEMORY_ESTIMATE_WEIGHT) * estimate + MEMORY_ESTIMATE_WEIGHT * measured);

/** The arrivals still inside the elastic pool's window at `now`, oldest first. */
export const recentArrivals = (c: WorkerContext, now: number): number[] => {
  const window = c.options.elasticPool?.arrivalWindow ?? 0;
  const from = c.arrivals.findIndex((t) => now - t < window);
  return from < 0 ? [] : from === 0 ? c.arrivals : c.arrivals.slice(from);
};

/**
 * The recent arrival rate of offers (per ms): over the whole window, or over its last
 * `burstWindow` when offers come faster there (a burst building up, seen seconds before the
 * whole window shows it). The short window counts the intervals between its offers rather than
 * the offers, so one offer alone does not look like a stream.
 */
export function arrivalRate(c: WorkerContext, now: number): number {
  const pool = c.options.elasticPool;
  if (!pool) return 0;
  const recent = recentArrivals(c, now);
  const burst = recent.filter((t) => now - t < pool.burstWindow).length;
  return Math.max(recent.length / pool.arrivalWindow, Math.max(0, burst - 1) / pool.burstWindow);
}

/**
 * How many spares the pool keeps now: `numIdleProcesses`, or the elastic pool's target.
 *
 * The elastic pool is a stock with a lead time: a spare a job takes now is replaced
 * `spareRefillDelay` later and warm a measured start after that, so the spares kept should
 * cover the offers expected over that lead time at the recent arrival rate. Offers arrive at
 * random (Poisson), so the target is that mean plus two standard deviations (√mean), which a
 * steady stream exceeds about one lead time in fifty. It stays within [min, max], and within
 * `memoryMb` by the measured RSS of a warm process (no more than `min` until one is measured).
 */
export function idleTarget(c: WorkerContext): number {
  const pool = c.options.elasticPool;
  if (!pool) return c.options.numIdleProcesses;
  const leadTime = c.options.spareRefillDelay + c.startEstimate;
  const mean = arrivalRate(c, c.options.now()) * leadTime;
  const wanted = Math.ceil(mean + 2 * Math.sqrt(mean));
  const byMemory =
    c.spareMemoryEstimate === undefined
      ? pool.min
      : Math.floor(pool.memoryMb / Math.max(1, c.spareMemoryEstimate));
  return Math.max(pool.min, Math.min(wanted, pool.max, byMemory));
}

/** Idle processes beyond the spares wanted and the jobs about to need one. */
export const surplusIdleCount = (c: WorkerContext): number =>
  Math.max(0, idleProcCount(c) - idleTarget(c) - waitingJobCount(c));

/**
 * How many processes to spawn now: one per queued job plus (with `spares`) the spares the pool
 * keeps (`idleTarget`), less those idle or already prewarming, within the free start slots.
 */
export function processesToStart(c: WorkerContext, spares: boolean): number {
  const wanted = queuedJobs(c).length + (spares ? idleTarget(c) : 0);
  const have = prewarmingCount(c) + idleProcCount(c);
  const slots = c.options.maxConcurrentStarts - prewarmingCount(c);
  return Math.max(0, Math.min(wanted - have, slots));
}

export const loadBelowThreshold = (c: WorkerContext): boolean => c.load < c.options.loadThreshold;

/** Jobs that hold or may soon hold a process (everything past the decision). */
export { activeJobCount };

/** Exponential backoff with full jitter in [delay/2, delay]. */
export function backoffDelay(
  failures: number,
  base: number,
  max: number,
  random: () => number,
): number {
  const exp = Math.min(max, base * 2 ** Math.max(0, failures - 1));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/** How long a drain waits, after asking the jobs to end, before it stops the worker anyway. */
export const shutdownGrace = (c: WorkerContext): number =>
  shutdownBudget({
    initializeTimeout: c.options.initializeProcessTimeout,
    shutdownTimeout: c.options.shutdownProcessTimeout,
  });

/**
 * How long a stopping worker waits for its processes' exits at most. Each process is told to stop
 * (or killed) on the way in and gives itself up (`abandoned`) at the latest its terminate and
 * kill timeouts later, so this, a second beyond, only bounds the wait if a process actor broke
 * that promise.
 */
export const PROCESS_EXIT_GRACE = DEFAULT_TERMINATE_TIMEOUT + DEFAULT_KILL_TIMEOUT + 1_000;

/** How long to wait before the next connection attempt. */
export const reconnectDelay = (c: WorkerContext): number =>
  backoffDelay(
    c.connectFailures,
    c.options.reconnectBaseDelay,
    c.options.reconnectMaxDelay,
    c.options.random,
  );

/** How long to wait before spawning again after failed prewarms. */
export const spawnRetryDelay = (c: WorkerContext): number =>
  backoffDelay(
    c.prewarmFailures,
    c.options.spawnBaseDelay,
    c.options.spawnMaxDelay,
    c.options.random,
  );

export function firstIdleProc(c: WorkerContext): ProcRecord | undefined {
  return procList(c).find((p) => p.phase === 'idle' && !p.jobId);
}

/** `record` with `key`'s entry changed by `patch`; the same record when there is no such entry. */
export function patched<T>(record: Record<string, T>, key: string, patch: Partial<T>) {
  const entry = record[key];
  return entry === undefined ? record : { ...record, [key]: { ...entry, ...patch } };
}

export function without<T>(record: Record<string, T>, key: string): Record<string, T> {
  const { [key]: _removed, ...rest } = record;
  return rest;
}

/** The process is idle and holds no job. */
export const isIdleProc = (c: WorkerContext, procId: string): boolean => {
  const proc = c.procs[procId];
  return proc?.phase === 'idle' && !proc.jobId;
};

/**
 * A kept process is a surplus while more processes are idle than the spares wanted plus the
 * jobs about to need one.
 */
export const hasSurplusIdle = (c: WorkerContext): boolean => surplusIdleCount(c) > 0;

export const requestId = (jobId: string): string => `request-${jobId}`;
/** The id of a reused process's idle timer (a delayed event, cancelled when it takes a job). */
export const idleTimerId = (procId: string): string => `idle-timer-${procId}`;
/** The id of a queued job's start deadline (a delayed event, cancelled when it launches). */
export const startDeadlineId = (jobId: string): string => `start-deadline-${jobId}`;
/** The id of the `offset`-th process spawned from now (0: the next one). */
export const nextProcId = (c: WorkerContext, offset = 0): string =>
  `proc-${c.nextProcNumber + offset}`;

// The messages the chart sends and emits more than once.
export const offered = (job: Job) =>
  ({ type: 'availabilityRequested', jobId: job.id, roomName: job.room?.name ?? '' }) as const;
export const answer = (jobId: string, acceptArguments: ResolvedAcceptArguments | undefined) =>
  ({ type: 'AVAILABILITY_ANSWERED', jobId, acceptArguments }) as const;
export const answered = (jobId: string, decision: AnswerDecision, reason: string) =>
  ({ type: 'requestAnswered', jobId, decision, reason }) as const;
export const jobStatus = (jobId: string, outcome: 'running' | JobOutcome, error: string) =>
  ({ type: 'JOB_STATUS_REPORTED', jobId, outcome, error }) as const;

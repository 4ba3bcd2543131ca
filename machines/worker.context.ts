/**
 * The worker chart's context and the pure functions its guards and actions are built from.
 * Kept apart from the chart so the chart reads as structure and these read as arithmetic.
 */
import type { Job } from '@livekit/protocol';
import { shutdownBudget, type JobOutcome, type RunningJobInfo } from './jobProcess.contract.ts';
import type { ResolvedAcceptArguments } from './jobRequest.contract.ts';
import { WORKER_STATUSES, type AnswerDecision, type WorkerStatusName } from './worker.contract.ts';

/** The options the chart itself decides with (a subset of the resolved worker options). */
export interface WorkerChartOptions {
  /** Not a decision input: it names the chart in the inspector (one tab per agent of a group). */
  agentName: string;
  loadThreshold: number;
  /** `Infinity` for no cap. */
  maxJobs: number;
  numIdleProcesses: number;
  drainTimeout: number;
  requestTimeout: number;
  /** How long an accepted job waits for its assignment before the slot is released. */
  assignmentTimeout: number;
  initializeProcessTimeout: number;
  shutdownProcessTimeout: number;
  /** How long to wait for the server's register reply. */
  registerTimeout: number;
  /** Interval of the periodic `UpdateWorkerStatus`. */
  statusInterval: number;
  /** Reconnect backoff: first delay, cap, and the random source for jitter (injected for tests). */
  reconnectBaseDelay: number;
  reconnectMaxDelay: number;
  /** Process respawn backoff after failed prewarms. */
  spawnBaseDelay: number;
  spawnMaxDelay: number;
  /**
   * Processes that may be prewarming at once, spares and those started for queued jobs alike.
   * A start is CPU-bound: starting more at once than the machine sustains makes every one slower
   * (and their prewarm deadlines, which count from the spawn, expire) without more starts per
   * second. Further starts wait for a free start slot.
   */
  maxConcurrentStarts: number;
  /**
   * The longest a job may be expected to wait for a warm process (`jobStartBudget`). An offer
   * whose expected start delay exceeds it is declined (`startDelay`); a queued job still
   * waiting after this plus `initializeProcessTimeout` is failed.
   */
  jobStartBudget: number;
  /** Jobs one process may run in turn (`jobsPerProcess`; 1: no reuse). */
  jobsPerProcess: number;
  /** RSS growth past which a process is not reused (`reuseMemoryGrowthMb`). */
  reuseMemoryGrowthMb: number;
  /**
   * How long a reused process may sit idle beyond the `numIdleProcesses` spares before it is
   * let go: long enough to take the next job of a steady stream, short enough that the pool is
   * back to its size soon after a burst.
   */
  surplusIdleTimeout: number;
  /**
   * How long after a job's entrypoint starts the spare that replaces its process is started
   * (`SPARE_REFILL_DELAY` in src/worker/chart-options.ts says why).
   */
  spareRefillDelay: number;
  /**
   * The same, when the job's process may be reused after it and another spare is left (or the
   * job is the only one running): a short job brings its process back before then, so no start
   * is spent on a spare that would be a surplus at once; a long one gets its spare replaced after
   * this.
   */
  reusedSpareRefillDelay: number;
  /** The start time (ms) assumed before any process has been measured. */
  initialStartEstimate: number;
  /** The chart's clock for measuring starts (ms; only differences are used). Injected for tests. */
  now: () => number;
  random: () => number;
}

export type ProcPhase = 'prewarming' | 'idle' | 'running' | 'exiting';

export interface ProcRecord {
  procId: string;
  phase: ProcPhase;
  pid: number | undefined;
  jobId: string | undefined;
  /** When the process was spawned (`options.now()`), to measure its start. */
  spawnedAt: number;
  /** The code generation it imported (`WorkerContext.generation` at its spawn). */
  generation: number;
  /** Jobs handed to it so far. */
  jobsRun: number;
}

/**
 * A job from the moment this worker reserves a slot for it: `deciding` (requestFnc running),
 * `accepted` (answer sent, awaiting assignment), `queued` (assigned, waiting for the next warm
 * process), `launching` (handed to a warm process, waiting for it to confirm) and `running`
 * (the entrypoint started).
 */
export type JobPhase = 'deciding' | 'accepted' | 'queued' | 'launching' | 'running';

export interface JobRecord {
  jobId: string;
  job: Job;
  phase: JobPhase;
  acceptArguments: ResolvedAcceptArguments | undefined;
  /** What the process needs to run it; known from the assignment on. */
  launch: RunningJobInfo | undefined;
  procId: string | undefined;
  /** How many processes this job has been handed to (a hand-off that dies is retried once). */
  launchAttempts: number;
  /** The job was asked to end (server termination, drain): its process dying then is its end. */
  endRequested: boolean;
}

/**
 * A job whose process dies before its entrypoint ran (the hand-off) goes back to the queue for
 * another process, up to this many hand-offs in all; a job that started is never run twice.
 */
export const MAX_LAUNCH_ATTEMPTS = 2;

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

export interface WorkerContext {
  options: WorkerChartOptions;
  workerId: string | undefined;
  serverUrl: string;
  load: number;
  /** Consecutive failed connection attempts, for the backoff. Reset on registration. */
  connectFailures: number;
  /** Consecutive failed prewarms, for the respawn backoff. Reset when a process gets warm. */
  prewarmFailures: number;
  /** Why the last prewarm failed, for the report of a job that found no process in time. */
  lastPrewarmFailure: string | undefined;
  /** Measured start time of a process (ms): a moving average of spawn → warm. */
  startEstimate: number;
  procs: Record<string, ProcRecord>;
  jobs: Record<string, JobRecord>;
  nextProcNumber: number;
  /**
   * Bumped when idle processes are recycled for new code (dev reload): a reused process from an
   * older generation is let go when its job ends instead of taking another.
   */
  generation: number;
  lastError: string | undefined;
  stopReason: string | undefined;
  /** Set when the server refused the worker (bad credentials or URL): the run failed. */
  refusal: string | undefined;
}

export const procList = (c: WorkerContext): ProcRecord[] => Object.values(c.procs);
export const jobList = (c: WorkerContext): JobRecord[] => Object.values(c.jobs);

export const idleProcCount = (c: WorkerContext): number =>
  procList(c).filter((p) => p.phase === 'idle').length;

/** Every reserved slot counts, so two concurrent requests can never both take the last one. */
export const hasFreeSlot = (c: WorkerContext): boolean => jobList(c).length < c.options.maxJobs;

/** Jobs that hold a slot but no process yet: being decided, or accepted and not yet assigned. */
export const waitingJobCount = (c: WorkerContext): number =>
  jobList(c).filter((j) => j.phase === 'deciding' || j.phase === 'accepted').length;

export const prewarmingCount = (c: WorkerContext): number =>
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
export function expectedStartDelay(c: WorkerContext): number {
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

/**
 * How many processes to spawn now: one per queued job plus (with `spares`) `numIdleProcesses`
 * warm spares, less those idle or already prewarming, within the free start slots.
 */
export function processesToStart(c: WorkerContext, spares: boolean): number {
  const wanted = queuedJobs(c).length + (spares ? c.options.numIdleProcesses : 0);
  const have = prewarmingCount(c) + idleProcCount(c);
  const slots = c.options.maxConcurrentStarts - prewarmingCount(c);
  return Math.max(0, Math.min(wanted - have, slots));
}

export const loadBelowThreshold = (c: WorkerContext): boolean => c.load < c.options.loadThreshold;

/** Jobs that hold or may soon hold a process (everything past the decision). */
export const activeJobCount = (c: WorkerContext): number => jobList(c).length;

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
export const hasSurplusIdle = (c: WorkerContext): boolean =>
  idleProcCount(c) > c.options.numIdleProcesses + waitingJobCount(c);

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

// Selectors: what the outside world reads from the chart (the `Worker` facade, http, CLI).

/** A job this worker holds, from acceptance to its end. */
export interface ActiveJob {
  id: string;
  roomName: string;
  /** The participant a PUBLISHER job is for. */
  participantIdentity: string | undefined;
  phase: JobPhase;
  procId: string | undefined;
  pid: number | undefined;
}

export const activeJobs = (c: WorkerContext): ActiveJob[] =>
  jobList(c).map((j) => ({
    id: j.jobId,
    roomName: j.job.room?.name ?? '',
    participantIdentity: j.job.participant?.identity,
    phase: j.phase,
    procId: j.procId,
    pid: j.procId ? c.procs[j.procId]?.pid : undefined,
  }));

/** The status is the tag of the lifecycle state the worker is in. */
export const statusOf = (snapshot: { hasTag(tag: WorkerStatusName): boolean }): WorkerStatusName =>
  WORKER_STATUSES.find((tag) => snapshot.hasTag(tag)) ?? 'connecting';

/**
 * The worker chart's context and the pure functions its guards and actions are built from.
 * Kept apart from the chart so the chart reads as structure and these read as arithmetic.
 */
import type { Job } from '@livekit/protocol';
import type { JobOutcome } from './jobProcess.contract.ts';
import type { ResolvedAcceptArguments } from './jobRequest.contract.ts';
import type { AnswerDecision } from './worker.contract.ts';

/** The options the chart itself decides with (a subset of the resolved worker options). */
export interface WorkerChartOptions {
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
   * Processes that may be starting for jobs at once (spares warming in the background aside).
   * With no idle process left and this many starting, no process can take a job soon enough:
   * the worker is full. On a small machine, starting dozens of processes together starves them
   * all and every job fails late instead of being declined at once.
   */
  maxConcurrentPrewarms: number;
  random: () => number;
}

export type ProcPhase = 'prewarming' | 'idle' | 'running' | 'exiting';

export interface ProcRecord {
  procId: string;
  phase: ProcPhase;
  pid: number | undefined;
  jobId: string | undefined;
}

/**
 * A job from the moment this worker reserves a slot for it: `deciding` (requestFnc running),
 * `accepted` (answer sent, awaiting assignment), `launching` (assigned, process starting) and
 * `running` (the entrypoint started).
 */
export type JobPhase = 'deciding' | 'accepted' | 'launching' | 'running';

export interface JobRecord {
  jobId: string;
  job: Job;
  phase: JobPhase;
  acceptArguments: ResolvedAcceptArguments | undefined;
  procId: string | undefined;
}

export const decidingJob = (job: Job): JobRecord => ({
  jobId: job.id,
  job,
  phase: 'deciding',
  acceptArguments: undefined,
  procId: undefined,
});

export const prewarmingProc = (procId: string, jobId: string | undefined): ProcRecord => ({
  procId,
  phase: 'prewarming',
  pid: undefined,
  jobId,
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
  procs: Record<string, ProcRecord>;
  jobs: Record<string, JobRecord>;
  nextProcNumber: number;
  lastError: string | undefined;
  stopReason: string | undefined;
  /** Set when the server refused the worker (bad credentials or URL): the run failed. */
  refusal: string | undefined;
}

export const procList = (c: WorkerContext): ProcRecord[] => Object.values(c.procs);
export const jobList = (c: WorkerContext): JobRecord[] => Object.values(c.jobs);

export const idleProcCount = (c: WorkerContext): number =>
  procList(c).filter((p) => p.phase === 'idle').length;

/** Processes that are, or are becoming, idle warm processes with no job promised to them. */
export const spareProcCount = (c: WorkerContext): number =>
  procList(c).filter((p) => (p.phase === 'idle' || p.phase === 'prewarming') && !p.jobId).length;

/** Every reserved slot counts, so two concurrent requests can never both take the last one. */
export const hasFreeSlot = (c: WorkerContext): boolean => jobList(c).length < c.options.maxJobs;

/** Jobs that hold a slot but no process yet: being decided, or accepted and not yet assigned. */
export const waitingJobCount = (c: WorkerContext): number =>
  jobList(c).filter((j) => j.phase === 'deciding' || j.phase === 'accepted').length;

/**
 * Processes being started for jobs: those already prewarming with a job, plus those the waiting
 * jobs will need once the idle ones are taken. Spares warming in the background do not count.
 */
export const onDemandStartCount = (c: WorkerContext): number =>
  procList(c).filter((p) => p.phase === 'prewarming' && p.jobId).length +
  Math.max(0, waitingJobCount(c) - idleProcCount(c));

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

export const requestId = (jobId: string): string => `request-${jobId}`;
/** The id the next spawned process gets. */
export const nextProcId = (c: WorkerContext): string => `proc-${c.nextProcNumber}`;

// The messages the chart sends and emits more than once.
export const offered = (job: Job) =>
  ({ type: 'availabilityRequested', jobId: job.id, roomName: job.room?.name ?? '' }) as const;
export const answer = (jobId: string, acceptArguments: ResolvedAcceptArguments | undefined) =>
  ({ type: 'AVAILABILITY_ANSWERED', jobId, acceptArguments }) as const;
export const answered = (jobId: string, decision: AnswerDecision, reason: string) =>
  ({ type: 'requestAnswered', jobId, decision, reason }) as const;
export const jobStatus = (jobId: string, outcome: 'running' | JobOutcome, error: string) =>
  ({ type: 'JOB_STATUS_REPORTED', jobId, outcome, error }) as const;

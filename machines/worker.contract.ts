/**
 * The contract between the worker chart and whoever runs it (`src/worker`'s `Worker`, the CLI,
 * tests): its input, the events it accepts from outside besides its actors' reports, and the
 * events it emits for logs, metrics and tools. Change these names everywhere at once.
 */
import type { Job } from '@livekit/protocol';
import type {
  JobEnding,
  JobOutcome,
  JobProcessReport,
  RunningJobInfo,
} from './jobProcess.contract.ts';
import type {
  JobRequestReport,
  RequestDeclineDecision,
  ResolvedAcceptArguments,
} from './jobRequest.contract.ts';
import type { LoadSamplerReport } from './loadSampler.contract.ts';
import type { ServerLinkReport, WorkerAvailability } from './serverLink.contract.ts';

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
   * (`SPARE_REFILL_DELAY` in src/options/chart-options.ts says why).
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
  /** The opt-in elastic warm pool (`elasticIdleProcesses`); `undefined`: `numIdleProcesses`, fixed. */
  elasticPool: ElasticPool | undefined;
  /** The chart's clock for measuring starts (ms; only differences are used). Injected for tests. */
  now: () => number;
  random: () => number;
}

/**
 * The elastic warm pool: the spares kept follow the recent arrival rate of offers and the
 * measured start time, between `min` and `max`, bounded by the memory the spares may hold
 * (`idleTarget` in worker.context.ts).
 */
export interface ElasticPool {
  min: number;
  max: number;
  /** The most memory (MB) the spares may hold together, by the RSS of a warm process. */
  memoryMb: number;
  /** How far back offers count for the arrival rate (ms). */
  arrivalWindow: number;
  /** The window's recent part whose rate counts when it is higher (ms; `arrivalRate`). */
  burstWindow: number;
  /** How often a pool that has more spares than it wants lets the surplus go (ms). */
  resizeInterval: number;
}

export type { WorkerAvailability };

/**
 * How an availability request was answered: a bounded set (metric labels), with the human
 * reason carried beside it for logs.
 * - `accepted`: `requestFnc` accepted.
 * - `rejected`, `timeout`, `error`: `requestFnc` rejected (or returned without deciding), ran
 *   past its budget, or threw.
 * - `full`, `draining`, `unavailable`: the worker said no by itself — no free capacity,
 *   draining, or not registered/stopping.
 * - `startDelay`: the user's policy would take the job, but it could not start in time: its
 *   expected start delay is over `jobStartBudget`.
 */
export type AnswerDecision = 'accepted' | DeclineDecision;
export type DeclineDecision =
  RequestDeclineDecision | 'full' | 'startDelay' | 'draining' | 'unavailable';

/**
 * Where the worker is, in one word: the tag of the lifecycle state it is in (`registered`'s two
 * children carry `available` and `full`; `draining`'s children both carry `draining`).
 */
export const WORKER_STATUSES = [
  'connecting',
  'available',
  'full',
  'reconnecting',
  'draining',
  'stopping',
  'stopped',
] as const;
export type WorkerStatusName = (typeof WORKER_STATUSES)[number];

export interface WorkerInput {
  options: WorkerChartOptions;
  serverUrl: string;
}

export type WorkerEvent =
  | ServerLinkReport
  | JobRequestReport
  | JobProcessReport
  | LoadSamplerReport
  | { type: 'STATUS_TICKED' }
  | { type: 'DRAIN_REQUESTED'; reason: string }
  /** Replace every idle process with a fresh one (dev hot reload); running jobs are untouched. */
  | { type: 'PROCESSES_RECYCLE_REQUESTED'; reason: string }
  /** Ask the server for a job in this room for this worker (`agent connect --room`). */
  | { type: 'JOB_SIMULATION_REQUESTED'; roomName: string; participantIdentity?: string }
  | { type: 'FORCE_STOP_REQUESTED'; reason: string }

  /** Internal (raised with a delay by the chart): a queued job's time to get a process is up. */
  | { type: 'JOB_START_DEADLINE_PASSED'; jobId: string }
  /** Internal (raised with a delay): a reused process has been idle for `surplusIdleTimeout`. */
  | { type: 'PROCESS_IDLE_TIMED_OUT'; procId: string }
  /** Internal (raised with a delay by the chart): time to replace the spare a started job took. */
  | { type: 'SPARE_REFILL_DUE' }
  /** Internal (raised with a delay, elastic pool only): time to let surplus spares go. */
  | { type: 'POOL_RESIZE_DUE' };

/** What the chart tells the outside world (logs, metrics, the `Worker` facade, tests). */
export type WorkerEmitted =
  | { type: 'registered'; workerId: string; serverVersion: string }
  | { type: 'connectionLost'; reason: string }
  | { type: 'statusReported'; status: WorkerAvailability; load: number; jobCount: number }
  /** An offer arrived; its `requestAnswered` follows (metrics time the answer from here). */
  | { type: 'availabilityRequested'; jobId: string; roomName: string }
  | { type: 'requestAnswered'; jobId: string; decision: AnswerDecision; reason: string }
  | { type: 'jobLaunched'; jobId: string; procId: string }
  /** The job's process died before its entrypoint ran; the job is queued for another one. */
  | { type: 'jobRetried'; jobId: string; procId: string; reason: string }
  /**
   * A job's end: `ending` says what ended it (its runtime, or its process's end), and
   * `endRequested` whether it had been asked to end (a server termination, the drain deadline).
   */
  | {
      type: 'jobEnded';
      jobId: string;
      outcome: JobOutcome;
      reason: string;
      ending: JobEnding;
      endRequested: boolean;
    }
  /** A process whose job ended cleanly stays for another job (`jobsPerProcess` above 1). */
  | { type: 'processReused'; procId: string }
  | {
      type: 'processExited';
      procId: string;
      pid: number | undefined;
      reason: string;
      failed: boolean;
    }
  | { type: 'stopped'; reason: string };

// The chart's context: one record per job and per process (docs/architecture.md §2).

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
  /** Measured RSS of a warm process (MB): a moving average; `undefined` until one said it. */
  spareMemoryEstimate: number | undefined;
  /** When recent offers arrived (`options.now()`), within the elastic pool's window; else empty. */
  arrivals: number[];
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

// Selectors: what the outside world reads from the chart (the `Worker` facade, http, CLI).

/** Jobs that hold or may soon hold a process (everything past the decision). */
export const activeJobCount = (c: WorkerContext): number => Object.keys(c.jobs).length;

/** A job this worker holds, from acceptance to its end. */
export interface ActiveJob {
  id: string;
  roomName: string;
  /** The participant a PUBLISHER job is for. */
  participantIdentity: string | undefined;
  phase: JobPhase;
  procId: string | undefined;
  pid: number | undefined;
  /** Set when job recovery dispatched this job again: its attempt and the job it replaces. */
  recovered: { attempt: number; previousJobId: string } | undefined;
}

export const activeJobs = (c: WorkerContext): ActiveJob[] =>
  Object.values(c.jobs).map((j) => ({
    id: j.jobId,
    roomName: j.job.room?.name ?? '',
    participantIdentity: j.job.participant?.identity,
    phase: j.phase,
    procId: j.procId,
    pid: j.procId ? c.procs[j.procId]?.pid : undefined,
    recovered: recoveredFrom(j),
  }));

function recoveredFrom(j: JobRecord): ActiveJob['recovered'] {
  const r = j.acceptArguments?.recovery;
  return r ? { attempt: r.attempt, previousJobId: r.previousJobId } : undefined;
}

/** The status is the tag of the lifecycle state the worker is in. */
export const statusOf = (snapshot: { hasTag(tag: WorkerStatusName): boolean }): WorkerStatusName =>
  WORKER_STATUSES.find((tag) => snapshot.hasTag(tag)) ?? 'connecting';

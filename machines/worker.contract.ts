/**
 * The contract between the worker chart and whoever runs it (`src/worker`'s `Worker`, the CLI,
 * tests): its input, the events it accepts from outside besides its actors' reports, and the
 * events it emits for logs, metrics and tools. Change these names everywhere at once.
 */
import type { JobOutcome, JobProcessReport } from './jobProcess.contract.ts';
import type { JobRequestReport, RequestDeclineDecision } from './jobRequest.contract.ts';
import type { LoadSamplerReport } from './loadSampler.contract.ts';
import type { ServerLinkReport, WorkerAvailability } from './serverLink.contract.ts';

export type { WorkerAvailability };
import type { WorkerChartOptions } from './worker.context.ts';

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
  | { type: 'SPARE_REFILL_DUE' };

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
  | { type: 'jobEnded'; jobId: string; outcome: JobOutcome; reason: string }
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

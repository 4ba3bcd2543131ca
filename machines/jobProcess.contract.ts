/**
 * The contract between the worker chart and each spawned `jobProcess` actor: its input, the
 * events the worker sends it and the events it sends back (with `sendParent`). Both charts
 * and their tests rely on these names; change them everywhere at once.
 */
import type { JsonValue } from '@bufbuild/protobuf';
import type { ResolvedAcceptArguments } from './jobRequest.contract.ts';

/** How a job ended, as the server hears it (`JS_SUCCESS` / `JS_FAILED`). */
export type JobOutcome = 'success' | 'failed';

/**
 * How a job process ended: the final state of the jobProcess chart (`crashed` is the process's
 * own doing, every other one is chosen on the way into `exiting`).
 */
export type ProcessEnd =
  | 'crashed'
  | 'finished'
  | 'stopped'
  | 'prewarmFailed'
  | 'prewarmTimedOut'
  | 'killed'
  | 'memoryExceeded'
  | 'unresponsive';

/**
 * What ended a job: `returned` when its runtime said how it ended (the entrypoint's end, a throw,
 * `ctx.shutdown()`, a room disconnect, a requested shutdown done in time), the way its process
 * ended when the process took the job with it, or `dropped` when the worker gave the job up
 * before a process ran it (no process in time, the worker stopping). Job recovery retries only
 * the ends no one asked for (`src/recovery/`).
 */
export type JobEnding = 'returned' | ProcessEnd | 'dropped';

/**
 * What the worker hands to a job process when it launches a job: serialisable (it crosses IPC),
 * and complete enough for the child to build a `JobContext` without asking back.
 */
export interface RunningJobInfo {
  jobId: string;
  /** The server's `Job` message as proto3 JSON (`Job.toJson()`); rebuild with `Job.fromJson`. */
  job: JsonValue;
  acceptArguments: ResolvedAcceptArguments;
  /** Where the job's room connection goes: the assignment's URL, else the worker's. */
  url: string;
  /** The assignment's token for the agent participant. Secret: never log it. */
  token: string;
  workerId: string;
}

export interface JobProcessInput {
  /** Stable id of this process actor, e.g. `proc-3`; also its actor id and systemId. */
  procId: string;
  /** A job to run as soon as the process is warm (a process started on demand for it). */
  job?: RunningJobInfo;
  /** Whether a process may run another job after one ended cleanly. Default: never. */
  reuse?: ProcessReuse;
}

/**
 * Opt-in process reuse (`jobsPerProcess`): a process whose job ended cleanly — success, every
 * shutdown callback done in its budget, the room left — goes back to `idle` for the next job,
 * while it has run fewer than `maxJobs` and its RSS grew at most `memoryGrowthMb` since it got
 * warm. Anything else ends the process as without reuse.
 */
export interface ProcessReuse {
  /** Jobs one process may run in turn (1: a fresh process for every job). */
  maxJobs: number;
  /** RSS growth (MB) since the process got warm above which it is not reused. */
  memoryGrowthMb: number;
}

/** No reuse: one process per job. */
export const NO_REUSE: ProcessReuse = { maxJobs: 1, memoryGrowthMb: 0 };

/** Deadlines (ms) on top of the input. The worker derives them from its options. */
export interface JobProcessTimeouts {
  /** Prewarm budget (`initializeProcessTimeout`); also the budget for a launched job to start. */
  initializeTimeout: number;
  /** Graceful shutdown budget of a running job (`shutdownProcessTimeout`). */
  shutdownTimeout: number;
  /** Grace between the polite stop (`terminate` over IPC) and SIGKILL. Default `DEFAULT_TERMINATE_TIMEOUT`. */
  terminateTimeout?: number;
  /** How long to wait for the exit after SIGKILL before giving the process up. Default `DEFAULT_KILL_TIMEOUT`. */
  killTimeout?: number;
}

export const DEFAULT_TERMINATE_TIMEOUT = 5_000;
export const DEFAULT_KILL_TIMEOUT = 5_000;

/**
 * How a running job's shutdown budget is shared out inside the process, so that the job reports
 * its end before the chart's own deadline kills the process: the shutdown callbacks get most of
 * it, leaving the room gets a fixed slice after them, and a process whose worker is gone
 * (orphaned) waits for both before it exits by itself.
 */
export const SHUTDOWN_CALLBACKS_SHARE = 0.8;
/** The budget of leaving the room once the shutdown callbacks are done (ms). */
export const ROOM_LEAVE_TIMEOUT = 5_000;

/** Each shutdown callback's budget: most of the job's shutdown budget. */
export const shutdownCallbackBudget = (shutdownTimeout: number): number =>
  Math.floor(shutdownTimeout * SHUTDOWN_CALLBACKS_SHARE);

/** How long an orphaned process may take to end its job: the callbacks', then the room's. */
export const orphanGrace = (callbackBudget: number): number => callbackBudget + ROOM_LEAVE_TIMEOUT;

/**
 * The longest a running process can take, once asked to shut down, to reach a final state by
 * its own deadlines: the job's shutdown budget, then the polite stop's grace, then the wait after
 * SIGKILL. The worker's drain backstop (`SHUTDOWN_GRACE`) is derived from this.
 */
export function shutdownBudget(t: JobProcessTimeouts): number {
  return (
    t.shutdownTimeout +
    (t.terminateTimeout ?? DEFAULT_TERMINATE_TIMEOUT) +
    (t.killTimeout ?? DEFAULT_KILL_TIMEOUT)
  );
}

export type JobProcessMachineInput = JobProcessInput & JobProcessTimeouts;

/** Worker → jobProcess. */
export type JobProcessCommand =
  /** Run this job (only meaningful in `idle`; the worker only sends it to idle processes). */
  | { type: 'LAUNCH_REQUESTED'; job: RunningJobInfo }
  /** End the job gracefully (server termination, drain deadline, worker stop) with this reason. */
  | { type: 'SHUTDOWN_REQUESTED'; reason: string }
  /** Stop at once (second signal, forced stop). */
  | { type: 'KILL_REQUESTED'; reason: string };

/** jobProcess → worker. `PROCESS_EXITED` is always the last one, and every launched job gets a `JOB_ENDED` before it. */
export type JobProcessReport =
  /** `rssMb`: the warm process's RSS (MB), when its host knows it. */
  | { type: 'PROCESS_PREWARMED'; procId: string; pid: number; rssMb?: number }
  | { type: 'JOB_STARTED'; procId: string; pid: number; jobId: string }
  | {
      type: 'JOB_ENDED';
      procId: string;
      pid: number | undefined;
      jobId: string;
      outcome: JobOutcome;
      reason: string;
      ending: JobEnding;
      /** The process went back to `idle` for another job (reuse); otherwise it is exiting. */
      processKept: boolean;
    }
  | {
      type: 'PROCESS_EXITED';
      procId: string;
      pid: number | undefined;
      /** Why it ended: `job finished`, `prewarm failed: …`, `crashed (code 1)`, `memory limit`, … */
      reason: string;
      /** True when the process ended abnormally (crash, timeout, kill) rather than after its job. */
      failed: boolean;
    };

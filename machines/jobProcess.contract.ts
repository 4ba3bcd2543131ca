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
}

/** Worker → jobProcess. */
export type JobProcessCommand =
  /** Run this job (only meaningful in `idle`; the worker only sends it to idle processes). */
  | { type: 'LAUNCH'; job: RunningJobInfo }
  /** End the job gracefully (server termination, drain deadline, worker stop) with this reason. */
  | { type: 'SHUTDOWN_REQUESTED'; reason: string }
  /** Stop at once (second signal, forced stop). */
  | { type: 'KILL_REQUESTED'; reason: string };

/** jobProcess → worker. `PROCESS_EXITED` is always the last one, and every launched job gets a `JOB_ENDED` before it. */
export type JobProcessReport =
  | { type: 'PROCESS_PREWARMED'; procId: string; pid: number }
  | { type: 'JOB_STARTED'; procId: string; pid: number; jobId: string }
  | {
      type: 'JOB_ENDED';
      procId: string;
      pid: number | undefined;
      jobId: string;
      outcome: JobOutcome;
      reason: string;
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

/**
 * The contract between a jobProcess chart and its `processHost` actor (`src/job-host`), which forks
 * the OS process, relays what the child says and does as events, and carries out the chart's
 * commands. The host decides nothing: every deadline and every end is the chart's.
 */
import type { JobOutcome, RunningJobInfo } from './jobProcess.contract.ts';

/** What the process host observed (host → chart). */
export type ProcessHostEvent =
  | { type: 'PROCESS_SPAWNED'; pid: number }
  /** `rssMb`: the warm process's RSS (MB), when the child said it. */
  | { type: 'PREWARM_SUCCEEDED'; rssMb?: number }
  | { type: 'PREWARM_FAILED'; error: string }
  /** The child confirmed the launched job is running (its entrypoint is being called). */
  | { type: 'JOB_RUNNING' }
  /**
   * The child finished the job: callbacks ran and the room was left. `clean`: every callback
   * finished in its budget without throwing and the room was left in time; `rssGrowthMb`: how
   * much the process's RSS grew since it got warm (the facts process reuse is decided on; when
   * they are not known, the process is not reused).
   */
  | {
      type: 'JOB_RETURNED';
      outcome: JobOutcome;
      reason: string;
      clean?: boolean;
      rssGrowthMb?: number;
    }
  /** The OS process is gone, for whatever reason. */
  | { type: 'CHILD_EXITED'; code: number | null; signal: string | null }
  | { type: 'MEMORY_EXCEEDED'; rssMb: number; limitMb: number }
  | { type: 'PING_TIMED_OUT'; silentMs: number }
  /**
   * The answer to `SILENCE_MEASURE_REQUESTED`: how long since the child's last pong, and since the job
   * was launched (a child silent for longer than its job has been launched stopped answering
   * before it could say the job started).
   */
  | { type: 'SILENCE_MEASURED'; silentMs: number; sinceLaunchMs: number };

/** What the chart asks the host to do (chart → host). */
export type ProcessHostCommand =
  | { type: 'JOB_LAUNCH_REQUESTED'; job: RunningJobInfo }
  | { type: 'JOB_SHUTDOWN_REQUESTED'; reason: string }
  /** How long has the child been silent? Answered at once with `SILENCE_MEASURED`. */
  | { type: 'SILENCE_MEASURE_REQUESTED' }
  /**
   * The polite stop, after the job had its chance to end: the process is told to exit over IPC
   * (it ignores SIGTERM, which is meant for its worker); SIGKILL if it cannot be told. `reason`
   * is the end the chart chose; with `captureStack`, the host first reads what the process's
   * JavaScript was doing, and logs it with the reason (bounded: TERMINATE_TIMEOUT still holds).
   */
  | { type: 'EXIT_REQUESTED'; reason: string; captureStack: boolean }
  /** SIGKILL. */
  | { type: 'SIGKILL_REQUESTED' };

export interface ProcessHostInput {
  procId: string;
}

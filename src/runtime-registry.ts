/**
 * The hand-off between a user's agent module and the job runtime. The same file runs as the
 * worker and inside every job process; in a job process `cli.runApp(opts)` and
 * `new Worker(opts).run()` must not start a worker but give their options to the runtime.
 * They ask `isJobProcess()` and call `registerAgentOptions(opts)`.
 *
 * The options are kept on a `globalThis` symbol so that two copies of this module (the user's
 * `agentstate` import and the runtime's own, loaded from different paths) still agree.
 *
 * It sits at the top of `src/`, outside `job-process/`, because both processes import it
 * (docs/architecture.md §4).
 */
import type { WorkerOptions } from './options/worker-options.ts';

/** Set to `1` in the environment of every job process the pool starts. */
export const JOB_PROCESS_ENV = 'AGENTSTATE_JOB_PROCESS';

const SLOT = Symbol.for('agentstate.jobRuntime.agentOptions');

type Slot = { [SLOT]?: WorkerOptions };

/** True inside a job process: `cli.runApp` / `Worker.run` must hand their options over instead of starting. */
export function isJobProcess(): boolean {
  return process.env[JOB_PROCESS_ENV] === '1';
}

/** Gives the agent's options to the job runtime (called by `cli.runApp` / `Worker.run` in a job process). */
export function registerAgentOptions(opts: WorkerOptions): void {
  (globalThis as Slot)[SLOT] = opts;
}

/** The options registered by the agent module, if it registered any. */
export function registeredAgentOptions(): WorkerOptions | undefined {
  return (globalThis as Slot)[SLOT];
}

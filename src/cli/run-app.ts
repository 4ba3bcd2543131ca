/**
 * `cli.runApp(opts)`: the one call at the bottom of an agent file. Run as a script
 * (`node agent.js start|dev …`) it starts the command line; imported by the `agent` bin it
 * hands its options to the bin; inside a job process it hands them to the job runtime.
 */
import { isJobProcess, registerAgentOptions } from '../job/runtime-registry.ts';
import type { WorkerOptions } from '../options.ts';
import { captureRunAppOptions } from './load-agent.ts';
import { runProgram } from './program.ts';

export function runApp(opts: WorkerOptions): void {
  if (isJobProcess()) {
    registerAgentOptions(opts);
    return;
  }
  if (captureRunAppOptions(opts)) return;
  runProgram(process.argv, { options: opts }).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}

/** The CLI namespace (`cli.runApp`), as in LiveKit's frameworks. */
export const cli = { runApp } as const;

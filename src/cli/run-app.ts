/**
 * `cli.runApp(opts)`: the one call at the bottom of an agent file. Run as a script
 * (`node agent.js start|dev …`) it starts the command line; imported by the `agent` bin it
 * hands its options to the bin; inside a job process it hands them to the job runtime; imported
 * by anything else (a test, another module) it does nothing, like Python's
 * `if __name__ == "__main__"`.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isJobProcess, registerAgentOptions } from '../runtime-registry.ts';
import type { WorkerOptions } from '../options/worker-options.ts';
import { captureRunAppOptions } from '../agent-file/load.ts';

export function runApp(opts: WorkerOptions): void {
  if (isJobProcess()) {
    registerAgentOptions(opts);
    return;
  }
  if (captureRunAppOptions(opts)) return;
  if (!calledFromMainScript()) return;
  // Loaded only now: an agent file imported anywhere else (a job process, a test) does not pay
  // for the command line and everything it starts.
  import('./program.ts')
    .then(({ runProgram }) => runProgram(process.argv, { options: opts }))
    .then(
      (code) => process.exit(code),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
}

/** Whether the module calling `runApp` is the script node was started with. */
function calledFromMainScript(): boolean {
  const main = process.argv[1];
  if (!main) return false;
  // Frames: Error, calledFromMainScript, runApp, the caller.
  const frame = new Error().stack?.split('\n')[3] ?? '';
  const match = /\(?((?:file:\/\/)?\/[^()]+?):\d+:\d+\)?\s*$/.exec(frame);
  if (!match?.[1]) return false;
  return samePath(match[1], main);
}

function samePath(a: string, b: string): boolean {
  const real = (p: string) => {
    const path = p.startsWith('file:') ? fileURLToPath(p) : p;
    try {
      return realpathSync(path);
    } catch {
      return path;
    }
  };
  return real(a) === real(b);
}

/** The CLI namespace (`cli.runApp`), as in LiveKit's frameworks. */
export const cli = { runApp } as const;

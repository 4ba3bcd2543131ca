/**
 * Every job process this process started whose exit it has not seen yet, process-wide. The
 * worker chart waits for its own processes' exits before it stops; this is the command line's
 * last check before it exits, whatever ended it (a drain, a forced stop, or a fatal error that
 * left processes behind): a survivor is killed, and the exit waits for it (`reapJobProcesses`).
 */
import type { ChildProcess } from 'node:child_process';

const live = new Map<ChildProcess, Promise<void>>();

/** Follows `child` until it exits (its `exit` event: the process is reaped). */
export function trackJobProcess(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  live.set(
    child,
    new Promise<void>((done) => {
      child.once('exit', () => {
        live.delete(child);
        done();
      });
    }),
  );
}

/**
 * SIGKILLs every job process still running and waits up to `timeoutMs` for their exits.
 * Resolves with the pids of those killed here (normally none) and of those still not exited.
 */
export async function reapJobProcesses(
  timeoutMs: number,
): Promise<{ killed: number[]; survivors: number[] }> {
  const entries = [...live];
  const killed = entries.map(([child]) => child.pid ?? -1);
  if (entries.length === 0) return { killed, survivors: [] };
  for (const [child] of entries) child.kill('SIGKILL');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(entries.map(([, exited]) => exited)),
    new Promise<void>((done) => {
      timer = setTimeout(done, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  return { killed, survivors: [...live.keys()].map((c) => c.pid ?? -1) };
}

/**
 * The stop signals as process managers, terminals and developers send them: SIGTERM (an
 * orchestrator, systemd, `docker stop`, `timeout`), SIGINT (Ctrl-C) and SIGHUP (the terminal
 * closed, or a supervisor's hang-up). The first of any of them drains: no new job, running jobs
 * go on until they end or `drainTimeout` passes. A second one stops at once. SIGHUP drains too
 * rather than reloading or killing: a closed terminal must not end running calls. Job processes
 * ignore all three (src/job-process/job-entry.ts), so a signal sent to the whole process group
 * or unit reaches the worker's decision only. Shared by a `Worker` running alone and a
 * `WorkerGroup`.
 */
import type { Logger } from '../log/logger.ts';

export interface StopSignalHandlers {
  drain(reason: string): void;
  stop(reason: string): void;
}

/** The signals that drain (first) or stop (second). */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/** Listens until the returned remover is called. */
export function onStopSignals(log: Logger, handlers: StopSignalHandlers): () => void {
  let received = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    received += 1;
    if (received === 1) {
      log.info(`${signal} received: draining (send it again to stop at once)`);
      handlers.drain(signal);
    } else {
      log.warn(`${signal} received again: stopping now`);
      handlers.stop(`second ${signal}`);
    }
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  return () => {
    for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
  };
}

/**
 * SIGTERM/SIGINT as an orchestrator and a developer use them: the first drains, the second stops
 * at once. Shared by a `Worker` running alone and a `WorkerGroup`.
 */
import type { Logger } from '../log/logger.ts';

export interface StopSignalHandlers {
  drain(reason: string): void;
  stop(reason: string): void;
}

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
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}

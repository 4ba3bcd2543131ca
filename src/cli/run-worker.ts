/**
 * What `start`, `dev` and `connect` do once the flags are parsed: run a `Worker` with the
 * command's defaults and, around it, the health server (`start`, or `--port`), hot reload
 * (`dev`) or the one simulated job (`connect`). Everything started here is stopped here, on
 * every path, before the returned promise settles.
 */
import { startHealthServer, type HealthServer } from '../http/server.ts';
import { registerSecret, type Logger } from '../log.ts';
import type { WorkerOptions } from '../options.ts';
import { Worker, type WorkerRunConfig } from '../worker/worker.ts';
import { connectToRoom } from './connect.ts';
import { startHotReload } from './hot-reload.ts';

export type WorkerCommand = 'start' | 'dev' | 'connect';

export interface RunWorkerInput {
  command: WorkerCommand;
  options: WorkerOptions;
  /** The agent file (bin) or the main script (`runApp`), for hot reload. */
  agentFile: string | undefined;
  config: WorkerRunConfig;
  log: Logger;
  /** Serve health/metrics: `start` always; others only when `--port` is given. */
  health: boolean;
  /** `dev`: replace idle processes when files change. */
  watch: boolean;
  /** `connect`: the room to run one job in. */
  room?: { name: string; participantIdentity: string | undefined };
  /** Called with the running worker (e.g. to attach the inspector). Returns a stopper. */
  attach?: (worker: Worker) => (() => void | Promise<void>) | void;
}

/** Resolves with the exit code once the worker has stopped and everything around it is closed. */
export async function runWorker(input: RunWorkerInput): Promise<number> {
  const log = input.log.child({
    agentName: input.options.agentName,
    workerId: () => worker.id,
  });
  const worker = new Worker(input.options, { ...input.config, logger: log });
  // Handled at once: the worker may fail (refused credentials) while the rest still starts.
  const running = worker.run().then(
    () => ({ ok: true as const }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  // run() resolves the options synchronously; a failure (missing credentials) rejects at once.
  if (!worker.actor) return settledCode(await running);
  registerSecret(worker.resolvedOptions?.apiSecret);

  const stoppers: (() => void | Promise<void>)[] = [];
  let connectResult: Promise<{ outcome: 'success' | 'failed' }> | undefined;
  try {
    if (input.health) {
      const server: HealthServer = await startHealthServer(worker, { logger: log });
      stoppers.push(() => server.close());
    }
    if (input.watch && input.agentFile) {
      stoppers.push(startHotReload(worker, input.agentFile, log));
    }
    if (input.room) {
      const c = connectToRoom(worker, input.room.name, input.room.participantIdentity, log);
      connectResult = c.result;
      stoppers.push(c.cancel);
    }
    const stop = input.attach?.(worker);
    if (stop) stoppers.push(stop);
  } catch (err) {
    // E.g. the health port is taken: nothing may keep running behind the error.
    await worker.stop('startup failed');
    await closeAll(stoppers, log);
    throw err;
  }

  const settled = await running;
  await closeAll(stoppers, log);
  const code = settledCode(settled);
  if (connectResult) return (await connectResult).outcome === 'success' ? code : 1;
  return code;
}

function settledCode(r: { ok: true } | { ok: false; error: unknown }): number {
  if (!r.ok) throw r.error;
  return 0;
}

async function closeAll(stoppers: (() => void | Promise<void>)[], log: Logger): Promise<void> {
  for (const stop of stoppers.splice(0).reverse()) {
    try {
      await stop();
    } catch (err) {
      log.warn('cleanup failed', { error: err });
    }
  }
}

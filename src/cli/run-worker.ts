/**
 * What `start`, `dev` and `connect` do once the flags are parsed: run a `Worker` with the
 * command's defaults and, around it, the health server (`start`, or `--port`), hot reload
 * (`dev`) or the one simulated job (`connect`). Everything started here is stopped here, on
 * every path, before the returned promise settles.
 */
import { bindHealthServer } from '../http/server.ts';
import type { Logger } from '../log/logger.ts';
import type { WorkerOptions } from '../options/worker-options.ts';
import { Worker, type WorkerRunConfig } from '../worker/worker.ts';
import { connectToRoom, type ConnectResult } from './connect.ts';
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

export type Stopper = () => void | Promise<void>;

/** Resolves with the exit code once the worker has stopped and everything around it is closed. */
export async function runWorker(input: RunWorkerInput): Promise<number> {
  // The worker resolves its options once, at construction: bad options or missing credentials
  // fail here, before anything starts.
  const worker = new Worker(input.options, { ...input.config, logger: input.log });
  const resolved = worker.resolvedOptions;
  const log = worker.logger;

  const stoppers: Stopper[] = [];
  // Bound before the worker starts: a taken port fails fast, before any connection or process.
  const health = input.health
    ? await bindHealthServer({ host: resolved.host, port: resolved.port, logger: log })
    : undefined;
  if (health) stoppers.push(() => health.close());

  // Handled at once: the worker may fail (refused credentials) while the rest still starts.
  const running = worker.run().then(
    () => ({ ok: true as const }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  let connectResult: Promise<ConnectResult> | undefined;
  try {
    health?.serve(worker);
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
    // Nothing may keep running behind the error.
    await worker.stop('startup failed');
    await closeAll(stoppers, log);
    throw err;
  }

  const settled = await running;
  await closeAll(stoppers, log);
  if (!settled.ok) throw settled.error;
  if (connectResult) return (await connectResult).outcome === 'success' ? 0 : 1;
  return 0;
}

/** Runs every stopper, newest first; a failing one is logged and the rest still run. */
export async function closeAll(stoppers: Stopper[], log: Logger): Promise<void> {
  for (const stop of stoppers.splice(0).reverse()) {
    try {
      await stop();
    } catch (err) {
      log.warn('cleanup failed', { error: err });
    }
  }
}

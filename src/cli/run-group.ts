/**
 * `agent start a.ts b.ts` (and `dev`): one worker process serving several agents, as a
 * `WorkerGroup`, with one health server for all of them (`start`, or `--port`) and, in `dev`,
 * hot reload of each agent's idle processes when its files change. Everything started here is
 * stopped here, on every path, before the returned promise settles.
 */
import { bindHealthServer } from '../http/server.ts';
import { WorkerGroup, type WorkerGroupRunConfig } from '../group/worker-group.ts';
import type { WorkerGroupOptionsInit } from '../group/group-options.ts';
import type { Logger } from '../log/logger.ts';
import type { WorkerOptions } from '../options/worker-options.ts';
import { startHotReload } from './hot-reload.ts';
import { closeAll, type Stopper } from './run-worker.ts';

export interface RunGroupInput {
  /** Each agent with the file it came from (its job processes import that file). */
  agents: readonly { options: WorkerOptions; file: string }[];
  group: WorkerGroupOptionsInit;
  config: WorkerGroupRunConfig;
  log: Logger;
  health: boolean;
  watch: boolean;
}

/** Resolves with the exit code once every agent has stopped and everything around is closed. */
export async function runGroup(input: RunGroupInput): Promise<number> {
  const group = new WorkerGroup(
    input.agents.map((a) => a.options),
    input.group,
    { ...input.config, logger: input.log },
  );
  // Every agent checked (credentials, values, duplicates) before any port is bound.
  group.validate();
  const stoppers: Stopper[] = [];
  // Bound before any agent connects: a taken port fails fast.
  const health = input.health
    ? await bindHealthServer({
        host: group.options.host,
        port: group.options.port,
        logger: input.log,
      })
    : undefined;
  if (health) stoppers.push(() => health.close());
  // `run()` resolves and checks every agent (credentials, duplicates) before any connects.
  const running = group.run().then(
    () => ({ ok: true as const }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  try {
    health?.serve(group);
    if (input.watch) {
      input.agents.forEach((a, i) => {
        const worker = group.workers[i];
        if (worker) stoppers.push(startHotReload(worker, a.file, input.log));
      });
    }
  } catch (err) {
    await group.stop('startup failed');
    await closeAll(stoppers, input.log);
    // A group that failed its checks never started its workers: that failure is the one to tell.
    const s = await running;
    throw s.ok ? err : s.error;
  }
  const settled = await running;
  await closeAll(stoppers, input.log);
  if (!settled.ok) throw settled.error;
  return 0;
}

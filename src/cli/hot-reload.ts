/**
 * `agent dev` hot reload: when the agent's files change, idle job processes are replaced with
 * fresh ones, which import the agent module anew (each job process is a new Node process, so
 * there is no module cache to bust). Running jobs finish on the code they started with; the
 * worker's server connection, and so its worker id, stay as they are. Nothing is re-dispatched,
 * so no room is joined twice.
 */
import { errorMessage } from '../errors.ts';
import { dirname } from 'node:path';
import { agentModuleFor } from '../agent-file/load.ts';
import type { Logger } from '../log/logger.ts';
import type { Worker } from '../worker/worker.ts';
import { watchFiles } from './watch-files.ts';

export interface HotReloadOptions {
  /** Directory to watch. Default: the agent file's directory. */
  dir?: string;
  debounceMs?: number;
}

/** Starts watching; returns the stopper. */
export function startHotReload(
  worker: Worker,
  agentFile: string,
  log: Logger,
  options: HotReloadOptions = {},
): () => void {
  const dir = options.dir ?? dirname(agentFile);
  log.info('watching for changes', { dir });
  return watchFiles(
    dir,
    (files) => {
      const running = worker.activeJobs.length;
      log.info('files changed: replacing idle processes', {
        files: files.slice(0, 10),
        ...(running > 0 ? { runningJobsKeepOldCode: running } : {}),
      });
      // A TypeScript agent is compiled again first (in place); a build error keeps the old code.
      agentModuleFor(agentFile).then(
        () => worker.recycleIdleProcesses('files changed'),
        (err: unknown) =>
          log.error('agent file does not compile: idle processes keep the previous code', {
            error: errorMessage(err),
          }),
      );
    },
    {
      debounceMs: options.debounceMs,
      onError: (err) => log.warn('file watcher error', { error: err }),
    },
  );
}

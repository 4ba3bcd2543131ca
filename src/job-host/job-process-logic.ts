/** How the worker gets a runnable jobProcess: the pure chart provided with the real process host. */
import { pathToFileURL } from 'node:url';
import { jobProcessMachine } from '../../machines/jobProcess.machine.ts';
import type { Logger } from '../log/logger.ts';
import type { ResolvedWorkerOptions } from '../options/resolve.ts';
import { createProcessHost, type ProcessHostConfig } from './process-host.ts';

export type JobProcessOptions = Pick<
  ResolvedWorkerOptions,
  | 'agentModule'
  | 'jobMemoryWarnMb'
  | 'jobMemoryLimitMb'
  | 'initializeProcessTimeout'
  | 'shutdownProcessTimeout'
>;

/** As `JobProcessOptions`, but the module may be known only once compiled (read at each spawn). */
type JobProcessLogicOptions = Omit<JobProcessOptions, 'agentModule'> & {
  agentModule: string | (() => string);
};

/** Host tuning the options do not expose (tests shorten these). */
export type ProcessHostTuning = Partial<
  Pick<
    ProcessHostConfig,
    'pingInterval' | 'pingTimeout' | 'memorySampleInterval' | 'execArgv' | 'env' | 'clock'
  >
>;

/**
 * The jobProcess chart with its real host, provided as the worker chart's `jobProcess` actor
 * (the worker chart spawns it with the input of `JobProcessMachineInput`).
 */
export function createJobProcessLogic(
  opts: JobProcessLogicOptions,
  logger: Logger,
  tuning: ProcessHostTuning = {},
) {
  return jobProcessMachine.provide({
    actors: {
      processHost: createProcessHost({
        // Read at each spawn: a TypeScript module is known only once compiled. Resolved options
        // always name the module (a path or a `file:` URL); the host wants a URL.
        agentModule: () =>
          toFileUrl(typeof opts.agentModule === 'function' ? opts.agentModule() : opts.agentModule),
        logger,
        // Each callback gets most of the shutdown budget, so the job reports before the kill.
        shutdownCallbackTimeout: Math.floor(opts.shutdownProcessTimeout * 0.8),
        memoryWarnMb: opts.jobMemoryWarnMb,
        memoryLimitMb: opts.jobMemoryLimitMb,
        ...tuning,
      }),
    },
  });
}

function toFileUrl(agentModule: string): string {
  return agentModule.startsWith('file:') ? agentModule : pathToFileURL(agentModule).href;
}

/** How the worker gets a runnable jobProcess: the pure chart provided with the real process host. */
import { pathToFileURL } from 'node:url';
import { jobProcessMachine } from '../../machines/jobProcess.machine.ts';
import type { Logger } from '../log.ts';
import type { ResolvedWorkerOptions } from '../options.ts';
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
  agentModule: string | undefined | (() => string);
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
        agentModule: () =>
          agentModulePath(
            typeof opts.agentModule === 'function' ? opts.agentModule() : opts.agentModule,
          ),
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

/** The agent module as a `file:` URL; defaults to the script the worker was started with. */
function agentModulePath(agentModule: string | undefined): string {
  const m = agentModule ?? process.argv[1];
  if (!m) throw new Error('agentModule is not set and there is no main script to default to');
  return m.startsWith('file:') ? m : pathToFileURL(m).href;
}

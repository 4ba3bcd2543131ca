/**
 * How the worker gets a runnable jobProcess: the pure chart provided with the real process host,
 * and the chart's input derived from the resolved options.
 */
import { pathToFileURL } from 'node:url';
import type { JobProcessInput } from '../../machines/jobProcess.contract.ts';
import {
  jobProcessMachine,
  type JobProcessMachineInput,
} from '../../machines/jobProcess.machine.ts';
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
    'pingInterval' | 'pingTimeout' | 'memorySampleInterval' | 'execArgv' | 'env'
  >
>;

/**
 * The jobProcess chart with its real host. Register it in the worker's `setup({ actors: {
 * jobProcess: createJobProcessLogic(opts, logger) } })` and spawn it with
 * `spawnChild('jobProcess', { id, systemId: id, input: jobProcessInput(opts, { procId: id, job }) })`.
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

/** The chart's input: the contract's `{ procId, job? }` plus the deadlines from the options. */
export function jobProcessInput(
  opts: JobProcessOptions,
  base: JobProcessInput,
): JobProcessMachineInput {
  return {
    ...base,
    initializeTimeout: opts.initializeProcessTimeout,
    shutdownTimeout: opts.shutdownProcessTimeout,
  };
}

/** The agent module as a `file:` URL; defaults to the script the worker was started with. */
function agentModulePath(agentModule: string | undefined): string {
  const m = agentModule ?? process.argv[1];
  if (!m) throw new Error('agentModule is not set and there is no main script to default to');
  return m.startsWith('file:') ? m : pathToFileURL(m).href;
}

/** How the worker gets a runnable jobProcess: the pure chart provided with the real process host. */
import { jobProcessMachine } from '../../machines/jobProcess.machine.ts';
import { shutdownCallbackBudget } from '../../machines/jobProcess.contract.ts';
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
  | 'eventLoopStallThreshold'
>;

/** As `JobProcessOptions`, but the module may be known only once compiled (read at each spawn). */
type JobProcessLogicOptions = Omit<JobProcessOptions, 'agentModule'> & {
  agentModule: URL | (() => URL);
};

/** Host tuning the options do not expose (tests shorten these). */
export type ProcessHostTuning = Partial<
  Pick<
    ProcessHostConfig,
    | 'pingInterval'
    | 'pingTimeout'
    | 'memorySampleInterval'
    | 'execArgv'
    | 'env'
    | 'clock'
    | 'onCheckpoint'
    | 'traceCarrier'
    | 'onSpans'
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
        // Read at each spawn: a TypeScript module is known only once compiled.
        agentModule: () =>
          typeof opts.agentModule === 'function' ? opts.agentModule() : opts.agentModule,
        logger,
        shutdownCallbackTimeout: shutdownCallbackBudget(opts.shutdownProcessTimeout),
        memoryWarnMb: opts.jobMemoryWarnMb,
        memoryLimitMb: opts.jobMemoryLimitMb,
        loopStallThresholdMs: opts.eventLoopStallThreshold,
        ...tuning,
      }),
    },
  });
}

/**
 * The worker chart wired to its real effects: the server link, the load sampler, request
 * decisions and job processes. Loaded only in the worker process (src/worker/worker.ts imports it
 * lazily), so a job process, which imports the same agent file and so `agentstate`, never loads
 * xstate's charts, the WebSocket client or the process pool.
 */
import { createActor, type Actor } from 'xstate';
import { jobRequestMachine } from '../../machines/jobRequest.machine.ts';
import { workerMachine } from '../../machines/worker.machine.ts';
import { createLoadSampler } from '../load/load-sampler.ts';
import type { LogFields, Logger } from '../log/logger.ts';
import type { WorkerEmitted } from '../../machines/worker.contract.ts';
import type { ForwardedSpans, TraceCarrier } from '../../machines/jobIpc.contract.ts';
import type { ResolvedWorkerOptions } from '../options/resolve.ts';
import type { WorkerLoadView } from '../options/worker-options.ts';
import { createJobProcessLogic } from '../job-host/job-process-logic.ts';
import { proxyEnvForJobs } from '../options/proxy.ts';
import { createServerLink } from '../protocol/server-link.ts';
import { VERSION } from '../version.ts';
import { chartOptionsFrom } from '../options/chart-options.ts';
import { createDecideRequest } from './decide-request.ts';
import type { Recoverer } from '../recovery/recoverer.ts';
import { emittedLogger } from './emitted-log.ts';
import { rehearseJobs, type RehearsalReport } from './rehearsal.ts';
import type { WorkerRunConfig } from './run-config.ts';

export interface WorkerActorInput {
  resolved: ResolvedWorkerOptions;
  config: WorkerRunConfig;
  log: Logger;
  /** What `loadFnc` is given (and, in a `WorkerGroup`, whose shared sample it gets). */
  view: WorkerLoadView;
  /** The module job processes import, read at each spawn (a TypeScript agent is compiled first). */
  agentModule: () => URL;
  /** Job recovery, when on: its offer lookup and where checkpoints go. */
  recovery?: Recoverer;
  /** Told every record of the chart before it is logged (the job traces). */
  onRecord?: (ev: WorkerEmitted) => void;
  /** A job's trace context, sent with its launch (tracing on). */
  traceCarrier?: (jobId: string) => TraceCarrier | undefined;
  /** The spans job processes forward, for the worker's exporter. */
  onSpans?: (m: ForwardedSpans) => void;
  /** Extra fields of the records about a job (its trace and span id). */
  jobLogFields?: (jobId: string) => LogFields;
}

/** The worker chart provided with its effects, as an actor (not started), its events logged. */
export function createWorkerActor({
  resolved,
  config,
  log,
  view,
  agentModule,
  recovery,
  onRecord,
  traceCarrier,
  onSpans,
  jobLogFields,
}: WorkerActorInput): Actor<typeof workerMachine> {
  const membership = config.membership;
  const machine = workerMachine.provide({
    actors: {
      serverLink: createServerLink({
        ...config.serverLink,
        apiKey: resolved.apiKey,
        apiSecret: resolved.apiSecret,
        logger: log,
        proxy: resolved.proxy,
        ...(config.clock ? { clock: config.clock } : {}),
        registration: {
          workerType: resolved.workerType,
          agentName: resolved.agentName,
          version: VERSION,
          permissions: resolved.permissions,
          deployment: resolved.deployment,
        },
      }),
      loadSampler: (membership?.loadSampler(view, resolved, log) ??
        createLoadSampler({
          loadFnc: resolved.loadFnc,
          view,
          logger: log,
          ...(config.clock ? { clock: config.clock } : {}),
        })) as ReturnType<typeof createLoadSampler>,
      jobRequest: jobRequestMachine.provide({
        actors: {
          decideRequest: createDecideRequest(
            resolved.requestFnc,
            recovery ? (job) => recovery.lookup(job) : undefined,
          ),
        },
      }),
      jobProcess: (config.jobProcessLogic ??
        createJobProcessLogic({ ...resolved, agentModule }, log, {
          env: { ...proxyEnvForJobs(resolved.httpProxy), ...membership?.jobEnv },
          ...(config.clock ? { clock: config.clock } : {}),
          ...(recovery
            ? { onCheckpoint: (jobId, value) => recovery.onCheckpoint(jobId, value) }
            : {}),
          ...(traceCarrier ? { traceCarrier } : {}),
          ...(onSpans ? { onSpans } : {}),
        })) as ReturnType<typeof createJobProcessLogic>,
    },
    // A group's process-wide limits, checked by the chart beside the agent's own.
    ...(membership
      ? { guards: { groupAllowsJob: (args) => membership.groupAllowsJob(args) } }
      : {}),
  });
  const actor = createActor(machine, {
    input: {
      options: {
        ...chartOptionsFrom(resolved, config.clock ? { clock: config.clock } : {}),
        ...config.chartTuning,
      },
      serverUrl: resolved.wsUrl,
    },
    ...(config.inspect ? { inspect: config.inspect } : {}),
    ...(config.clock ? { clock: config.clock } : {}),
  });
  if (onRecord) actor.on('*', onRecord);
  actor.on(
    '*',
    emittedLogger(log, () => actor.getSnapshot().context, jobLogFields),
  );
  return actor;
}

/**
 * Rehearses a job's way through the worker (`rehearsal.ts`) with this worker's chart options,
 * beside the running chart; ends early when `signal` aborts.
 */
export function rehearseJobPath(
  resolved: ResolvedWorkerOptions,
  config: WorkerRunConfig,
  signal: AbortSignal,
): Promise<RehearsalReport> {
  return rehearseJobs({ ...chartOptionsFrom(resolved), ...config.chartTuning }, { signal });
}

export { createRecoverer } from '../recovery/recoverer.ts';

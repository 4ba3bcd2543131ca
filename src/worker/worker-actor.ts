/**
 * The worker chart wired to its real effects: the server link, the load sampler, request
 * decisions and job processes. Loaded only in the worker process (src/worker/worker.ts imports it
 * lazily), so a job process, which imports the same agent file and so `agentstate`, never loads
 * xstate's charts, the WebSocket client or the process pool.
 */
import { createActor, type Actor } from 'xstate';
import { jobRequestMachine } from '../../machines/jobRequest.machine.ts';
import type { WorkerContext } from '../../machines/worker.context.ts';
import type { WorkerEmitted } from '../../machines/worker.contract.ts';
import { workerMachine } from '../../machines/worker.machine.ts';
import { createLoadSampler } from '../load/load-sampler.ts';
import type { Logger } from '../log.ts';
import type { ResolvedWorkerOptions, WorkerLoadView } from '../options.ts';
import { createJobProcessLogic } from '../pool/job-process-logic.ts';
import { proxyEnvForJobs } from '../protocol/proxy.ts';
import { createServerLink } from '../protocol/server-link.ts';
import { VERSION } from '../version.ts';
import { chartOptionsFrom } from './chart-options.ts';
import { createDecideRequest } from './decide-request.ts';
import type { Worker, WorkerRunConfig } from './worker.ts';

export interface WorkerActorInput {
  resolved: ResolvedWorkerOptions;
  config: WorkerRunConfig;
  log: Logger;
  /** What `loadFnc` is given (and, in a `WorkerGroup`, whose shared sample it gets). */
  view: Worker & WorkerLoadView;
  /** The module job processes import, read at each spawn (a TypeScript agent is compiled first). */
  agentModule: () => string;
}

/** The worker chart provided with its effects, as an actor (not started), its events logged. */
export function createWorkerActor({
  resolved,
  config,
  log,
  view,
  agentModule,
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
        registration: {
          workerType: resolved.workerType,
          agentName: resolved.agentName,
          version: VERSION,
          permissions: resolved.permissions,
          deployment: process.env.LIVEKIT_AGENT_DEPLOYMENT ?? '',
        },
      }),
      loadSampler: (membership?.loadSampler(view, resolved, log) ??
        createLoadSampler({ loadFnc: resolved.loadFnc, view, logger: log })) as ReturnType<
        typeof createLoadSampler
      >,
      jobRequest: jobRequestMachine.provide({
        actors: { decideRequest: createDecideRequest(resolved.requestFnc) },
      }),
      jobProcess: (config.jobProcessLogic ??
        createJobProcessLogic({ ...resolved, agentModule }, log, {
          env: { ...proxyEnvForJobs(resolved.httpProxy), ...membership?.jobEnv },
        })) as ReturnType<typeof createJobProcessLogic>,
    },
    // A group's process-wide limits, checked by the chart's own guards beside the agent's.
    ...(membership ? { guards: membership.guards } : {}),
  });
  const actor = createActor(machine, {
    input: { options: chartOptionsFrom(resolved), serverUrl: resolved.wsUrl },
    ...(config.inspect ? { inspect: config.inspect } : {}),
  });
  // Job records get the job's room and process id. The snapshot is already past the event
  // (a job that just ended is gone from it), so the previous event's view is kept as well.
  let knownJobs = new Map<string, JobLogFields>();
  actor.on('*', (e) => {
    const ev = e as WorkerEmitted;
    const current = jobLogFields(actor.getSnapshot().context);
    const jobId = 'jobId' in ev ? ev.jobId : undefined;
    const jobFields = jobId === undefined ? {} : (current.get(jobId) ?? knownJobs.get(jobId) ?? {});
    knownJobs = current;
    logEmitted(log.child(jobFields), ev);
  });

  return actor;
}

type JobLogFields = { roomName?: string; pid?: number };

function jobLogFields(ctx: WorkerContext): Map<string, JobLogFields> {
  const out = new Map<string, JobLogFields>();
  for (const j of Object.values(ctx.jobs)) {
    out.set(j.jobId, {
      roomName: j.job.room?.name,
      pid: j.procId ? ctx.procs[j.procId]?.pid : undefined,
    });
  }
  return out;
}

function logEmitted(log: Logger, e: WorkerEmitted): void {
  switch (e.type) {
    case 'registered':
      log.info('registered with the server', { serverVersion: e.serverVersion });
      return;
    case 'connectionLost':
      log.warn('server connection lost; will retry', { reason: e.reason });
      return;
    case 'availabilityRequested':
      log.debug('job offered', { jobId: e.jobId, roomName: e.roomName });
      return;
    case 'statusReported':
      log.debug('status reported', { status: e.status, load: e.load, jobCount: e.jobCount });
      return;
    case 'requestAnswered':
      if (e.decision === 'accepted') log.info('job accepted', { jobId: e.jobId });
      else log.info('job declined', { jobId: e.jobId, decision: e.decision, reason: e.reason });
      return;
    case 'jobLaunched':
      log.info('job launched', { jobId: e.jobId, procId: e.procId });
      return;
    case 'jobEnded':
      (e.outcome === 'success' ? log.info : log.warn)('job ended', {
        jobId: e.jobId,
        outcome: e.outcome,
        reason: e.reason,
      });
      return;
    case 'processExited':
      (e.failed ? log.warn : log.debug)('job process exited', {
        procId: e.procId,
        pid: e.pid,
        reason: e.reason,
      });
      return;
    case 'stopped':
      log.info('worker stopped', { reason: e.reason });
      return;
  }
}

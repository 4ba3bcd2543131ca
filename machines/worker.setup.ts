/**
 * The worker chart's implementations (DESIGN §2): its input, events and emitted events, the
 * actors it invokes or spawns (abstract, provided from `src/`), and its named guards, delays and
 * actions. The chart's structure — states and transitions — is in `worker.machine.ts`.
 *
 * The chart has two regions running side by side:
 *
 * - `lifecycle`: `connecting → registered { available ⇄ full } → draining → stopped`, with
 *   `reconnecting` beside `registered` while the server link is down. Jobs keep running in
 *   every state: job processes are spawned children of the machine, not of a state.
 * - `processes`: keeps `numIdleProcesses` prewarmed processes (`warming`), and backs off after
 *   failed prewarms (`backingOff`) instead of respawning in a hot loop.
 *
 * Pure: no I/O. The server link, load sampling, request decisions and processes are actors
 * provided from `src/` with `.provide()`; time comes from the actor system's clock.
 */
import {
  and,
  assign,
  cancel,
  emit,
  enqueueActions,
  fromCallback,
  not,
  or,
  raise,
  sendTo,
  setup,
  stateIn,
  type EventObject,
} from 'xstate';
import type { RunningJobInfo } from '../src/job/running-job.ts';
import type { JobProcessReport } from './jobProcess.contract.ts';
import { jobProcessMachine } from './jobProcess.machine.ts';
import { jobRequestMachine, type JobRequestReport } from './jobRequest.machine.ts';
import type {
  ServerLinkCommand,
  ServerLinkInput,
  ServerLinkReport,
} from './serverLink.contract.ts';
import {
  activeJobCount,
  backoffDelay,
  firstIdleProc,
  hasFreeSlot,
  idleProcCount,
  jobList,
  loadBelowThreshold,
  onDemandStartCount,
  waitingJobCount,
  spareProcCount,
  type JobRecord,
  type ProcRecord,
  type WorkerChartOptions,
  type WorkerContext,
} from './worker.context.ts';

export interface WorkerInput {
  options: WorkerChartOptions;
  serverUrl: string;
}

export type WorkerEvent =
  | ServerLinkReport
  | JobRequestReport
  | JobProcessReport
  | { type: 'LOAD_SAMPLED'; load: number }
  | { type: 'STATUS_TICKED' }
  | { type: 'DRAIN_REQUESTED'; reason: string }
  /** Replace every idle process with a fresh one (dev hot reload); running jobs are untouched. */
  | { type: 'PROCESSES_RECYCLE_REQUESTED'; reason: string }
  /** Ask the server for a job in this room for this worker (`agent connect --room`). */
  | { type: 'JOB_SIMULATION_REQUESTED'; roomName: string; participantIdentity?: string }
  | { type: 'FORCE_STOP_REQUESTED'; reason: string };

/** What the chart tells the outside world (logs, metrics, the `Worker` facade, tests). */
export type WorkerEmitted =
  | { type: 'registered'; workerId: string; serverVersion: string }
  | { type: 'connectionLost'; reason: string }
  | { type: 'statusReported'; status: 'available' | 'full'; load: number; jobCount: number }
  /** An offer arrived; its `requestAnswered` follows (metrics time the answer from here). */
  | { type: 'availabilityRequested'; jobId: string; roomName: string }
  | { type: 'requestAnswered'; jobId: string; accepted: boolean; reason: string }
  | { type: 'jobLaunched'; jobId: string; procId: string }
  | { type: 'jobEnded'; jobId: string; outcome: 'success' | 'failed'; reason: string }
  | {
      type: 'processExited';
      procId: string;
      pid: number | undefined;
      reason: string;
      failed: boolean;
    }
  | { type: 'stopped'; reason: string };

const requestId = (jobId: string): string => `request-${jobId}`;

/** The link command that answers "no" to an availability request. */
const declined = (jobId: string) =>
  ({ type: 'AVAILABILITY_ANSWERED', jobId, acceptArguments: undefined }) as const;

/** The emitted record of a "no" answer. */
const answeredNo = (jobId: string, reason: string) =>
  ({ type: 'requestAnswered', jobId, accepted: false, reason }) as const;

/** The link command that reports a job's status to the server. */
const jobStatus = (jobId: string, outcome: 'running' | 'success' | 'failed', error: string) =>
  ({ type: 'JOB_STATUS_REPORTED', jobId, outcome, error }) as const;

/** The emitted record of a job's end. */
const jobEnded = (jobId: string, outcome: 'success' | 'failed', reason: string) =>
  ({ type: 'jobEnded', jobId, outcome, reason }) as const;

export const workerSetup = setup({
  types: {
    context: {} as WorkerContext,
    input: {} as WorkerInput,
    events: {} as WorkerEvent,
    emitted: {} as WorkerEmitted,
  },
  actors: {
    /** One WebSocket to the server at a time; provided from src/protocol. */
    serverLink: fromCallback<ServerLinkCommand, ServerLinkInput>(() => () => undefined),
    /** Sends `LOAD_SAMPLED` periodically; provided from src/load. */
    loadSampler: fromCallback<EventObject, void>(() => () => undefined),
    jobRequest: jobRequestMachine,
    jobProcess: jobProcessMachine,
  },
  guards: {
    loadBelowThreshold: ({ context }) => loadBelowThreshold(context),
    hasFreeSlot: ({ context }) => hasFreeSlot(context),
    /** An idle process not already promised to a job being decided or awaiting assignment. */
    hasIdleProcess: ({ context }) => idleProcCount(context) > waitingJobCount(context),
    spawningBackedOff: stateIn({ processes: 'backingOff' }),
    belowPrewarmCap: ({ context }) =>
      onDemandStartCount(context) < context.options.maxConcurrentPrewarms,
    isDraining: stateIn({ lifecycle: 'draining' }),
    noActiveJobs: ({ context }) => activeJobCount(context) === 0,
    isAwaitingAssignment: ({ context, event }) =>
      event.type === 'JOB_ASSIGNED' && context.jobs[event.job.id]?.phase === 'accepted',
    isKnownJob: ({ context, event }) =>
      'jobId' in event && typeof event.jobId === 'string' && event.jobId in context.jobs,
    canTakeJob: and([
      'loadBelowThreshold',
      'hasFreeSlot',
      or(['hasIdleProcess', and([not('spawningBackedOff'), 'belowPrewarmCap'])]),
    ]),
    prewarmFailed: ({ context, event }) =>
      event.type === 'PROCESS_EXITED' &&
      event.failed &&
      context.procs[event.procId]?.phase === 'prewarming',
  },
  delays: {
    REGISTER_TIMEOUT: ({ context }) => context.options.registerTimeout,
    RECONNECT_DELAY: ({ context }) =>
      backoffDelay(
        context.connectFailures,
        context.options.reconnectBaseDelay,
        context.options.reconnectMaxDelay,
        context.options.random,
      ),
    STATUS_INTERVAL: ({ context }) => context.options.statusInterval,
    DRAIN_TIMEOUT: ({ context }) => context.options.drainTimeout,
    // The processes enforce their own SIGTERM → SIGKILL deadline; this is the backstop.
    SHUTDOWN_GRACE: ({ context }) => context.options.shutdownProcessTimeout + 5_000,
    SPAWN_RETRY_DELAY: ({ context }) =>
      backoffDelay(
        context.prewarmFailures,
        context.options.spawnBaseDelay,
        context.options.spawnMaxDelay,
        context.options.random,
      ),
  },
  actions: {
    connectLink: sendTo('link', { type: 'CONNECT_REQUESTED' }),
    disconnectLink: sendTo('link', { type: 'DISCONNECT_REQUESTED' }),
    recordRegistration: enqueueActions(({ enqueue, event }) => {
      if (event.type !== 'REGISTERED') return;
      enqueue.assign({ workerId: event.workerId, connectFailures: 0, lastError: undefined });
      enqueue.emit({
        type: 'registered',
        workerId: event.workerId,
        serverVersion: event.serverVersion,
      });
    }),
    recordConnectFailure: enqueueActions(
      ({ enqueue, event, context }, params?: { reason: string }) => {
        const reason = params?.reason ?? ('reason' in event ? String(event.reason) : 'unknown');
        enqueue.assign({ connectFailures: context.connectFailures + 1, lastError: reason });
        enqueue.emit({ type: 'connectionLost', reason });
      },
    ),
    recordStopReason: assign({
      stopReason: ({ event, context }) =>
        context.stopReason ?? ('reason' in event ? String(event.reason) : event.type),
    }),
    recordRefusal: assign({
      refusal: ({ event, context }) =>
        event.type === 'SERVER_REFUSED' ? event.reason : context.refusal,
    }),
    recordLoad: assign({
      load: ({ event, context }) => (event.type === 'LOAD_SAMPLED' ? event.load : context.load),
    }),
    scheduleStatusTick: raise(
      { type: 'STATUS_TICKED' },
      { delay: 'STATUS_INTERVAL', id: 'statusTick' },
    ),
    cancelStatusTick: cancel('statusTick'),
    reportStatus: enqueueActions(
      ({ enqueue, context }, params: { status: 'available' | 'full' }) => {
        const report = {
          status: params.status,
          load: context.load,
          jobCount: activeJobCount(context),
        };
        enqueue.sendTo('link', { type: 'WORKER_STATUS_REPORTED', ...report });
        enqueue.emit({ type: 'statusReported', ...report });
      },
    ),
    /** Takes a slot for the offered job before deciding, so concurrent offers can't overbook. */
    reserveSlotAndDecide: enqueueActions(({ enqueue, context, event }) => {
      if (event.type !== 'AVAILABILITY_REQUESTED') return;
      const job = event.job;
      enqueue.emit({
        type: 'availabilityRequested',
        jobId: job.id,
        roomName: job.room?.name ?? '',
      });
      const record: JobRecord = {
        jobId: job.id,
        job,
        phase: 'deciding',
        acceptArguments: undefined,
        procId: undefined,
      };
      enqueue.assign({ jobs: { ...context.jobs, [job.id]: record } });
      enqueue.spawnChild('jobRequest', {
        id: requestId(job.id),
        input: {
          job,
          requestTimeout: context.options.requestTimeout,
          assignmentTimeout: context.options.assignmentTimeout,
        },
      });
    }),
    declineOffer: enqueueActions(({ enqueue, event }, params: { reason: string }) => {
      if (event.type !== 'AVAILABILITY_REQUESTED') return;
      enqueue.emit({
        type: 'availabilityRequested',
        jobId: event.job.id,
        roomName: event.job.room?.name ?? '',
      });
      enqueue.sendTo('link', declined(event.job.id));
      enqueue.emit(answeredNo(event.job.id, params.reason));
    }),
    answerAccepted: enqueueActions(({ enqueue, context, event }) => {
      if (event.type !== 'REQUEST_ACCEPTED') return;
      const record = context.jobs[event.jobId];
      if (!record) return;
      enqueue.assign({
        jobs: {
          ...context.jobs,
          [event.jobId]: { ...record, phase: 'accepted', acceptArguments: event.acceptArguments },
        },
      });
      enqueue.sendTo('link', {
        type: 'AVAILABILITY_ANSWERED',
        jobId: event.jobId,
        acceptArguments: event.acceptArguments,
      });
      enqueue.emit({ type: 'requestAnswered', jobId: event.jobId, accepted: true, reason: '' });
    }),
    /** Answers "no" for a request that was being decided and frees its slot. */
    answerDeclined: enqueueActions(({ enqueue, context, event }, params?: { reason: string }) => {
      if (!('jobId' in event) || typeof event.jobId !== 'string') return;
      const jobId = event.jobId;
      const reason =
        params?.reason ?? (event.type === 'REQUEST_DECLINED' ? event.reason : 'declined');
      enqueue.stopChild(requestId(jobId));
      enqueue.assign({ jobs: without(context.jobs, jobId) });
      enqueue.sendTo('link', declined(jobId));
      enqueue.emit(answeredNo(jobId, reason));
    }),
    /** Declines every request still being decided (entering `draining`). */
    declineUndecidedRequests: enqueueActions(({ enqueue, context }) => {
      const undecided = jobList(context).filter((j) => j.phase === 'deciding');
      if (undecided.length === 0) return;
      let jobs = context.jobs;
      for (const j of undecided) {
        enqueue.stopChild(requestId(j.jobId));
        jobs = without(jobs, j.jobId);
        enqueue.sendTo('link', declined(j.jobId));
        enqueue.emit(answeredNo(j.jobId, 'draining'));
      }
      enqueue.assign({ jobs });
    }),
    releaseSlot: enqueueActions(({ enqueue, context, event }) => {
      if (!('jobId' in event) || typeof event.jobId !== 'string') return;
      enqueue.stopChild(requestId(event.jobId));
      enqueue.assign({ jobs: without(context.jobs, event.jobId) });
    }),
    /** Hands an assigned job to an idle process, or starts a process for it. */
    launchJob: enqueueActions(({ enqueue, context, event }) => {
      if (event.type !== 'JOB_ASSIGNED') return;
      const record = context.jobs[event.job.id];
      if (!record || !record.acceptArguments || !context.workerId) return;
      enqueue.stopChild(requestId(record.jobId));
      const info: RunningJobInfo = {
        jobId: record.jobId,
        job: event.job.toJson(),
        acceptArguments: record.acceptArguments,
        url: event.url || context.serverUrl,
        token: event.token,
        workerId: context.workerId,
      };
      const idle = firstIdleProc(context);
      let procs = context.procs;
      let nextProcNumber = context.nextProcNumber;
      let procId: string;
      if (idle) {
        procId = idle.procId;
        procs = { ...procs, [procId]: { ...idle, phase: 'running', jobId: record.jobId } };
        enqueue.sendTo(procId, { type: 'LAUNCH', job: info });
      } else {
        procId = `proc-${nextProcNumber++}`;
        procs = { ...procs, [procId]: newProc(procId, record.jobId) };
        enqueue.spawnChild('jobProcess', {
          id: procId,
          systemId: procId,
          input: processInput(context, procId, info),
        });
      }
      enqueue.assign({
        procs,
        nextProcNumber,
        jobs: {
          ...context.jobs,
          [record.jobId]: { ...record, job: event.job, phase: 'launching', procId },
        },
      });
      enqueue.emit({ type: 'jobLaunched', jobId: record.jobId, procId });
    }),
    /** An assignment this worker never accepted (or gave up on): tell the server it failed. */
    refuseAssignment: enqueueActions(({ enqueue, event }) => {
      if (event.type !== 'JOB_ASSIGNED') return;
      enqueue.sendTo(
        'link',
        jobStatus(event.job.id, 'failed', 'assignment for a job this worker did not accept'),
      );
    }),
    /** Keeps `numIdleProcesses` spare warm processes, counting those already prewarming. */
    // Only `processes.warming` runs this: never while backing off, draining or stopped.
    spawnIdleProcesses: enqueueActions(({ enqueue, context }) => {
      const missing = context.options.numIdleProcesses - spareProcCount(context);
      if (missing <= 0) return;
      let procs = context.procs;
      let next = context.nextProcNumber;
      for (let i = 0; i < missing; i++) {
        const procId = `proc-${next++}`;
        procs = { ...procs, [procId]: newProc(procId, undefined) };
        enqueue.spawnChild('jobProcess', {
          id: procId,
          systemId: procId,
          input: processInput(context, procId, undefined),
        });
      }
      enqueue.assign({ procs, nextProcNumber: next });
    }),
    markProcessPrewarmed: assign(({ context, event }) => {
      if (event.type !== 'PROCESS_PREWARMED') return {};
      const proc = context.procs[event.procId];
      if (!proc) return {};
      return {
        prewarmFailures: 0,
        procs: {
          ...context.procs,
          [event.procId]: { ...proc, pid: event.pid, phase: proc.jobId ? proc.phase : 'idle' },
        },
      };
    }),
    markJobStarted: enqueueActions(({ enqueue, context, event }) => {
      if (event.type !== 'JOB_STARTED') return;
      const proc = context.procs[event.procId];
      const job = context.jobs[event.jobId];
      enqueue.assign({
        procs: proc
          ? { ...context.procs, [event.procId]: { ...proc, pid: event.pid, phase: 'running' } }
          : context.procs,
        jobs: job ? { ...context.jobs, [event.jobId]: { ...job, phase: 'running' } } : context.jobs,
      });
      enqueue.sendTo('link', jobStatus(event.jobId, 'running', ''));
    }),
    reportJobEnded: enqueueActions(({ enqueue, context, event }) => {
      if (event.type !== 'JOB_ENDED') return;
      const proc = context.procs[event.procId];
      enqueue.assign({
        jobs: without(context.jobs, event.jobId),
        // A process that never got warm stays `prewarming`, so its exit counts as a failed
        // prewarm (and backs off) even when it was started on demand for this job.
        procs:
          proc && proc.phase !== 'prewarming'
            ? { ...context.procs, [event.procId]: { ...proc, phase: 'exiting' } }
            : context.procs,
      });
      enqueue.sendTo(
        'link',
        jobStatus(event.jobId, event.outcome, event.outcome === 'failed' ? event.reason : ''),
      );
      enqueue.emit(jobEnded(event.jobId, event.outcome, event.reason));
    }),
    forgetProcess: enqueueActions(({ enqueue, context, event }) => {
      if (event.type !== 'PROCESS_EXITED') return;
      const proc = context.procs[event.procId];
      // The contract promises JOB_ENDED before PROCESS_EXITED; this is the backstop so a job
      // can never be left unreported if a process actor breaks it.
      const orphan = proc?.jobId ? context.jobs[proc.jobId] : undefined;
      let jobs = context.jobs;
      if (orphan && orphan.procId === event.procId) {
        jobs = without(jobs, orphan.jobId);
        enqueue.sendTo(
          'link',
          jobStatus(orphan.jobId, 'failed', `job process exited: ${event.reason}`),
        );
        enqueue.emit(jobEnded(orphan.jobId, 'failed', `job process exited: ${event.reason}`));
      }
      enqueue.assign({ procs: without(context.procs, event.procId), jobs });
      enqueue.emit({
        type: 'processExited',
        procId: event.procId,
        pid: event.pid,
        reason: event.reason,
        failed: event.failed,
      });
    }),
    recordPrewarmFailure: assign({ prewarmFailures: ({ context }) => context.prewarmFailures + 1 }),
    /** Asks every process without a job to stop; they no longer count as spares, so fresh ones start. */
    recycleIdleProcesses: enqueueActions(({ enqueue, context, event }) => {
      const reason = event.type === 'PROCESSES_RECYCLE_REQUESTED' ? event.reason : 'recycle';
      let procs = context.procs;
      for (const proc of Object.values(context.procs)) {
        if (proc.jobId || proc.phase === 'exiting') continue;
        enqueue.sendTo(proc.procId, { type: 'SHUTDOWN_REQUESTED', reason });
        procs = { ...procs, [proc.procId]: { ...proc, phase: 'exiting' } };
      }
      enqueue.assign({ procs, prewarmFailures: 0 });
    }),
    requestJobSimulation: sendTo('link', ({ event }) =>
      event.type === 'JOB_SIMULATION_REQUESTED'
        ? {
            type: 'JOB_SIMULATION_REQUESTED' as const,
            roomName: event.roomName,
            participantIdentity: event.participantIdentity,
          }
        : { type: 'DISCONNECT_REQUESTED' as const },
    ),
    /** Server termination: end the job's process gracefully, or drop a job not yet launched. */
    terminateJob: enqueueActions(({ enqueue, context, event }) => {
      if (event.type !== 'JOB_TERMINATED') return;
      const job = context.jobs[event.jobId];
      if (!job) return;
      if (job.procId) {
        enqueue.sendTo(job.procId, {
          type: 'SHUTDOWN_REQUESTED',
          reason: 'terminated by the server',
        });
        return;
      }
      enqueue.stopChild(requestId(job.jobId));
      enqueue.assign({ jobs: without(context.jobs, job.jobId) });
    }),
    shutdownAllJobs: enqueueActions(({ enqueue, context }, params: { reason: string }) => {
      for (const job of jobList(context)) {
        if (job.procId)
          enqueue.sendTo(job.procId, { type: 'SHUTDOWN_REQUESTED', reason: params.reason });
      }
    }),
    /**
     * On stop, jobs still held are reported failed now: their processes are killed with the
     * machine, and their own reports would arrive after the link is gone.
     */
    reportRemainingJobsFailed: enqueueActions(({ enqueue, context }) => {
      const reason = `worker stopped: ${context.stopReason ?? 'stop'}`;
      for (const job of jobList(context)) {
        if (job.phase === 'deciding') {
          enqueue.sendTo('link', declined(job.jobId));
          continue;
        }
        enqueue.sendTo('link', jobStatus(job.jobId, 'failed', reason));
        enqueue.emit(jobEnded(job.jobId, 'failed', reason));
      }
      enqueue.assign({ jobs: {} });
    }),
    killAllProcesses: enqueueActions(({ enqueue, context }, params: { reason: string }) => {
      for (const proc of Object.values(context.procs)) {
        enqueue.sendTo(proc.procId, { type: 'KILL_REQUESTED', reason: params.reason });
      }
    }),
    emitStopped: emit(({ context }) => ({
      type: 'stopped' as const,
      reason: context.stopReason ?? 'stopped',
    })),
  },
});

function without<T>(record: Record<string, T>, key: string): Record<string, T> {
  const { [key]: _removed, ...rest } = record;
  return rest;
}

function newProc(procId: string, jobId: string | undefined): ProcRecord {
  return { procId, phase: 'prewarming', pid: undefined, jobId };
}

function processInput(context: WorkerContext, procId: string, job: RunningJobInfo | undefined) {
  return {
    procId,
    ...(job ? { job } : {}),
    initializeTimeout: context.options.initializeProcessTimeout,
    shutdownTimeout: context.options.shutdownProcessTimeout,
  };
}

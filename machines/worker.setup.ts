/**
 * The worker chart's implementations: the actors it invokes or spawns (abstract, provided from
 * `src/`), and its named guards, delays and actions. The chart's structure — states and
 * transitions — is in `worker.machine.ts`; its input and events in `worker.contract.ts`.
 *
 * Actions and guards that need something from their event declare it as typed params, which the
 * chart computes from each transition's (narrowed) event: nothing here re-checks `event.type`.
 * A step written more than once is a primitive action (`sendDecline`, `releaseSlot`,
 * `startProcess`, `reportJobEnd`) that the composite ones enqueue by name.
 *
 * Pure: no I/O. Time comes from the actor system's clock.
 */
import type { Job } from '@livekit/protocol';
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
import type { JobOutcome, JobProcessReport, RunningJobInfo } from './jobProcess.contract.ts';
import { jobProcessMachine } from './jobProcess.machine.ts';
import type { ResolvedAcceptArguments } from './jobRequest.contract.ts';
import { jobRequestMachine } from './jobRequest.machine.ts';
import type { ServerLinkCommand, ServerLinkInput } from './serverLink.contract.ts';
import type { DeclineDecision, WorkerEvent, WorkerInput } from './worker.contract.ts';
import type { WorkerAvailability, WorkerEmitted } from './worker.contract.ts';
import {
  activeJobCount,
  answer,
  answered,
  decidingJob,
  firstIdleProc,
  hasFreeSlot,
  idleProcCount,
  jobList,
  jobStatus,
  loadBelowThreshold,
  nextProcId,
  offered,
  onDemandStartCount,
  patched,
  prewarmingProc,
  procList,
  reconnectDelay,
  requestId,
  spareProcCount,
  spawnRetryDelay,
  waitingJobCount,
  without,
  type WorkerContext,
} from './worker.context.ts';

/** Params of the actions and guards that act on one job. */
type JobIdParams = { jobId: string };
type ReasonParams = { reason: string };
/** A "no" to an availability request: why, as a label and in words. */
type DeclineParams = { decision: DeclineDecision; reason: string };

const primitives = setup({
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
    isAwaitingAssignment: ({ context }, p: JobIdParams) =>
      context.jobs[p.jobId]?.phase === 'accepted',
    isKnownJob: ({ context }, p: JobIdParams) => p.jobId in context.jobs,
    canTakeJob: and([
      'loadBelowThreshold',
      'hasFreeSlot',
      or(['hasIdleProcess', and([not('spawningBackedOff'), 'belowPrewarmCap'])]),
    ]),
    prewarmFailed: ({ context }, p: { procId: string; failed: boolean }) =>
      p.failed && context.procs[p.procId]?.phase === 'prewarming',
  },
  delays: {
    REGISTER_TIMEOUT: ({ context }) => context.options.registerTimeout,
    RECONNECT_DELAY: ({ context }) => reconnectDelay(context),
    STATUS_INTERVAL: ({ context }) => context.options.statusInterval,
    DRAIN_TIMEOUT: ({ context }) => context.options.drainTimeout,
    // The processes enforce their own SIGTERM → SIGKILL deadline; this is the backstop.
    SHUTDOWN_GRACE: ({ context }) => context.options.shutdownProcessTimeout + 5_000,
    SPAWN_RETRY_DELAY: ({ context }) => spawnRetryDelay(context),
  },
  actions: {
    connectLink: sendTo('link', { type: 'CONNECT_REQUESTED' }),
    disconnectLink: sendTo('link', { type: 'DISCONNECT_REQUESTED' }),
    recordRegistration: enqueueActions(
      ({ enqueue }, p: { workerId: string; serverVersion: string }) => {
        enqueue.assign({ workerId: p.workerId, connectFailures: 0, lastError: undefined });
        enqueue.emit({ type: 'registered', workerId: p.workerId, serverVersion: p.serverVersion });
      },
    ),
    recordConnectFailure: enqueueActions(({ enqueue, context }, p: ReasonParams) => {
      enqueue.assign({ connectFailures: context.connectFailures + 1, lastError: p.reason });
      enqueue.emit({ type: 'connectionLost', reason: p.reason });
    }),
    /** The first reason to stop wins (a second signal does not rename the first). */
    recordStopReason: assign(({ context }, p: ReasonParams) => ({
      stopReason: context.stopReason ?? p.reason,
    })),
    recordRefusal: assign((_, p: ReasonParams) => ({ refusal: p.reason })),
    recordLoad: assign((_, p: { load: number }) => ({ load: p.load })),
    scheduleStatusTick: raise(
      { type: 'STATUS_TICKED' },
      { delay: 'STATUS_INTERVAL', id: 'statusTick' },
    ),
    cancelStatusTick: cancel('statusTick'),
    reportStatus: enqueueActions(({ enqueue, context }, p: { status: WorkerAvailability }) => {
      const report = { status: p.status, load: context.load, jobCount: activeJobCount(context) };
      enqueue.sendTo('link', { type: 'WORKER_STATUS_REPORTED', ...report });
      enqueue.emit({ type: 'statusReported', ...report });
    }),

    /** Takes a slot for the offered job before deciding, so concurrent offers can't overbook. */
    reserveSlotAndDecide: enqueueActions(({ enqueue, context }, { job }: { job: Job }) => {
      enqueue.emit(offered(job));
      enqueue.assign({ jobs: { ...context.jobs, [job.id]: decidingJob(job) } });
      enqueue.spawnChild('jobRequest', {
        id: requestId(job.id),
        input: {
          job,
          requestTimeout: context.options.requestTimeout,
          assignmentTimeout: context.options.assignmentTimeout,
        },
      });
    }),
    /** The "no" answer: to the server, and to logs and metrics. */
    sendDecline: enqueueActions(({ enqueue }, p: JobIdParams & DeclineParams) => {
      enqueue.sendTo('link', answer(p.jobId, undefined));
      enqueue.emit(answered(p.jobId, p.decision, p.reason));
    }),
    answerAccepted: enqueueActions(
      ({ enqueue, context }, p: JobIdParams & { acceptArguments: ResolvedAcceptArguments }) => {
        const { jobId, acceptArguments } = p;
        enqueue.assign({
          jobs: patched(context.jobs, jobId, { phase: 'accepted', acceptArguments }),
        });
        enqueue.sendTo('link', answer(jobId, acceptArguments));
        enqueue.emit(answered(jobId, 'accepted', ''));
      },
    ),
    /** Forgets a job that holds no process: its request actor is stopped, its slot freed. */
    releaseSlot: enqueueActions(({ enqueue, context }, p: JobIdParams) => {
      enqueue.stopChild(requestId(p.jobId));
      enqueue.assign({ jobs: without(context.jobs, p.jobId) });
    }),

    /** Spawns a process (`nextProcId`), warm for later or started for `job`. */
    startProcess: enqueueActions(({ enqueue, context }, p: { job: RunningJobInfo | undefined }) => {
      const procId = nextProcId(context);
      enqueue.assign({
        nextProcNumber: context.nextProcNumber + 1,
        procs: { ...context.procs, [procId]: prewarmingProc(procId, p.job?.jobId) },
      });
      enqueue.spawnChild('jobProcess', {
        id: procId,
        systemId: procId,
        input: {
          procId,
          ...(p.job ? { job: p.job } : {}),
          initializeTimeout: context.options.initializeProcessTimeout,
          shutdownTimeout: context.options.shutdownProcessTimeout,
        },
      });
    }),
    /** An assignment this worker never accepted (or gave up on): tell the server it failed. */
    refuseAssignment: enqueueActions(({ enqueue }, p: JobIdParams) => {
      enqueue.sendTo(
        'link',
        jobStatus(p.jobId, 'failed', 'assignment for a job this worker did not accept'),
      );
    }),
    markProcessPrewarmed: assign(({ context }, p: { procId: string; pid: number }) => {
      const proc = context.procs[p.procId];
      if (!proc) return {};
      const phase = proc.jobId ? proc.phase : 'idle';
      return { prewarmFailures: 0, procs: patched(context.procs, p.procId, { pid: p.pid, phase }) };
    }),
    markJobStarted: enqueueActions(
      ({ enqueue, context }, p: JobIdParams & { procId: string; pid: number }) => {
        enqueue.assign({
          procs: patched(context.procs, p.procId, { pid: p.pid, phase: 'running' }),
          jobs: patched(context.jobs, p.jobId, { phase: 'running' }),
        });
        enqueue.sendTo('link', jobStatus(p.jobId, 'running', ''));
      },
    ),
    /** A job's end: to the server (`UpdateJobStatus`), and to logs and metrics. */
    reportJobEnd: enqueueActions(
      ({ enqueue }, p: JobIdParams & ReasonParams & { outcome: JobOutcome }) => {
        enqueue.sendTo(
          'link',
          jobStatus(p.jobId, p.outcome, p.outcome === 'failed' ? p.reason : ''),
        );
        enqueue.emit({ type: 'jobEnded', jobId: p.jobId, outcome: p.outcome, reason: p.reason });
      },
    ),
    recordPrewarmFailure: assign({ prewarmFailures: ({ context }) => context.prewarmFailures + 1 }),
    /** Asks every process without a job to stop; they no longer count as spares, so fresh ones start. */
    recycleIdleProcesses: enqueueActions(({ enqueue, context }, p: ReasonParams) => {
      let procs = context.procs;
      for (const proc of procList(context)) {
        if (proc.jobId || proc.phase === 'exiting') continue;
        enqueue.sendTo(proc.procId, { type: 'SHUTDOWN_REQUESTED', reason: p.reason });
        procs = patched(procs, proc.procId, { phase: 'exiting' });
      }
      enqueue.assign({ procs, prewarmFailures: 0 });
    }),
    requestJobSimulation: sendTo(
      'link',
      (_, p: { roomName: string; participantIdentity?: string }) => ({
        type: 'JOB_SIMULATION_REQUESTED' as const,
        roomName: p.roomName,
        participantIdentity: p.participantIdentity,
      }),
    ),
    shutdownAllJobs: enqueueActions(({ enqueue, context }, p: ReasonParams) => {
      for (const job of jobList(context)) {
        if (job.procId)
          enqueue.sendTo(job.procId, { type: 'SHUTDOWN_REQUESTED', reason: p.reason });
      }
    }),
    killAllProcesses: enqueueActions(({ enqueue, context }, p: ReasonParams) => {
      for (const proc of procList(context)) {
        enqueue.sendTo(proc.procId, { type: 'KILL_REQUESTED', reason: p.reason });
      }
    }),
    emitStopped: emit(({ context }) => ({
      type: 'stopped' as const,
      reason: context.stopReason ?? 'stopped',
    })),
  },
});

/** Actions made of the primitive ones above (enqueued by name, so each step is written once). */
export const workerSetup = primitives.extend<{
  declineOffer: { job: Job } & DeclineParams;
  answerDeclined: JobIdParams & DeclineParams;
  declineUndecidedRequests: undefined;
  launchJob: { job: Job; token: string; url: string | undefined };
  spawnIdleProcesses: undefined;
  reportJobEnded: Extract<JobProcessReport, { type: 'JOB_ENDED' }>;
  forgetProcess: Extract<JobProcessReport, { type: 'PROCESS_EXITED' }>;
  terminateJob: JobIdParams;
  reportRemainingJobsFailed: undefined;
}>({
  actions: {
    /** Says "no" to an offer that never got a slot. */
    declineOffer: enqueueActions(({ enqueue }, p) => {
      enqueue.emit(offered(p.job));
      const { job, decision, reason } = p;
      enqueue({ type: 'sendDecline', params: { jobId: job.id, decision, reason } });
    }),
    /** Answers "no" for a request that was being decided and frees its slot. */
    answerDeclined: enqueueActions(({ enqueue }, p) => {
      enqueue({ type: 'releaseSlot', params: { jobId: p.jobId } });
      enqueue({
        type: 'sendDecline',
        params: { jobId: p.jobId, decision: p.decision, reason: p.reason },
      });
    }),
    /** Declines every request still being decided (entering `draining`). */
    declineUndecidedRequests: enqueueActions(({ enqueue, context }) => {
      for (const j of jobList(context)) {
        if (j.phase === 'deciding') {
          const params = { jobId: j.jobId, decision: 'draining', reason: 'draining' } as const;
          enqueue({ type: 'answerDeclined', params });
        }
      }
    }),
    /** Hands an assigned job to an idle process, or starts a process for it. */
    launchJob: enqueueActions(({ enqueue, context }, p) => {
      const record = context.jobs[p.job.id];
      if (!record?.acceptArguments || !context.workerId) return;
      enqueue.stopChild(requestId(record.jobId));
      const info: RunningJobInfo = {
        jobId: record.jobId,
        job: p.job.toJson(),
        acceptArguments: record.acceptArguments,
        url: p.url || context.serverUrl,
        token: p.token,
        workerId: context.workerId,
      };
      const idle = firstIdleProc(context);
      const procId = idle?.procId ?? nextProcId(context);
      enqueue.assign({
        jobs: patched(context.jobs, record.jobId, { job: p.job, phase: 'launching', procId }),
      });
      if (idle) {
        enqueue.assign({
          procs: patched(context.procs, procId, { phase: 'running', jobId: record.jobId }),
        });
        enqueue.sendTo(procId, { type: 'LAUNCH', job: info });
      } else {
        enqueue({ type: 'startProcess', params: { job: info } });
      }
      enqueue.emit({ type: 'jobLaunched', jobId: record.jobId, procId });
    }),
    /** Keeps `numIdleProcesses` spare warm processes, counting those already prewarming. */
    // Only `processes.warming` runs this: never while backing off, draining or stopped.
    spawnIdleProcesses: enqueueActions(({ enqueue, context }) => {
      const missing = context.options.numIdleProcesses - spareProcCount(context);
      for (let i = 0; i < missing; i++)
        enqueue({ type: 'startProcess', params: { job: undefined } });
    }),
    reportJobEnded: enqueueActions(({ enqueue, context }, p) => {
      const proc = context.procs[p.procId];
      enqueue.assign({
        jobs: without(context.jobs, p.jobId),
        // A process that never got warm stays `prewarming`, so its exit counts as a failed
        // prewarm (and backs off) even when it was started on demand for this job.
        procs:
          proc?.phase === 'prewarming'
            ? context.procs
            : patched(context.procs, p.procId, { phase: 'exiting' }),
      });
      enqueue({ type: 'reportJobEnd', params: p });
    }),
    forgetProcess: enqueueActions(({ enqueue, context }, p) => {
      const proc = context.procs[p.procId];
      // The contract promises JOB_ENDED before PROCESS_EXITED; this is the backstop so a job
      // can never be left unreported if a process actor breaks it.
      const orphan = proc?.jobId ? context.jobs[proc.jobId] : undefined;
      enqueue.assign({ procs: without(context.procs, p.procId) });
      if (orphan && orphan.procId === p.procId) {
        enqueue.assign({ jobs: without(context.jobs, orphan.jobId) });
        enqueue({
          type: 'reportJobEnd',
          params: {
            jobId: orphan.jobId,
            outcome: 'failed',
            reason: `job process exited: ${p.reason}`,
          },
        });
      }
      enqueue.emit({ ...p, type: 'processExited' });
    }),
    /** Server termination: end the job's process gracefully, or drop a job not yet launched. */
    terminateJob: enqueueActions(({ enqueue, context }, p) => {
      const job = context.jobs[p.jobId];
      if (!job) return;
      if (job.procId) {
        enqueue.sendTo(job.procId, {
          type: 'SHUTDOWN_REQUESTED',
          reason: 'terminated by the server',
        });
      } else {
        enqueue({ type: 'releaseSlot', params: p });
      }
    }),
    /**
     * On stop, every job still held gets its answer or its end now: their processes are killed
     * with the machine, and their own reports would arrive after the link is gone.
     */
    reportRemainingJobsFailed: enqueueActions(({ enqueue, context }) => {
      const reason = `worker stopped: ${context.stopReason ?? 'stop'}`;
      for (const { jobId, phase } of jobList(context)) {
        if (phase === 'deciding') {
          enqueue({ type: 'sendDecline', params: { jobId, decision: 'unavailable', reason } });
        } else {
          enqueue({ type: 'reportJobEnd', params: { jobId, outcome: 'failed', reason } });
        }
      }
      enqueue.assign({ jobs: {} });
    }),
  },
});

/**
 * The worker chart's primitive implementations: the actors it invokes or spawns (abstract,
 * provided from `src/`), its named guards and delays, and the primitive actions — each step
 * written once — that the composite actions in `worker.setup.ts` enqueue by name.
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
import type { JobOutcome } from './jobProcess.contract.ts';
import { jobProcessMachine } from './jobProcess.machine.ts';
import type { ResolvedAcceptArguments } from './jobRequest.contract.ts';
import { jobRequestMachine } from './jobRequest.machine.ts';
import type { ServerLinkCommand, ServerLinkInput } from './serverLink.contract.ts';
import type { DeclineDecision, WorkerEvent, WorkerInput } from './worker.contract.ts';
import type { WorkerAvailability, WorkerEmitted, WorkerStatusName } from './worker.contract.ts';
import {
  activeJobCount,
  answer,
  answered,
  decidingJob,
  hasFreeSlot,
  hasSpareForNextJob,
  hasSurplusIdle,
  idleProcCount,
  idleTimerId,
  isIdleProc,
  jobStatus,
  loadBelowThreshold,
  nextProcId,
  nextStartEstimate,
  offered,
  patched,
  prewarmingProc,
  processesToStart,
  procList,
  queuedJobs,
  reconnectDelay,
  requestId,
  runningProcCount,
  shutdownGrace,
  startDeadline,
  startDeadlineId,
  startsInTime,
  spawnRetryDelay,
  waitingJobCount,
  without,
  type JobRecord,
  type WorkerContext,
} from './worker.context.ts';

/** Params of the actions and guards that act on one job. */
export type JobIdParams = { jobId: string };
export type ReasonParams = { reason: string };
/** A "no" to an availability request: why, as a label and in words. */
export type DeclineParams = { decision: DeclineDecision; reason: string };
/** A job's assignment as its record keeps it (`handJobToProcess` writes it on the way). */
export type Assigned = Pick<JobRecord, 'job' | 'launch'>;

export const primitives = setup({
  types: {
    context: {} as WorkerContext,
    input: {} as WorkerInput,
    events: {} as WorkerEvent,
    emitted: {} as WorkerEmitted,
    tags: {} as WorkerStatusName,
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
    /** The offer's expected start delay is within `jobStartBudget` (worker.context.ts). */
    startsInTime: ({ context }) => startsInTime(context),
    isDraining: stateIn({ lifecycle: 'draining' }),
    noActiveJobs: ({ context }) => activeJobCount(context) === 0,
    isAwaitingAssignment: ({ context }, p: JobIdParams) =>
      context.jobs[p.jobId]?.phase === 'accepted',
    isKnownJob: ({ context }, p: JobIdParams) => p.jobId in context.jobs,
    isQueued: ({ context }, p: JobIdParams) => context.jobs[p.jobId]?.phase === 'queued',
    /**
     * What the server is told (`available`/`full`): the user's policy (load, slots) and whether
     * a process can start at all. The start delay is not part of it: an offer over the budget is
     * answered `startDelay` one by one, so each is counted and the server hears why.
     */
    takesOffers: and([
      'loadBelowThreshold',
      'hasFreeSlot',
      or(['hasIdleProcess', not('spawningBackedOff')]),
    ]),
    /** Whether this offer is taken: the worker takes offers and the job can start in time. */
    canTakeJob: and(['takesOffers', or(['hasIdleProcess', 'startsInTime'])]),
    prewarmFailed: ({ context }, p: { procId: string; failed: boolean }) =>
      p.failed && context.procs[p.procId]?.phase === 'prewarming',
    /**
     * The job just started runs in a process that may take another job after it (reuse), and
     * that process is likely back before a job needs it: the pool still has a spare (warm or
     * starting) beyond the offers already promised one, or this is the only job running. A job
     * that took the last spare while others run says jobs come faster than processes come back
     * (a burst, or a stream ramping up), and its spare is replaced as without reuse.
     */
    reusableProcessLikelyBackInTime: ({ context }, p: { procId: string }) =>
      (context.procs[p.procId]?.jobsRun ?? Infinity) < context.options.jobsPerProcess &&
      (hasSpareForNextJob(context) || runningProcCount(context) < 2),
    /** A job's process went back to idle for another job (reuse). */
    processKept: (_, p: { processKept: boolean }) => p.processKept,
    /** It came back, but imported code a reload has replaced since: it is not reused. */
    keptWithReplacedCode: ({ context }, p: { procId: string; processKept: boolean }) =>
      p.processKept &&
      (context.procs[p.procId]?.generation ?? context.generation) !== context.generation,
    /** It came back, and a job is queued for the next warm process. */
    keptWithQueuedJob: ({ context }, p: { processKept: boolean }) =>
      p.processKept && queuedJobs(context).length > 0,
    /** The process is idle and holds no job. */
    isIdle: ({ context }, p: { procId: string }) => isIdleProc(context, p.procId),
    /** It is idle, and more processes are idle than the spares and waiting jobs need. */
    isSurplusIdle: ({ context }, p: { procId: string }) =>
      isIdleProc(context, p.procId) && hasSurplusIdle(context),
  },
  delays: {
    REGISTER_TIMEOUT: ({ context }) => context.options.registerTimeout,
    RECONNECT_DELAY: ({ context }) => reconnectDelay(context),
    STATUS_INTERVAL: ({ context }) => context.options.statusInterval,
    DRAIN_TIMEOUT: ({ context }) => context.options.drainTimeout,
    // The processes enforce their own deadlines (shutdown, SIGTERM, SIGKILL); this backstop
    // ends the drain only once every one of them has run out.
    SHUTDOWN_GRACE: ({ context }) => shutdownGrace(context),
    SPAWN_RETRY_DELAY: ({ context }) => spawnRetryDelay(context),
    JOB_START_DEADLINE: ({ context }) => startDeadline(context),
    SURPLUS_IDLE_TIMEOUT: ({ context }) => context.options.surplusIdleTimeout,
    SPARE_REFILL_DELAY: ({ context }) => context.options.spareRefillDelay,
    REUSED_SPARE_REFILL_DELAY: ({ context }) => context.options.reusedSpareRefillDelay,
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
    /** One refill per started job; each one starts only what the pool still lacks. */
    scheduleSpareRefill: raise({ type: 'SPARE_REFILL_DUE' }, { delay: 'SPARE_REFILL_DELAY' }),
    /** The refill for a job whose process may come back to take the next one (reuse). */
    scheduleReusedSpareRefill: raise(
      { type: 'SPARE_REFILL_DUE' },
      { delay: 'REUSED_SPARE_REFILL_DELAY' },
    ),
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

    /**
     * Spawns the processes `processesToStart` asks for: never more prewarming at once than
     * `maxConcurrentStarts`, so each prewarm deadline (counted from its spawn) measures a start
     * that is actually running. A process starts without a job: the next one warm takes the
     * oldest queued job, so a failed start never fails a job by itself.
     */
    startProcesses: enqueueActions(({ enqueue, context }, p: { spares: boolean }) => {
      const count = processesToStart(context, p.spares);
      let procs = context.procs;
      for (let i = 0; i < count; i++) {
        const procId = nextProcId(context, i);
        const spawnedAt = context.options.now();
        procs = { ...procs, [procId]: prewarmingProc(procId, spawnedAt, context.generation) };
        enqueue.spawnChild('jobProcess', {
          id: procId,
          systemId: procId,
          input: {
            procId,
            initializeTimeout: context.options.initializeProcessTimeout,
            shutdownTimeout: context.options.shutdownProcessTimeout,
            reuse: {
              maxJobs: context.options.jobsPerProcess,
              memoryGrowthMb: context.options.reuseMemoryGrowthMb,
            },
          },
        });
      }
      // Most calls start nothing (a job taking a warm process, say): no assign, so no new
      // snapshot on the way.
      if (count > 0) enqueue.assign({ nextProcNumber: context.nextProcNumber + count, procs });
    }),
    /**
     * Hands a job that has its assignment to a warm process; its start deadline is over.
     * `assigned` is the assignment itself when it has just arrived, so the record is written
     * once, not queued first.
     */
    handJobToProcess: enqueueActions(
      ({ enqueue, context }, p: JobIdParams & { procId: string; assigned?: Assigned }) => {
        const job = context.jobs[p.jobId];
        const launch = p.assigned?.launch ?? job?.launch;
        if (!job || !launch) return;
        enqueue.cancel(startDeadlineId(p.jobId));
        enqueue.cancel(idleTimerId(p.procId));
        enqueue.assign({
          jobs: patched(context.jobs, p.jobId, {
            ...p.assigned,
            phase: 'launching',
            procId: p.procId,
            launchAttempts: job.launchAttempts + 1,
          }),
          procs: patched(context.procs, p.procId, {
            phase: 'running',
            jobId: p.jobId,
            jobsRun: (context.procs[p.procId]?.jobsRun ?? 0) + 1,
          }),
        });
        enqueue.sendTo(p.procId, { type: 'LAUNCH', job: launch });
        enqueue.emit({ type: 'jobLaunched', jobId: p.jobId, procId: p.procId });
      },
    ),
    /** Asks a job's process to end the job; a job asked to end is never retried elsewhere. */
    askJobToEnd: enqueueActions(({ enqueue, context }, p: JobIdParams & ReasonParams) => {
      const procId = context.jobs[p.jobId]?.procId;
      if (!procId) return;
      enqueue.assign(({ context: c }) => ({
        jobs: patched(c.jobs, p.jobId, { endRequested: true }),
      }));
      enqueue.sendTo(procId, { type: 'SHUTDOWN_REQUESTED', reason: p.reason });
    }),
    /** An assignment this worker never accepted (or gave up on): tell the server it failed. */
    refuseAssignment: enqueueActions(({ enqueue }, p: JobIdParams) => {
      enqueue.sendTo(
        'link',
        jobStatus(p.jobId, 'failed', 'assignment for a job this worker did not accept'),
      );
    }),
    /** A process is warm: its start is measured, and it is idle until a job takes it. */
    recordProcessWarm: assign(({ context }, p: { procId: string; pid: number }) => {
      const proc = context.procs[p.procId];
      // A process already asked to stop (recycled) stays `exiting`: it must not take a job.
      if (proc?.phase !== 'prewarming') return {};
      const took = context.options.now() - proc.spawnedAt;
      return {
        prewarmFailures: 0,
        startEstimate: nextStartEstimate(context.startEstimate, took),
        procs: patched(context.procs, p.procId, { pid: p.pid, phase: 'idle' }),
      };
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
    recordPrewarmFailure: assign(({ context }, p: ReasonParams) => ({
      prewarmFailures: context.prewarmFailures + 1,
      lastPrewarmFailure: p.reason,
    })),
    /** The check of a reused idle process, `surplusIdleTimeout` from now (PROCESS_IDLE_TIMED_OUT). */
    armIdleTimer: enqueueActions(({ enqueue }, p: { procId: string }) => {
      enqueue.raise(
        { type: 'PROCESS_IDLE_TIMED_OUT', procId: p.procId },
        { delay: 'SURPLUS_IDLE_TIMEOUT', id: idleTimerId(p.procId) },
      );
    }),
    /** Asks a process without a job to stop; it no longer counts as a spare. */
    retireProcess: enqueueActions(({ enqueue }, p: { procId: string } & ReasonParams) => {
      enqueue.cancel(idleTimerId(p.procId));
      enqueue.sendTo(p.procId, { type: 'SHUTDOWN_REQUESTED', reason: p.reason });
      enqueue.assign(({ context }) => ({
        procs: patched(context.procs, p.procId, { phase: 'exiting' }),
      }));
    }),
    requestJobSimulation: sendTo(
      'link',
      (_, p: { roomName: string; participantIdentity?: string }) => ({
        type: 'JOB_SIMULATION_REQUESTED' as const,
        roomName: p.roomName,
        participantIdentity: p.participantIdentity,
      }),
    ),
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

/**
 * The worker chart's implementations: the actors it invokes or spawns (abstract, provided from
 * `src/`), its named guards and delays, and its actions. The chart's structure — states and
 * transitions — is in `worker.machine.ts` and `worker.processes.ts`; its input, events and
 * context in `worker.contract.ts`; the arithmetic its guards are built from in
 * `worker.context.ts`.
 *
 * Actions and guards that need something from their event declare it as typed params, which the
 * chart computes from each transition's (narrowed) event: nothing here re-checks `event.type`.
 * Built in two steps: `setup({...})` with the actors, guards, delays and the primitive actions
 * (`sendDecline`, `releaseSlot`, `startProcesses`, `reportJobEnd`, …), then
 * `.extend(...)` with the composite actions (`failJob`, `launchJob`, …) that enqueue them by name, so each step is written
 * once.
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
import type {
  JobEnding,
  JobOutcome,
  JobProcessReport,
  RunningJobInfo,
} from './jobProcess.contract.ts';
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
  firstIdleProc,
  hasFreeSlot,
  hasSpareForNextJob,
  hasSurplusIdle,
  idleProcCount,
  idleTimerId,
  isIdleProc,
  jobList,
  jobStatus,
  loadBelowThreshold,
  nextProcId,
  nextSpareMemoryEstimate,
  nextStartEstimate,
  offered,
  patched,
  prewarmingProc,
  processesToStart,
  procList,
  queuedJobs,
  recentArrivals,
  reconnectDelay,
  requestId,
  retriesLaunch,
  runningProcCount,
  PROCESS_EXIT_GRACE,
  shutdownGrace,
  startDeadline,
  startDeadlineId,
  startsInTime,
  spawnRetryDelay,
  surplusIdleCount,
  waitingJobCount,
  without,
} from './worker.context.ts';
import type { JobRecord, WorkerContext } from './worker.contract.ts';

/** Params of the actions and guards that act on one job. */
export type JobIdParams = { jobId: string };
export type ReasonParams = { reason: string };
/** A "no" to an availability request: why, as a label and in words. */
export type DeclineParams = { decision: DeclineDecision; reason: string };
/** A job's assignment as its record keeps it (`handJobToProcess` writes it on the way). */
export type Assigned = Pick<JobRecord, 'job' | 'launch'>;

/**
 * The primitives: the actors (abstract, provided from `src/`), the guards, the delays, and the
 * actions each written once.
 */
const primitives = setup({
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
    /** The worker's own limits: load under `loadThreshold` and a free job slot (`maxJobs`). */
    withinOwnLimits: ({ context }) => loadBelowThreshold(context) && hasFreeSlot(context),
    /**
     * Abstract: a worker alone has no one else's limits. A `WorkerGroup` provides the
     * process-wide job cap and load of all its agents (src/group/shared-capacity.ts).
     */
    groupAllowsJob: ({ context: _context }) => true,
    /** An idle process not already promised to a job being decided or awaiting assignment. */
    hasIdleProcess: ({ context }) => idleProcCount(context) > waitingJobCount(context),
    spawningBackedOff: stateIn({ processes: 'backingOff' }),
    /** The offer's expected start delay is within `jobStartBudget` (worker.context.ts). */
    startsInTime: ({ context }) => startsInTime(context),
    isDraining: stateIn({ lifecycle: 'draining' }),
    /** Stopping, or already stopped (the lifecycle may pass `stopping` in one step). */
    isStopping: or([stateIn({ lifecycle: 'stopping' }), stateIn({ lifecycle: 'stopped' })]),
    /** Every job process has exited and been forgotten (`PROCESS_EXITED`). */
    noProcessesLeft: ({ context }) => procList(context).length === 0,
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
      'withinOwnLimits',
      'groupAllowsJob',
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
    /** The warm pool is elastic (`elasticIdleProcesses`): its size follows the offers. */
    poolIsElastic: ({ context }) => context.options.elasticPool !== undefined,
  },
  delays: {
    REGISTER_TIMEOUT: ({ context }) => context.options.registerTimeout,
    RECONNECT_DELAY: ({ context }) => reconnectDelay(context),
    STATUS_INTERVAL: ({ context }) => context.options.statusInterval,
    DRAIN_TIMEOUT: ({ context }) => context.options.drainTimeout,
    // The processes enforce their own deadlines (shutdown, terminate, SIGKILL); this backstop
    // ends the drain only once every one of them has run out.
    SHUTDOWN_GRACE: ({ context }) => shutdownGrace(context),
    PROCESS_EXIT_GRACE: () => PROCESS_EXIT_GRACE,
    SPAWN_RETRY_DELAY: ({ context }) => spawnRetryDelay(context),
    JOB_START_DEADLINE: ({ context }) => startDeadline(context),
    SURPLUS_IDLE_TIMEOUT: ({ context }) => context.options.surplusIdleTimeout,
    SPARE_REFILL_DELAY: ({ context }) => context.options.spareRefillDelay,
    REUSED_SPARE_REFILL_DELAY: ({ context }) => context.options.reusedSpareRefillDelay,
    POOL_RESIZE_INTERVAL: ({ context }) => context.options.elasticPool?.resizeInterval ?? 0,
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
        enqueue.sendTo(p.procId, { type: 'LAUNCH_REQUESTED', job: launch });
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
    recordProcessWarm: assign(
      ({ context }, p: { procId: string; pid: number; rssMb?: number | undefined }) => {
        const proc = context.procs[p.procId];
        // A process already asked to stop (recycled) stays `exiting`: it must not take a job.
        if (proc?.phase !== 'prewarming') return {};
        const took = context.options.now() - proc.spawnedAt;
        return {
          prewarmFailures: 0,
          startEstimate: nextStartEstimate(context.startEstimate, took),
          spareMemoryEstimate:
            p.rssMb === undefined
              ? context.spareMemoryEstimate
              : nextSpareMemoryEstimate(context.spareMemoryEstimate, p.rssMb),
          procs: patched(context.procs, p.procId, { pid: p.pid, phase: 'idle' }),
        };
      },
    ),
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
      (
        { enqueue },
        p: JobIdParams &
          ReasonParams & { outcome: JobOutcome; ending: JobEnding; endRequested: boolean },
      ) => {
        enqueue.sendTo(
          'link',
          jobStatus(p.jobId, p.outcome, p.outcome === 'failed' ? p.reason : ''),
        );
        const { jobId, outcome, reason, ending, endRequested } = p;
        enqueue.emit({ type: 'jobEnded', jobId, outcome, reason, ending, endRequested });
      },
    ),
    recordPrewarmFailure: assign(({ context }, p: ReasonParams) => ({
      prewarmFailures: context.prewarmFailures + 1,
      lastPrewarmFailure: p.reason,
    })),
    /** An offer arrived (elastic pool): it counts for the arrival rate over the window. */
    recordArrival: assign(({ context }) => {
      const now = context.options.now();
      return { arrivals: [...recentArrivals(context, now), now] };
    }),
    /** The elastic pool's next look at its size (a no-op for a fixed pool). */
    schedulePoolResize: enqueueActions(({ enqueue, context }) => {
      if (!context.options.elasticPool) return;
      enqueue.raise(
        { type: 'POOL_RESIZE_DUE' },
        { delay: 'POOL_RESIZE_INTERVAL', id: 'poolResize' },
      );
    }),
    cancelPoolResize: cancel('poolResize'),
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
    /**
     * Stopping: a process with a job (or on its way out after one) is killed; one without a job
     * has nothing to lose and is asked to stop, so it ends as `stopped`, not as a failure.
     */
    endAllProcesses: enqueueActions(({ enqueue, context }, p: ReasonParams) => {
      for (const proc of procList(context)) {
        const jobless = proc.phase === 'idle' || proc.phase === 'prewarming';
        enqueue.sendTo(proc.procId, {
          type: jobless ? 'SHUTDOWN_REQUESTED' : 'KILL_REQUESTED',
          reason: p.reason,
        });
      }
    }),
    emitStopped: emit(({ context }) => ({
      type: 'stopped' as const,
      reason: context.stopReason ?? 'stopped',
    })),
  },
});

/**
 * The composite actions, made of the primitive ones above and enqueued by name, so each step is
 * written once.
 */
export const workerSetup = primitives.extend<{
  failJob: JobIdParams & ReasonParams;
  declineOffer: { job: Job } & DeclineParams;
  answerDeclined: JobIdParams & DeclineParams;
  declineUndecidedRequests: undefined;
  launchJob: { job: Job; token: string; url: string | undefined };
  retryLaunch: Extract<JobProcessReport, { type: 'JOB_ENDED' }>;
  runOrQueue: JobIdParams;
  markProcessPrewarmed: { procId: string; pid: number; rssMb?: number | undefined };
  letSurplusSparesGo: undefined;
  failQueuedJob: JobIdParams;
  shutdownAllJobs: ReasonParams;
  settleJobEnded: Extract<JobProcessReport, { type: 'JOB_ENDED' }>;
  forgetProcess: Extract<JobProcessReport, { type: 'PROCESS_EXITED' }>;
  terminateJob: JobIdParams & { reason?: string };
  reportRemainingJobsFailed: undefined;
  recycleIdleProcesses: ReasonParams;
  giveQueuedJob: { procId: string };
  keepAsSpare: { procId: string };
}>({
  actions: {
    /**
     * A job that holds no process ends failed: its start deadline (if queued) is cancelled, its
     * record dropped, and its end reported.
     */
    failJob: enqueueActions(({ enqueue }, p: JobIdParams & ReasonParams) => {
      enqueue.cancel(startDeadlineId(p.jobId));
      enqueue.assign(({ context }) => ({ jobs: without(context.jobs, p.jobId) }));
      const params = {
        jobId: p.jobId,
        outcome: 'failed',
        reason: p.reason,
        ending: 'dropped',
        endRequested: false,
      } as const;
      enqueue({ type: 'reportJobEnd', params });
    }),
    /**
     * Asks every process without a job to stop, so fresh ones start; processes running a job now
     * belong to the old generation and are not reused after it.
     */
    recycleIdleProcesses: enqueueActions(({ enqueue, context }, p) => {
      for (const proc of procList(context)) {
        if (proc.jobId || proc.phase === 'exiting') continue;
        enqueue({ type: 'retireProcess', params: { procId: proc.procId, reason: p.reason } });
      }
      enqueue.assign({ prewarmFailures: 0, generation: context.generation + 1 });
    }),
    /** A process that came back (reuse) takes the oldest queued job. */
    giveQueuedJob: enqueueActions(({ enqueue, context }, p) => {
      const next = queuedJobs(context)[0];
      if (!next) return;
      enqueue.emit({ type: 'processReused', procId: p.procId });
      enqueue({ type: 'handJobToProcess', params: { jobId: next.jobId, procId: p.procId } });
    }),
    /**
     * The elastic pool lets go the spares beyond its target, the youngest first (an older one
     * has had its post-start heap collections already), and forgets offers out of its window.
     */
    letSurplusSparesGo: enqueueActions(({ enqueue, context }) => {
      const surplus = surplusIdleCount(context);
      const idle = procList(context).filter((proc) => proc.phase === 'idle' && !proc.jobId);
      for (const proc of idle.slice(idle.length - surplus)) {
        const params = { procId: proc.procId, reason: 'surplus idle process (elastic pool)' };
        enqueue({ type: 'retireProcess', params });
      }
      const arrivals = recentArrivals(context, context.options.now());
      if (arrivals.length !== context.arrivals.length) enqueue.assign({ arrivals });
    }),
    /** A process that came back waits as a spare, checked every `surplusIdleTimeout`. */
    keepAsSpare: enqueueActions(({ enqueue }, p) => {
      enqueue.emit({ type: 'processReused', procId: p.procId });
      enqueue({ type: 'armIdleTimer', params: { procId: p.procId } });
    }),
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
    /**
     * Hands an assigned job to an idle process, or queues it for the next process to get warm,
     * with a deadline (the processes region starts the processes it needs).
     */
    launchJob: enqueueActions(({ enqueue, context }, p) => {
      const record = context.jobs[p.job.id];
      if (!record?.acceptArguments || !context.workerId) return;
      const jobId = record.jobId;
      const launch: RunningJobInfo = {
        jobId,
        job: p.job.toJson(),
        acceptArguments: record.acceptArguments,
        url: p.url || context.serverUrl,
        token: p.token,
        workerId: context.workerId,
      };
      const idle = firstIdleProc(context);
      if (idle) {
        const assigned = { job: p.job, launch };
        enqueue({ type: 'handJobToProcess', params: { jobId, procId: idle.procId, assigned } });
      } else {
        enqueue.assign({
          jobs: patched(context.jobs, jobId, { job: p.job, phase: 'queued', launch }),
        });
        enqueue({ type: 'runOrQueue', params: { jobId } });
      }
      // After the hand-off: the request actor's stop is not on the job's way to its process.
      enqueue.stopChild(requestId(jobId));
    }),
    /**
     * A process that took a job died before the job's entrypoint ran: the job goes back to the
     * queue (a warm process takes it now if there is one), instead of failing.
     */
    retryLaunch: enqueueActions(({ enqueue, context }, p) => {
      enqueue.assign({
        jobs: patched(context.jobs, p.jobId, { phase: 'queued', procId: undefined }),
        procs: patched(context.procs, p.procId, { phase: 'exiting', jobId: undefined }),
      });
      enqueue.emit({ type: 'jobRetried', jobId: p.jobId, procId: p.procId, reason: p.reason });
      enqueue({ type: 'runOrQueue', params: { jobId: p.jobId } });
    }),
    /** A queued job goes to an idle process if there is one, else waits with its deadline. */
    runOrQueue: enqueueActions(({ enqueue, context }, p) => {
      const idle = firstIdleProc(context);
      if (idle) {
        enqueue({ type: 'handJobToProcess', params: { jobId: p.jobId, procId: idle.procId } });
      } else {
        enqueue.raise(
          { type: 'JOB_START_DEADLINE_PASSED', jobId: p.jobId },
          { delay: 'JOB_START_DEADLINE', id: startDeadlineId(p.jobId) },
        );
      }
    }),
    /** A process got warm: it is measured, then takes the oldest queued job if there is one. */
    markProcessPrewarmed: enqueueActions(({ enqueue, context }, p) => {
      const wasStarting = context.procs[p.procId]?.phase === 'prewarming';
      enqueue({ type: 'recordProcessWarm', params: p });
      const next = queuedJobs(context)[0];
      if (wasStarting && next) {
        enqueue({ type: 'handJobToProcess', params: { jobId: next.jobId, procId: p.procId } });
      }
    }),
    /** A queued job's deadline passed with no warm process for it: it fails, reported. */
    failQueuedJob: enqueueActions(({ enqueue, context }, p) => {
      const cause = context.lastPrewarmFailure;
      const reason =
        `no job process was ready within ${startDeadline(context)} ms` +
        (cause ? ` (last failed start: ${cause})` : '');
      enqueue({ type: 'failJob', params: { jobId: p.jobId, reason } });
    }),
    /** The drain deadline: running jobs are asked to end; jobs still queued fail now. */
    shutdownAllJobs: enqueueActions(({ enqueue, context }, p) => {
      for (const job of jobList(context)) {
        if (job.procId) {
          enqueue({ type: 'askJobToEnd', params: { jobId: job.jobId, reason: p.reason } });
        } else if (job.phase === 'queued') {
          enqueue({ type: 'failJob', params: { jobId: job.jobId, reason: p.reason } });
        }
      }
    }),
    settleJobEnded: enqueueActions(({ enqueue, context }, p) => {
      const job = context.jobs[p.jobId];
      if (job && retriesLaunch(job, p.outcome)) {
        enqueue({ type: 'retryLaunch', params: p });
        return;
      }
      // A kept process is idle again; the processes region decides what it does next.
      enqueue.assign({
        jobs: without(context.jobs, p.jobId),
        procs: patched(
          context.procs,
          p.procId,
          p.processKept ? { phase: 'idle', jobId: undefined } : { phase: 'exiting' },
        ),
      });
      const endRequested = job?.endRequested ?? false;
      enqueue({ type: 'reportJobEnd', params: { ...p, endRequested } });
    }),
    forgetProcess: enqueueActions(({ enqueue, context }, p) => {
      const proc = context.procs[p.procId];
      // The contract promises JOB_ENDED before PROCESS_EXITED; this is the backstop so a job
      // can never be left unreported if a process actor breaks it.
      const orphan = proc?.jobId ? context.jobs[proc.jobId] : undefined;
      enqueue.assign({ procs: without(context.procs, p.procId) });
      // A finished child stays in the snapshot's `children` until stopped: without this, every
      // process the worker ever ran would be kept (its context too), and each step that copies
      // `children` (any stopChild, any spawn) would grow slower with the worker's age.
      enqueue.stopChild(p.procId);
      if (orphan && orphan.procId === p.procId) {
        const reason = `job process exited: ${p.reason}`;
        enqueue({ type: 'failJob', params: { jobId: orphan.jobId, reason } });
      }
      enqueue.emit({ ...p, type: 'processExited' });
    }),
    /**
     * Server termination: end the job's process gracefully; a queued job ends (reported) without
     * ever getting one; a job not yet assigned is dropped.
     */
    terminateJob: enqueueActions(({ enqueue, context }, p) => {
      const job = context.jobs[p.jobId];
      if (!job) return;
      const reason = p.reason ?? 'terminated by the server';
      if (job.procId) {
        enqueue({ type: 'askJobToEnd', params: { jobId: p.jobId, reason } });
      } else if (job.phase === 'queued') {
        enqueue({ type: 'failJob', params: { jobId: p.jobId, reason: `${reason} while queued` } });
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
          enqueue({ type: 'failJob', params: { jobId, reason } });
        }
      }
      enqueue.assign({ jobs: {} });
    }),
  },
});

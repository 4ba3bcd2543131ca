/**
 * The worker chart's implementations: the actors it invokes or spawns (abstract, provided from
 * `src/`), and its named guards, delays and actions. The chart's structure — states and
 * transitions — is in `worker.machine.ts`; its input and events in `worker.contract.ts`.
 *
 * Actions and guards that need something from their event declare it as typed params, which the
 * chart computes from each transition's (narrowed) event: nothing here re-checks `event.type`.
 * A step written more than once is a primitive action (`sendDecline`, `releaseSlot`,
 * `startProcess`, `reportJobEnd`) that the composite ones enqueue by name.
 * The primitives, with the actors, guards and delays, are in `worker.primitives.ts`.
 *
 * Pure: no I/O. Time comes from the actor system's clock.
 */
import type { Job } from '@livekit/protocol';
import { enqueueActions } from 'xstate';
import type { JobProcessReport, RunningJobInfo } from './jobProcess.contract.ts';
import {
  primitives,
  type DeclineParams,
  type JobIdParams,
  type ReasonParams,
} from './worker.primitives.ts';
import {
  firstIdleProc,
  jobList,
  offered,
  procList,
  patched,
  queuedJobs,
  requestId,
  retriesLaunch,
  startDeadline,
  startDeadlineId,
  without,
} from './worker.context.ts';

/**
 * Actions made of the primitive ones (`worker.primitives.ts`), enqueued by name, so each step is
 * written once.
 */
export const workerSetup = primitives.extend<{
  declineOffer: { job: Job } & DeclineParams;
  answerDeclined: JobIdParams & DeclineParams;
  declineUndecidedRequests: undefined;
  launchJob: { job: Job; token: string; url: string | undefined };
  retryLaunch: Extract<JobProcessReport, { type: 'JOB_ENDED' }>;
  runOrQueue: JobIdParams;
  markProcessPrewarmed: { procId: string; pid: number };
  failQueuedJob: JobIdParams;
  shutdownAllJobs: ReasonParams;
  reportJobEnded: Extract<JobProcessReport, { type: 'JOB_ENDED' }>;
  forgetProcess: Extract<JobProcessReport, { type: 'PROCESS_EXITED' }>;
  terminateJob: JobIdParams;
  reportRemainingJobsFailed: undefined;
  recycleIdleProcesses: ReasonParams;
  giveQueuedJob: { procId: string };
  keepAsSpare: { procId: string };
}>({
  actions: {
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
      enqueue.assign({ jobs: without(context.jobs, p.jobId) });
      enqueue({ type: 'reportJobEnd', params: { jobId: p.jobId, outcome: 'failed', reason } });
    }),
    /** The drain deadline: running jobs are asked to end; jobs still queued fail now. */
    shutdownAllJobs: enqueueActions(({ enqueue, context }, p) => {
      for (const job of jobList(context)) {
        if (job.procId) {
          enqueue({ type: 'askJobToEnd', params: { jobId: job.jobId, reason: p.reason } });
        } else if (job.phase === 'queued') {
          enqueue.cancel(startDeadlineId(job.jobId));
          enqueue.assign(({ context: c }) => ({ jobs: without(c.jobs, job.jobId) }));
          const params = { jobId: job.jobId, outcome: 'failed', reason: p.reason } as const;
          enqueue({ type: 'reportJobEnd', params });
        }
      }
    }),
    reportJobEnded: enqueueActions(({ enqueue, context }, p) => {
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
      enqueue({ type: 'reportJobEnd', params: p });
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
    /**
     * Server termination: end the job's process gracefully; a queued job ends (reported) without
     * ever getting one; a job not yet assigned is dropped.
     */
    terminateJob: enqueueActions(({ enqueue, context }, p) => {
      const job = context.jobs[p.jobId];
      if (!job) return;
      const reason = 'terminated by the server';
      if (job.procId) {
        enqueue({ type: 'askJobToEnd', params: { jobId: p.jobId, reason } });
      } else if (job.phase === 'queued') {
        enqueue.cancel(startDeadlineId(p.jobId));
        enqueue.assign({ jobs: without(context.jobs, p.jobId) });
        const params = {
          jobId: p.jobId,
          outcome: 'failed',
          reason: `${reason} while queued`,
        } as const;
        enqueue({ type: 'reportJobEnd', params });
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
          if (phase === 'queued') enqueue.cancel(startDeadlineId(jobId));
          enqueue({ type: 'reportJobEnd', params: { jobId, outcome: 'failed', reason } });
        }
      }
      enqueue.assign({ jobs: {} });
    }),
  },
});

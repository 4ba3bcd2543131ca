/**
 * The worker chart's `processes` region (docs/architecture.md §2): the supply of job processes.
 * `warming` keeps `numIdleProcesses` spares (or, elastic, as many as the recent offers want:
 * `idleTarget` in worker.context.ts) and starts one per queued job, at most
 * `maxConcurrentStarts` at once; `backingOff` waits after failed prewarms; `closed` (draining or
 * stopped) starts only what queued jobs need. With process reuse, it decides what a process back
 * from its job does. Its structure only: guards and actions are in `worker.setup.ts`;
 * the machine is assembled in `worker.machine.ts`.
 */
import { fromEvent } from './params.ts';
import { workerSetup } from './worker.setup.ts';

/** Params of `retireProcess` for the process an event names, with this reason. */
const retiredAs =
  (reason: string) =>
  ({ event }: { event: { procId: string } }) => ({ procId: event.procId, reason });

export const processesRegion = workerSetup.createStateConfig({
  initial: 'warming',
  on: {
    DRAIN_REQUESTED: '.closed',
    // A process back from its job (reuse): let go if a reload replaced its code, else it
    // takes the oldest queued job, else it waits as a spare.
    JOB_ENDED: [
      {
        guard: { type: 'keptWithReplacedCode', params: fromEvent },
        actions: { type: 'retireProcess', params: retiredAs('its code has been replaced') },
      },
      {
        guard: { type: 'keptWithQueuedJob', params: fromEvent },
        actions: { type: 'giveQueuedJob', params: fromEvent },
      },
      {
        guard: { type: 'processKept', params: fromEvent },
        actions: { type: 'keepAsSpare', params: fromEvent },
      },
    ],
    // A reused idle process is let go once more are idle than wanted, else checked again.
    PROCESS_IDLE_TIMED_OUT: [
      {
        guard: { type: 'isSurplusIdle', params: fromEvent },
        actions: { type: 'retireProcess', params: retiredAs('surplus idle process') },
      },
      {
        guard: { type: 'isIdle', params: fromEvent },
        actions: { type: 'armIdleTimer', params: fromEvent },
      },
    ],
  },
  states: {
    warming: {
      entry: [{ type: 'startProcesses', params: { spares: true } }, 'schedulePoolResize'],
      exit: 'cancelPoolResize',
      // The worker is stopping: no process is started any more, not even a spare.
      always: { guard: 'isStopping', target: 'closed' },
      on: {
        // Elastic pool: an offer raises the arrival rate, and with it the spares wanted, so
        // processes start for the offers expected next before those arrive. Its assignment
        // takes a spare as a fixed pool's would.
        AVAILABILITY_REQUESTED: {
          guard: 'poolIsElastic',
          actions: ['recordArrival', { type: 'startProcesses', params: { spares: true } }],
        },
        // Elastic pool: as the offers slow down, the spares beyond the target are let go.
        POOL_RESIZE_DUE: { actions: ['letSurplusSparesGo', 'schedulePoolResize'] },
        PROCESSES_RECYCLE_REQUESTED: {
          actions: [
            { type: 'recycleIdleProcesses', params: fromEvent },
            { type: 'startProcesses', params: { spares: true } },
          ],
        },
        // The lifecycle region (first in document order) has just used a process or queued
        // the job. A queued job gets its start now; the spare that replaces a process a job
        // took is started SPARE_REFILL_DELAY after that job's entrypoint runs (JOB_STARTED),
        // so neither the hand-off nor the job's joining its room shares the CPU with a new
        // process booting.
        JOB_ASSIGNED: { actions: { type: 'startProcesses', params: { spares: false } } },
        // With reuse, a process that may come back after its job is replaced only if the job
        // is still running after REUSED_SPARE_REFILL_DELAY, unless its job took the last spare
        // while other jobs run.
        JOB_STARTED: [
          {
            guard: { type: 'reusableProcessLikelyBackInTime', params: fromEvent },
            actions: 'scheduleReusedSpareRefill',
          },
          { actions: 'scheduleSpareRefill' },
        ],
        SPARE_REFILL_DUE: { actions: { type: 'startProcesses', params: { spares: true } } },
        PROCESS_PREWARMED: {
          actions: [
            { type: 'markProcessPrewarmed', params: fromEvent },
            { type: 'startProcesses', params: { spares: true } },
          ],
        },
        PROCESS_EXITED: [
          {
            guard: { type: 'prewarmFailed', params: fromEvent },
            target: 'backingOff',
            actions: [
              { type: 'recordPrewarmFailure', params: fromEvent },
              { type: 'forgetProcess', params: fromEvent },
            ],
          },
          {
            actions: [
              { type: 'forgetProcess', params: fromEvent },
              { type: 'startProcesses', params: { spares: true } },
            ],
          },
        ],
      },
    },
    backingOff: {
      always: { guard: 'isStopping', target: 'closed' },
      after: { SPAWN_RETRY_DELAY: 'warming' },
      on: {
        // New code may fix what made prewarms fail: retry at once.
        PROCESSES_RECYCLE_REQUESTED: {
          target: 'warming',
          actions: { type: 'recycleIdleProcesses', params: fromEvent },
        },
        PROCESS_PREWARMED: { actions: { type: 'markProcessPrewarmed', params: fromEvent } },
        PROCESS_EXITED: [
          {
            guard: { type: 'prewarmFailed', params: fromEvent },
            actions: [
              { type: 'recordPrewarmFailure', params: fromEvent },
              { type: 'forgetProcess', params: fromEvent },
            ],
          },
          { actions: { type: 'forgetProcess', params: fromEvent } },
        ],
      },
    },
    // No spares any more, but jobs queued before the drain still get their processes. A start
    // that failed is replaced while a job waits for it: a stop signal sent to the whole process
    // group can end a process in its first milliseconds, before it ignores such signals
    // (src/job-process/stop-signals-ignored.ts). Each queued job's start deadline bounds it.
    closed: {
      type: 'final',
      on: {
        JOB_ASSIGNED: { actions: { type: 'startProcesses', params: { spares: false } } },
        // No spares while draining: a process back from its job (reuse) takes a queued job
        // or is let go.
        JOB_ENDED: [
          {
            guard: { type: 'keptWithQueuedJob', params: fromEvent },
            actions: { type: 'giveQueuedJob', params: fromEvent },
          },
          {
            guard: { type: 'processKept', params: fromEvent },
            actions: { type: 'retireProcess', params: retiredAs('no spares while draining') },
          },
        ],
        PROCESS_PREWARMED: {
          actions: [
            { type: 'markProcessPrewarmed', params: fromEvent },
            { type: 'startProcesses', params: { spares: false } },
          ],
        },
        PROCESS_EXITED: [
          {
            guard: { type: 'prewarmFailed', params: fromEvent },
            actions: [
              { type: 'forgetProcess', params: fromEvent },
              { type: 'startProcesses', params: { spares: false } },
            ],
          },
          {
            actions: [
              { type: 'forgetProcess', params: fromEvent },
              { type: 'startProcesses', params: { spares: false } },
            ],
          },
        ],
      },
    },
  },
});

/**
 * The worker statechart (docs/architecture.md §2): its states and transitions. Named guards, delays and
 * actions are implemented in `worker.setup.ts`; the `processes` region's states are in
 * `worker.processes.ts`. Two regions run side by side:
 *
 * - `lifecycle`: `connecting → registered { available ⇄ full } → draining → stopped`, with
 *   `reconnecting` beside `registered` while the server link is down. Jobs keep running in
 *   every state: job processes are spawned children of the machine, not of a state.
 * - `processes`: starts a process for each queued job and keeps `numIdleProcesses` prewarmed
 *   spares (`warming`), at most `maxConcurrentStarts` prewarming at once; backs off after failed
 *   prewarms (`backingOff`) instead of respawning in a hot loop; while draining (`closed`) only
 *   queued jobs still get processes. An assigned job with no idle process waits `queued` for the
 *   next process to get warm, until its start deadline.
 *
 * Pure: no I/O. The server link, load sampling, request decisions and processes are actors
 * provided from `src/` with `.provide()`; time comes from the actor system's clock.
 */
import { enqueueActions, not } from 'xstate';
import { fromEvent } from './params.ts';
import { fullDecline } from './worker.context.ts';
import { processesRegion } from './worker.processes.ts';
import { workerSetup } from './worker.setup.ts';

export type { WorkerEmitted, WorkerEvent } from './worker.contract.ts';

/** A stop (drain or final) for the event's reason; the first reason given is kept. */
const stopsAt = <T extends string>(target: T) => ({
  target,
  actions: { type: 'recordStopReason' as const, params: fromEvent },
});

/** The link is down: count the failure and wait to reconnect. */
const reconnects = {
  target: 'reconnecting' as const,
  actions: { type: 'recordConnectFailure' as const, params: fromEvent },
};

export const workerMachine = workerSetup.createMachine({
  id: 'worker',
  type: 'parallel',
  context: ({ input }) => ({
    options: input.options,
    serverUrl: input.serverUrl,
    workerId: undefined,
    load: 0,
    connectFailures: 0,
    prewarmFailures: 0,
    lastPrewarmFailure: undefined,
    startEstimate: input.options.initialStartEstimate,
    spareMemoryEstimate: undefined,
    arrivals: [],
    procs: {},
    jobs: {},
    nextProcNumber: 1,
    generation: 0,
    lastError: undefined,
    stopReason: undefined,
    refusal: undefined,
  }),
  states: {
    lifecycle: {
      initial: 'connecting',
      invoke: [
        { id: 'link', src: 'serverLink', input: ({ context }) => ({ url: context.serverUrl }) },
        { id: 'load', src: 'loadSampler' },
      ],
      // Events every lifecycle state handles the same way; states override where they differ.
      // They live here, not on the parallel root, so the `processes` region never runs them twice.
      on: {
        FORCE_STOP_REQUESTED: stopsAt('.stopped'),
        LOAD_SAMPLED: { actions: { type: 'recordLoad', params: fromEvent } },
        AVAILABILITY_REQUESTED: {
          actions: {
            type: 'declineOffer',
            params: ({ event }) => ({
              job: event.job,
              decision: 'unavailable',
              reason: 'not available',
            }),
          },
        },
        REQUEST_ACCEPTED: {
          guard: { type: 'isKnownJob', params: fromEvent },
          actions: { type: 'answerAccepted', params: fromEvent },
        },
        REQUEST_DECLINED: {
          guard: { type: 'isKnownJob', params: fromEvent },
          actions: { type: 'answerDeclined', params: fromEvent },
        },
        ASSIGNMENT_TIMED_OUT: {
          guard: { type: 'isKnownJob', params: fromEvent },
          actions: { type: 'releaseSlot', params: fromEvent },
        },
        JOB_ASSIGNED: [
          {
            guard: {
              type: 'isAwaitingAssignment',
              params: ({ event }) => ({ jobId: event.job.id }),
            },
            actions: { type: 'launchJob', params: fromEvent },
          },
          {
            actions: { type: 'refuseAssignment', params: ({ event }) => ({ jobId: event.job.id }) },
          },
        ],
        JOB_START_DEADLINE_PASSED: {
          guard: { type: 'isQueued', params: fromEvent },
          actions: { type: 'failQueuedJob', params: fromEvent },
        },
        JOB_TERMINATED: { actions: { type: 'terminateJob', params: fromEvent } },
        JOB_STARTED: { actions: { type: 'markJobStarted', params: fromEvent } },
        JOB_ENDED: { actions: { type: 'settleJobEnded', params: fromEvent } },
      },
      states: {
        connecting: {
          tags: 'connecting',
          entry: 'connectLink',
          on: {
            REGISTERED: {
              target: 'registered',
              actions: { type: 'recordRegistration', params: fromEvent },
            },
            SERVER_LOST: reconnects,
            SERVER_REFUSED: {
              target: 'stopped',
              actions: [
                { type: 'recordStopReason', params: fromEvent },
                { type: 'recordRefusal', params: fromEvent },
              ],
            },
            DRAIN_REQUESTED: stopsAt('draining'),
          },
          after: {
            REGISTER_TIMEOUT: {
              target: 'reconnecting',
              actions: [
                {
                  type: 'recordConnectFailure',
                  params: { reason: 'no register reply from the server in time' },
                },
                'disconnectLink',
              ],
            },
          },
        },
        registered: {
          initial: 'available',
          entry: 'scheduleStatusTick',
          exit: 'cancelStatusTick',
          on: {
            SERVER_LOST: reconnects,
            DRAIN_REQUESTED: stopsAt('draining'),
            JOB_SIMULATION_REQUESTED: {
              actions: { type: 'requestJobSimulation', params: fromEvent },
            },
          },
          states: {
            available: {
              tags: 'available',
              // Entered on registration before `always` may move on to `full`: report
              // "available" only when it is true, so the server never sees a false offer.
              entry: enqueueActions(({ enqueue, check }) => {
                if (check('takesOffers')) {
                  enqueue({ type: 'reportStatus', params: { status: 'available' } });
                }
              }),
              always: { guard: not('takesOffers'), target: 'full' },
              on: {
                AVAILABILITY_REQUESTED: [
                  {
                    guard: 'canTakeJob',
                    actions: { type: 'reserveSlotAndDecide', params: fromEvent },
                  },
                  {
                    // `startDelay` when only the start delay stands in the way, else `full`.
                    actions: {
                      type: 'declineOffer',
                      params: ({ context, event }) => ({ job: event.job, ...fullDecline(context) }),
                    },
                  },
                ],
                STATUS_TICKED: {
                  actions: [
                    { type: 'reportStatus', params: { status: 'available' } },
                    'scheduleStatusTick',
                  ],
                },
              },
            },
            full: {
              tags: 'full',
              entry: { type: 'reportStatus', params: { status: 'full' } },
              always: { guard: 'takesOffers', target: 'available' },
              on: {
                AVAILABILITY_REQUESTED: {
                  actions: {
                    type: 'declineOffer',
                    params: ({ context, event }) => ({ job: event.job, ...fullDecline(context) }),
                  },
                },
                STATUS_TICKED: {
                  actions: [
                    { type: 'reportStatus', params: { status: 'full' } },
                    'scheduleStatusTick',
                  ],
                },
              },
            },
          },
        },
        reconnecting: {
          tags: 'reconnecting',
          after: { RECONNECT_DELAY: 'connecting' },
          on: {
            DRAIN_REQUESTED: stopsAt('draining'),
          },
        },
        draining: {
          tags: 'draining',
          entry: [{ type: 'reportStatus', params: { status: 'full' } }, 'declineUndecidedRequests'],
          always: { guard: 'noActiveJobs', target: 'stopped' },
          on: {
            // A second drain request (second signal) stops at once.
            DRAIN_REQUESTED: stopsAt('stopped'),
            // No reconnect while draining: nothing new is accepted, and a server forgets a lost
            // worker's jobs, so their later status reports would be ignored anyway.
            SERVER_LOST: { actions: { type: 'recordConnectFailure', params: fromEvent } },
            // Defensive: entering `draining` declines every request being decided, so no known
            // job can still be accepted here; if one were, it would be declined, never taken.
            REQUEST_ACCEPTED: {
              guard: { type: 'isKnownJob', params: fromEvent },
              actions: {
                type: 'answerDeclined',
                params: ({ event }) => ({
                  jobId: event.jobId,
                  decision: 'draining',
                  reason: 'draining',
                }),
              },
            },
          },
          initial: 'waitingForJobs',
          states: {
            waitingForJobs: { after: { DRAIN_TIMEOUT: 'endingJobs' } },
            endingJobs: {
              entry: { type: 'shutdownAllJobs', params: { reason: 'drain timeout' } },
              after: { SHUTDOWN_GRACE: '#worker.lifecycle.stopped' },
            },
          },
        },
        stopped: {
          tags: 'stopped',
          type: 'final',
          entry: [
            'reportRemainingJobsFailed',
            { type: 'killAllProcesses', params: { reason: 'worker stopped' } },
            'disconnectLink',
            'emitStopped',
          ],
        },
      },
    },
    processes: processesRegion,
  },
});

/**
 * The worker statechart (DESIGN §2): its states and transitions. Named guards, delays and
 * actions are implemented in `worker.setup.ts`. Two regions run side by side:
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
import { enqueueActions, not } from 'xstate';
import { fromEvent } from './params.ts';
import { workerSetup } from './worker.setup.ts';

export type { WorkerEmitted, WorkerEvent, WorkerInput } from './worker.contract.ts';

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
    procs: {},
    jobs: {},
    nextProcNumber: 1,
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
        FORCE_STOP_REQUESTED: {
          target: '.stopped',
          actions: { type: 'recordStopReason', params: fromEvent },
        },
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
        JOB_TERMINATED: { actions: { type: 'terminateJob', params: fromEvent } },
        JOB_STARTED: { actions: { type: 'markJobStarted', params: fromEvent } },
        JOB_ENDED: { actions: { type: 'reportJobEnded', params: fromEvent } },
      },
      states: {
        connecting: {
          entry: 'connectLink',
          on: {
            REGISTERED: {
              target: 'registered',
              actions: { type: 'recordRegistration', params: fromEvent },
            },
            SERVER_LOST: {
              target: 'reconnecting',
              actions: { type: 'recordConnectFailure', params: fromEvent },
            },
            SERVER_REFUSED: {
              target: 'stopped',
              actions: [
                { type: 'recordStopReason', params: fromEvent },
                { type: 'recordRefusal', params: fromEvent },
              ],
            },
            DRAIN_REQUESTED: {
              target: 'draining',
              actions: { type: 'recordStopReason', params: fromEvent },
            },
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
            SERVER_LOST: {
              target: 'reconnecting',
              actions: { type: 'recordConnectFailure', params: fromEvent },
            },
            DRAIN_REQUESTED: {
              target: 'draining',
              actions: { type: 'recordStopReason', params: fromEvent },
            },
            JOB_SIMULATION_REQUESTED: {
              actions: { type: 'requestJobSimulation', params: fromEvent },
            },
          },
          states: {
            available: {
              // Entered on registration before `always` may move on to `full`: report
              // "available" only when it is true, so the server never sees a false offer.
              entry: enqueueActions(({ enqueue, check }) => {
                if (check('canTakeJob')) {
                  enqueue({ type: 'reportStatus', params: { status: 'available' } });
                }
              }),
              always: { guard: not('canTakeJob'), target: 'full' },
              on: {
                AVAILABILITY_REQUESTED: [
                  {
                    guard: 'canTakeJob',
                    actions: { type: 'reserveSlotAndDecide', params: fromEvent },
                  },
                  {
                    actions: {
                      type: 'declineOffer',
                      params: ({ event }) => ({ job: event.job, decision: 'full', reason: 'full' }),
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
              entry: { type: 'reportStatus', params: { status: 'full' } },
              always: { guard: 'canTakeJob', target: 'available' },
              on: {
                AVAILABILITY_REQUESTED: {
                  actions: {
                    type: 'declineOffer',
                    params: ({ event }) => ({ job: event.job, decision: 'full', reason: 'full' }),
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
          after: { RECONNECT_DELAY: 'connecting' },
          on: {
            DRAIN_REQUESTED: {
              target: 'draining',
              actions: { type: 'recordStopReason', params: fromEvent },
            },
          },
        },
        draining: {
          entry: [{ type: 'reportStatus', params: { status: 'full' } }, 'declineUndecidedRequests'],
          always: { guard: 'noActiveJobs', target: 'stopped' },
          on: {
            // A second drain request (second signal) stops at once.
            DRAIN_REQUESTED: {
              target: 'stopped',
              actions: { type: 'recordStopReason', params: fromEvent },
            },
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
    processes: {
      initial: 'warming',
      on: {
        'xstate.done.state.worker.lifecycle': '.closed',
        DRAIN_REQUESTED: '.closed',
      },
      states: {
        warming: {
          entry: 'spawnIdleProcesses',
          on: {
            PROCESSES_RECYCLE_REQUESTED: {
              actions: [{ type: 'recycleIdleProcesses', params: fromEvent }, 'spawnIdleProcesses'],
            },
            // The lifecycle region (first in document order) has just used a process: refill.
            JOB_ASSIGNED: { actions: 'spawnIdleProcesses' },
            PROCESS_PREWARMED: {
              actions: [{ type: 'markProcessPrewarmed', params: fromEvent }, 'spawnIdleProcesses'],
            },
            PROCESS_EXITED: [
              {
                guard: { type: 'prewarmFailed', params: fromEvent },
                target: 'backingOff',
                actions: ['recordPrewarmFailure', { type: 'forgetProcess', params: fromEvent }],
              },
              { actions: [{ type: 'forgetProcess', params: fromEvent }, 'spawnIdleProcesses'] },
            ],
          },
        },
        backingOff: {
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
                actions: ['recordPrewarmFailure', { type: 'forgetProcess', params: fromEvent }],
              },
              { actions: { type: 'forgetProcess', params: fromEvent } },
            ],
          },
        },
        closed: {
          type: 'final',
          on: {
            PROCESS_PREWARMED: { actions: { type: 'markProcessPrewarmed', params: fromEvent } },
            PROCESS_EXITED: { actions: { type: 'forgetProcess', params: fromEvent } },
          },
        },
      },
    },
  },
});

/**
 * An abstract model of the worker, written from docs/architecture.md §2 and the README (not from the
 * chart), for a worker configured with one job slot (`maxJobs: 1`) and one warm spare process
 * (`numIdleProcesses: 1`). It states what must be true after each stimulus:
 *
 * - where the worker is (`connecting`, `registered.available|full`, `reconnecting`,
 *   `draining.waitingForJobs|endingJobs`, `stopped`; processes `warming|backingOff|closed`);
 * - whether an offer may be accepted: registered, load below the threshold, the slot free, and a
 *   warm process or the right to start one (not backing off after failed prewarms);
 * - the one job's phase, the spare process's phase, and the load;
 * - what the server and the processes must have been told in that step (`effects`):
 *   `connect`, `disconnect`, `accept`, `decline`, `job:running|success|failed`, `simulate`,
 *   `launch` and `shutdownJob` (to a process), `spawn` (a new process).
 *
 * No invoke, no delays: every deadline is an event (REGISTER_TIMEOUT, STATUS_TICK, …).
 */
import { and, assign, not, or, setup, stateIn } from 'xstate';

export type ModelJob = 'none' | 'deciding' | 'accepted' | 'launching' | 'running' | 'endingJob';
export type ModelSpare = 'none' | 'prewarming' | 'idle';

export interface WorkerModelContext {
  job: ModelJob;
  spare: ModelSpare;
  load: 'low' | 'high';
  effects: string[];
}

const EVENT_TYPES = [
  'REGISTER',
  'LOSE_SERVER',
  'REFUSE',
  'REGISTER_TIMEOUT',
  'RECONNECT_DELAY',
  'DRAIN',
  'DRAIN_TIMEOUT',
  'SHUTDOWN_GRACE',
  'FORCE_STOP',
  'LOAD_HIGH',
  'LOAD_LOW',
  'STATUS_TICK',
  'SIMULATE',
  'OFFER',
  'ACCEPT',
  'DECLINE',
  'DECIDE_FAILS',
  'REQUEST_TIMEOUT',
  'ASSIGN',
  'STRAY_ASSIGN',
  'ASSIGNMENT_TIMEOUT',
  'TERMINATE',
  'JOB_ENDS',
  'JOB_CRASH',
  'JOB_PROC_WARM_OK',
  'JOB_PROC_WARM_FAIL',
  'SPARE_WARM_OK',
  'SPARE_WARM_FAIL',
  'SPARE_CRASH',
  'SPAWN_RETRY',
  'RECYCLE',
] as const;
export type WorkerModelEventType = (typeof EVENT_TYPES)[number];
export type WorkerModelEvent = { type: WorkerModelEventType };

type Ctx = WorkerModelContext;

export const workerModel = setup({
  types: { context: {} as Ctx, events: {} as WorkerModelEvent },
  guards: {
    /** The worker may take an offer (docs/architecture.md §2): load below the threshold, the slot free, and a
     * warm process or the right to start one. */
    mayAccept: and([
      'lowLoadAndFreeSlot',
      or(['spareIdle', not(stateIn({ processes: 'backingOff' }))]),
    ]),
    lowLoadAndFreeSlot: ({ context }) => context.load === 'low' && context.job === 'none',
    spareIdle: ({ context }) => context.spare === 'idle',
    jobIs: ({ context }, p: { phases: ModelJob[] }) => p.phases.includes(context.job),
    spareIs: ({ context }, p: { phases: ModelSpare[] }) => p.phases.includes(context.spare),
    loadIs: ({ context }, p: { load: 'low' | 'high' }) => context.load === p.load,
    noJob: ({ context }) => context.job === 'none',
  },
  actions: {
    effects: assign((_, p: { list: string[] }) => ({ effects: p.list })),
    alsoEffects: assign(({ context }, p: { list: string[] }) => ({
      effects: [...context.effects, ...p.list],
    })),
    setLoad: assign((_, p: { load: 'low' | 'high' }) => ({ load: p.load, effects: [] })),
    setJob: assign((_, p: { job: ModelJob; effects: string[] }) => ({
      job: p.job,
      effects: p.effects,
    })),
    /** DRAIN: a request still being decided is declined at once. */
    startDrain: assign(({ context }) =>
      context.job === 'deciding'
        ? { job: 'none' as const, effects: ['decline'] }
        : { effects: [] as string[] },
    ),
    /** Drain deadline: a running job is asked to end; a job still waiting for its process fails. */
    endJobsAtDeadline: assign(({ context }) => {
      if (context.job === 'running') return { job: 'endingJob' as const, effects: ['shutdownJob'] };
      if (context.job === 'launching') return { job: 'none' as const, effects: ['job:failed'] };
      return { effects: [] as string[] };
    }),
    /** The server ends a job: a running one is asked to end; one not yet running is dropped. */
    terminateJob: assign(({ context }) => {
      if (context.job === 'running') return { job: 'endingJob' as const, effects: ['shutdownJob'] };
      if (context.job === 'launching') return { job: 'none' as const, effects: ['job:failed'] };
      return { job: 'none' as const, effects: [] as string[] };
    }),
    /** The assignment arrives: the warm spare takes the job, or a process is started for it. */
    assignJob: assign(({ context }) =>
      context.spare === 'idle'
        ? { job: 'running' as const, spare: 'none' as const, effects: ['launch', 'job:running'] }
        : { job: 'launching' as const, effects: ['spawn'] },
    ),
    /** The pool keeps one spare while it may start processes. */
    refillSpare: assign(({ context }) =>
      context.spare === 'none'
        ? { spare: 'prewarming' as const, effects: [...context.effects, 'spawn'] }
        : {},
    ),
    spareGone: assign({ spare: 'none' as const, effects: [] }),
    /** Recycle: the spare is replaced by a fresh one. */
    replaceSpare: assign({ spare: 'prewarming' as const, effects: ['spawn'] }),
    clearEffects: assign({ effects: [] }),
    /**
     * Stopping: the server hears at once about a job still held (its process dies with the
     * worker): declined if still being decided, failed otherwise; then the link is closed.
     */
    stop: assign(({ context }) => {
      const held: Record<ModelJob, string[]> = {
        none: [],
        deciding: ['decline'],
        accepted: ['job:failed'],
        launching: ['job:failed'],
        running: ['job:failed'],
        endingJob: ['job:failed'],
      };
      return { job: 'none' as const, effects: [...held[context.job], 'disconnect'] };
    }),
  },
}).createMachine({
  id: 'workerModel',
  type: 'parallel',
  context: { job: 'none', spare: 'prewarming', load: 'low', effects: ['connect', 'spawn'] },
  states: {
    lifecycle: {
      initial: 'connecting',
      on: {
        FORCE_STOP: { target: '.stopped', actions: 'stop' },
        LOAD_HIGH: {
          guard: { type: 'loadIs', params: { load: 'low' } },
          actions: { type: 'setLoad', params: { load: 'high' } },
        },
        LOAD_LOW: {
          guard: { type: 'loadIs', params: { load: 'high' } },
          actions: { type: 'setLoad', params: { load: 'low' } },
        },
        ACCEPT: {
          guard: { type: 'jobIs', params: { phases: ['deciding'] } },
          actions: { type: 'setJob', params: { job: 'accepted', effects: ['accept'] } },
        },
        DECLINE: {
          guard: { type: 'jobIs', params: { phases: ['deciding'] } },
          actions: { type: 'setJob', params: { job: 'none', effects: ['decline'] } },
        },
        DECIDE_FAILS: {
          guard: { type: 'jobIs', params: { phases: ['deciding'] } },
          actions: { type: 'setJob', params: { job: 'none', effects: ['decline'] } },
        },
        REQUEST_TIMEOUT: {
          guard: { type: 'jobIs', params: { phases: ['deciding'] } },
          actions: { type: 'setJob', params: { job: 'none', effects: ['decline'] } },
        },
        ASSIGNMENT_TIMEOUT: {
          guard: { type: 'jobIs', params: { phases: ['accepted'] } },
          actions: { type: 'setJob', params: { job: 'none', effects: [] } },
        },
        JOB_ENDS: {
          guard: { type: 'jobIs', params: { phases: ['running', 'endingJob'] } },
          actions: { type: 'setJob', params: { job: 'none', effects: ['job:success'] } },
        },
        JOB_CRASH: {
          guard: { type: 'jobIs', params: { phases: ['running', 'endingJob'] } },
          actions: { type: 'setJob', params: { job: 'none', effects: ['job:failed'] } },
        },
        JOB_PROC_WARM_OK: {
          guard: { type: 'jobIs', params: { phases: ['launching'] } },
          actions: {
            type: 'setJob',
            params: { job: 'running', effects: ['launch', 'job:running'] },
          },
        },
        JOB_PROC_WARM_FAIL: {
          guard: { type: 'jobIs', params: { phases: ['launching'] } },
          actions: { type: 'setJob', params: { job: 'none', effects: ['job:failed'] } },
        },
        // Offers outside `registered` are answered at once: no.
        OFFER: { actions: { type: 'effects', params: { list: ['decline'] } } },
      },
      states: {
        connecting: {
          on: {
            REGISTER: { target: 'registered', actions: { type: 'effects', params: { list: [] } } },
            LOSE_SERVER: {
              target: 'reconnecting',
              actions: { type: 'effects', params: { list: [] } },
            },
            REGISTER_TIMEOUT: {
              target: 'reconnecting',
              actions: { type: 'effects', params: { list: ['disconnect'] } },
            },
            REFUSE: { target: 'stopped', actions: 'stop' },
            DRAIN: { target: 'draining', actions: 'startDrain' },
            SIMULATE: { actions: { type: 'effects', params: { list: [] } } },
          },
        },
        registered: {
          initial: 'available',
          on: {
            LOSE_SERVER: {
              target: 'reconnecting',
              actions: { type: 'effects', params: { list: [] } },
            },
            DRAIN: { target: 'draining', actions: 'startDrain' },
            STATUS_TICK: { actions: { type: 'effects', params: { list: [] } } },
            SIMULATE: { actions: { type: 'effects', params: { list: ['simulate'] } } },
            ASSIGN: {
              guard: { type: 'jobIs', params: { phases: ['accepted'] } },
              actions: 'assignJob',
            },
            STRAY_ASSIGN: { actions: { type: 'effects', params: { list: ['job:failed'] } } },
            TERMINATE: {
              guard: {
                type: 'jobIs',
                params: { phases: ['deciding', 'accepted', 'launching', 'running'] },
              },
              actions: 'terminateJob',
            },
          },
          states: {
            available: {
              always: { guard: not('mayAccept'), target: 'full' },
              on: {
                OFFER: { actions: { type: 'setJob', params: { job: 'deciding', effects: [] } } },
              },
            },
            full: {
              always: { guard: 'mayAccept', target: 'available' },
              on: { OFFER: { actions: { type: 'effects', params: { list: ['decline'] } } } },
            },
          },
        },
        reconnecting: {
          on: {
            RECONNECT_DELAY: {
              target: 'connecting',
              actions: { type: 'effects', params: { list: ['connect'] } },
            },
            DRAIN: { target: 'draining', actions: 'startDrain' },
            SIMULATE: { actions: { type: 'effects', params: { list: [] } } },
          },
        },
        draining: {
          initial: 'waitingForJobs',
          // Nothing left to wait for: stop.
          always: {
            guard: 'noJob',
            target: 'stopped',
            actions: { type: 'alsoEffects', params: { list: ['disconnect'] } },
          },
          on: {
            DRAIN: { target: 'stopped', actions: 'stop' },
            LOSE_SERVER: { actions: { type: 'effects', params: { list: [] } } },
            ASSIGN: {
              guard: { type: 'jobIs', params: { phases: ['accepted'] } },
              actions: 'assignJob',
            },
            TERMINATE: {
              guard: { type: 'jobIs', params: { phases: ['accepted', 'launching', 'running'] } },
              actions: 'terminateJob',
            },
          },
          states: {
            waitingForJobs: {
              on: { DRAIN_TIMEOUT: { target: 'endingJobs', actions: 'endJobsAtDeadline' } },
            },
            endingJobs: {
              on: {
                SHUTDOWN_GRACE: { target: '#workerModel.lifecycle.stopped', actions: 'stop' },
              },
            },
          },
        },
        stopped: { type: 'final' },
      },
    },
    processes: {
      initial: 'warming',
      on: {
        // Draining: no new processes.
        DRAIN: '.closed',
        SPARE_WARM_OK: {
          guard: { type: 'spareIs', params: { phases: ['prewarming'] } },
          actions: assign({ spare: 'idle' as const, effects: [] }),
        },
      },
      states: {
        warming: {
          // Stopped: no new processes.
          always: { guard: stateIn({ lifecycle: 'stopped' }), target: 'closed' },
          on: {
            // The lifecycle region (first) has just handed the spare a job: start a new spare.
            ASSIGN: {
              guard: and([
                { type: 'jobIs', params: { phases: ['accepted'] } },
                stateIn({ lifecycle: 'registered' }),
              ]),
              actions: 'refillSpare',
            },
            SPARE_WARM_FAIL: {
              guard: { type: 'spareIs', params: { phases: ['prewarming'] } },
              target: 'backingOff',
              actions: 'spareGone',
            },
            // A process started for a job that fails its prewarm fails that job (the lifecycle
            // region reports it) and is a failed prewarm like any other: back off.
            JOB_PROC_WARM_FAIL: {
              guard: { type: 'jobIs', params: { phases: ['launching'] } },
              target: 'backingOff',
            },
            SPARE_CRASH: {
              guard: { type: 'spareIs', params: { phases: ['idle'] } },
              actions: ['spareGone', 'refillSpare'],
            },
            RECYCLE: { actions: 'replaceSpare' },
          },
        },
        backingOff: {
          always: { guard: stateIn({ lifecycle: 'stopped' }), target: 'closed' },
          on: {
            SPAWN_RETRY: { target: 'warming', actions: ['clearEffects', 'refillSpare'] },
            RECYCLE: { target: 'warming', actions: 'replaceSpare' },
            SPARE_WARM_FAIL: {
              guard: { type: 'spareIs', params: { phases: ['prewarming'] } },
              actions: 'spareGone',
            },
            SPARE_CRASH: {
              guard: { type: 'spareIs', params: { phases: ['idle'] } },
              actions: 'spareGone',
            },
          },
        },
        closed: {
          type: 'final',
          on: {
            SPARE_WARM_FAIL: {
              guard: { type: 'spareIs', params: { phases: ['prewarming'] } },
              actions: 'spareGone',
            },
            SPARE_CRASH: {
              guard: { type: 'spareIs', params: { phases: ['idle'] } },
              actions: 'spareGone',
            },
          },
        },
      },
    },
  },
});

export const WORKER_MODEL_EVENTS = EVENT_TYPES;

/** A model state's identity: where it is and what it holds; never the effects. */
export function serializeWorkerModel(s: { value: unknown; context: WorkerModelContext }): string {
  const { job, spare, load } = s.context;
  return JSON.stringify([s.value, job, spare, load]);
}

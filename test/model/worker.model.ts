/**
 * An abstract model of the worker, written from docs/architecture.md §2 and the README (not from the
 * chart), for a worker configured with one job slot (`maxJobs: 1`) and one warm spare process
 * (`numIdleProcesses: 1`), starts unbounded and always in time. It states what must be true
 * after each stimulus:
 *
 * - where the worker is (`connecting`, `registered.available|full`, `reconnecting`,
 *   `draining.waitingForJobs|endingJobs`, `stopped`; processes `warming|backingOff|closed`);
 * - whether an offer may be accepted: registered, load below the threshold, the slot free, and a
 *   warm process or the right to start one (not backing off after failed prewarms);
 * - the pool: processes are counted, not named. While warming it wants one spare plus one
 *   process per queued job; while draining only the queued job's; backing off, none. A process
 *   that gets warm runs the queued job if there is one, else it is idle;
 * - the one job's phase (an assigned job with no idle process is `queued` until a process gets
 *   warm or its start deadline passes), the processes starting and idle, and the load;
 * - process reuse (`jobsPerProcess: 2`): a job that ends cleanly (JOB_ENDS_CLEAN) leaves its
 *   process idle for another job if it was that process's first job and no reload replaced the
 *   code meanwhile, unless the worker is draining; such a kept process is checked every
 *   `surplusIdleTimeout` (IDLE_CHECK) and let go once more processes are idle than the one spare
 *   plus a job about to need one. It is always the first idle process, so the next job takes it;
 * - what the server and the processes must have been told in that step (`effects`):
 *   `connect`, `disconnect`, `accept`, `decline`, `job:running|success|failed`, `simulate`,
 *   `launch` and `shutdownJob` (to a process), `spawn` (a new process).
 *
 * No invoke, no delays: every deadline is an event (REGISTER_TIMEOUT, STATUS_TICK, …).
 */
import { and, assign, not, or, setup, stateIn } from 'xstate';

export type ModelJob = 'none' | 'deciding' | 'accepted' | 'queued' | 'running' | 'endingJob';

export interface WorkerModelContext {
  job: ModelJob;
  /** Processes prewarming (none of them has a job: jobs go to warm processes only). */
  starting: number;
  /** Warm processes without a job. */
  idle: number;
  /** One of the idle processes is a kept one (it ran a job), with its idle check armed. */
  keptIdle: boolean;
  /** The running job's process runs its first job (`jobsPerProcess: 2`): it may be kept. */
  runningKeepable: boolean;
  /** A reload replaced the code since the running job's process started: it is not kept. */
  runningStale: boolean;
  /** A started job's spare refill is due (`spareRefillDelay` after its entrypoint ran). */
  refillPending: boolean;
  /** The same, for a job in a process that may be reused: later (`reusedSpareRefillDelay`). */
  refillLatePending: boolean;
  load: 'low' | 'high';
  effects: string[];
}

export type WorkerModelEventType =
  | 'REGISTER'
  | 'LOSE_SERVER'
  | 'REFUSE'
  | 'REGISTER_TIMEOUT'
  | 'RECONNECT_DELAY'
  | 'DRAIN'
  | 'DRAIN_TIMEOUT'
  | 'SHUTDOWN_GRACE'
  | 'FORCE_STOP'
  | 'LOAD_HIGH'
  | 'LOAD_LOW'
  | 'STATUS_TICK'
  | 'SIMULATE'
  | 'OFFER'
  | 'ACCEPT'
  | 'DECLINE'
  | 'DECIDE_FAILS'
  | 'REQUEST_TIMEOUT'
  | 'ASSIGN'
  | 'STRAY_ASSIGN'
  | 'ASSIGNMENT_TIMEOUT'
  | 'TERMINATE'
  | 'START_DEADLINE'
  | 'JOB_ENDS'
  | 'JOB_ENDS_CLEAN'
  | 'JOB_ENDS_CLEAN_STALE'
  | 'IDLE_CHECK'
  | 'IDLE_CHECK_SURPLUS'
  | 'SPARE_REFILL'
  | 'SPARE_REFILL_LATE'
  | 'JOB_CRASH'
  | 'PROC_WARM_OK'
  | 'PROC_WARM_FAIL'
  | 'SPARE_CRASH'
  | 'SPAWN_RETRY'
  | 'RECYCLE';
export type WorkerModelEvent = { type: WorkerModelEventType };

type Ctx = WorkerModelContext;

const spawns = (n: number): string[] => Array.from({ length: Math.max(0, n) }, () => 'spawn');

/** What the pool starts: one process per queued job, plus one spare when `spares`. */
function filled(context: Ctx, spares: boolean): Partial<Ctx> {
  const wanted = (context.job === 'queued' ? 1 : 0) + (spares ? 1 : 0);
  const missing = wanted - context.starting - context.idle;
  if (missing <= 0) return {};
  return {
    starting: context.starting + missing,
    effects: [...context.effects, ...spawns(missing)],
  };
}

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
    spareIdle: ({ context }) => context.idle > 0,
    jobIs: ({ context }, p: { phases: ModelJob[] }) => p.phases.includes(context.job),
    anyStarting: ({ context }) => context.starting > 0,
    anyIdle: ({ context }) => context.idle > 0,
    loadIs: ({ context }, p: { load: 'low' | 'high' }) => context.load === p.load,
    noJob: ({ context }) => context.job === 'none',
    keptIdle: ({ context }) => context.keptIdle,
    /** The running job's process would be kept but runs replaced code. */
    keptButStale: ({ context }) => context.runningKeepable && context.runningStale,
    /** A job runs, and its process may be kept or exits: not the reload case. */
    endsUnlessStale: ({ context }) =>
      (context.job === 'running' || context.job === 'endingJob') &&
      !(context.runningKeepable && context.runningStale),
    /** A job runs whose process would be kept but runs replaced code. */
    endsKeptButStale: ({ context }) =>
      (context.job === 'running' || context.job === 'endingJob') &&
      context.runningKeepable &&
      context.runningStale,
    refillPending: ({ context }) => context.refillPending,
    refillLatePending: ({ context }) => context.refillLatePending,
    /** More processes are idle than the one spare plus a job about to need one. */
    surplusIdle: ({ context }) => {
      const waiting = context.job === 'deciding' || context.job === 'accepted' ? 1 : 0;
      return context.idle > 1 + waiting;
    },
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
    /** Drain deadline: a running job is asked to end; a job still queued fails. */
    endJobsAtDeadline: assign(({ context }) => {
      if (context.job === 'running') return { job: 'endingJob' as const, effects: ['shutdownJob'] };
      if (context.job === 'queued') return { job: 'none' as const, effects: ['job:failed'] };
      return { effects: [] as string[] };
    }),
    /** The server ends a job: a running one is asked to end; a queued one fails; else dropped. */
    terminateJob: assign(({ context }) => {
      if (context.job === 'running') return { job: 'endingJob' as const, effects: ['shutdownJob'] };
      if (context.job === 'queued') return { job: 'none' as const, effects: ['job:failed'] };
      return { job: 'none' as const, effects: [] as string[] };
    }),
    /**
     * The assignment arrives: an idle process takes the job (a kept one first: it is the oldest
     * idle), or the job is queued.
     */
    assignJob: assign(({ context }) =>
      context.idle > 0
        ? {
            job: 'running' as const,
            idle: context.idle - 1,
            keptIdle: false,
            runningKeepable: !context.keptIdle,
            runningStale: false,
            effects: ['launch', 'job:running'],
          }
        : { job: 'queued' as const, effects: [] as string[] },
    ),
    /** A clean end: the process stays idle when it may (warming or backing off, not draining). */
    keepProcess: assign(({ context }) =>
      context.runningKeepable && !context.runningStale
        ? { idle: context.idle + 1, keptIdle: true }
        : {},
    ),
    /** The kept process's idle check when it is a surplus: it is let go. */
    retireKept: assign(({ context }) => ({
      idle: context.idle - 1,
      keptIdle: false,
      effects: [] as string[],
    })),
    /** Starts what the pool lacks: one per queued job, plus one spare when `spares`. */
    fillPool: assign(({ context }, p: { spares: boolean }) => filled(context, p.spares)),
    /**
     * After an assignment: the queued job's process now; a job that runs at once has its spare
     * refill scheduled (`assignJob`, lifecycle region, first, has already moved the job on).
     */
    fillPoolAfterAssignment: assign(({ context }) => {
      const runs = context.job === 'running';
      return {
        ...filled(context, false),
        // A fresh process may be reused after this job: its refill comes later. (The chart
        // replaces a spare sooner when a job took the last one while others run: a burst; the
        // model runs one job at a time, so its job is always a lone one.)
        refillPending: context.refillPending || (runs && !context.runningKeepable),
        refillLatePending: context.refillLatePending || (runs && context.runningKeepable),
      };
    }),
    /** The refill after a job started: what the pool lacks is started now. */
    refill: assign(({ context }) => ({
      refillPending: false,
      effects: [],
      ...filled({ ...context, effects: [] }, true),
    })),
    refillLate: assign(({ context }) => ({
      refillLatePending: false,
      effects: [],
      ...filled({ ...context, effects: [] }, true),
    })),
    /** The refill comes while the pool is not warming: nothing starts. */
    dropRefill: assign({ refillPending: false, effects: [] }),
    dropRefillLate: assign({ refillLatePending: false, effects: [] }),

    /** A process gets warm: it runs the queued job, or is idle. */
    processWarm: assign(({ context }, p: { refills: boolean }) =>
      context.job === 'queued'
        ? {
            starting: context.starting - 1,
            job: 'running' as const,
            runningKeepable: true,
            runningStale: false,
            // The job started in a fresh process (it may be reused): its refill comes later.
            refillLatePending: context.refillLatePending || p.refills,
            effects: ['launch', 'job:running'],
          }
        : { starting: context.starting - 1, idle: context.idle + 1, effects: [] as string[] },
    ),
    processFailed: assign(({ context }) => ({ starting: context.starting - 1, effects: [] })),
    /** An idle process crashes: the kept one if there is one (it is the first idle). */
    idleCrashed: assign(({ context }) => ({
      idle: context.idle - 1,
      keptIdle: false,
      effects: [],
    })),
    /**
     * Recycle: every process without a job is let go (new ones follow); the running job's
     * process now runs old code and is not kept after it.
     */
    dropSpares: assign(({ context }) => ({
      starting: 0,
      idle: 0,
      keptIdle: false,
      runningStale: context.job === 'running' || context.job === 'endingJob',
      effects: [],
    })),
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
        queued: ['job:failed'],
        running: ['job:failed'],
        endingJob: ['job:failed'],
      };
      return { job: 'none' as const, effects: [...held[context.job], 'disconnect'] };
    }),
  },
}).createMachine({
  id: 'workerModel',
  type: 'parallel',
  context: {
    job: 'none',
    starting: 1,
    idle: 0,
    keptIdle: false,
    runningKeepable: false,
    runningStale: false,
    load: 'low',
    refillPending: false,
    refillLatePending: false,
    effects: ['connect', 'spawn'],
  },
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
        // One stimulus (a clean end); two events, so paths take both ways a reload decides it.
        JOB_ENDS_CLEAN: {
          guard: 'endsUnlessStale',
          actions: { type: 'setJob', params: { job: 'none', effects: ['job:success'] } },
        },
        JOB_ENDS_CLEAN_STALE: {
          guard: 'endsKeptButStale',
          actions: { type: 'setJob', params: { job: 'none', effects: ['job:success'] } },
        },
        JOB_CRASH: {
          guard: { type: 'jobIs', params: { phases: ['running', 'endingJob'] } },
          actions: { type: 'setJob', params: { job: 'none', effects: ['job:failed'] } },
        },
        // Every queued job has a deadline: no process warm in time fails it.
        START_DEADLINE: {
          guard: { type: 'jobIs', params: { phases: ['queued'] } },
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
                params: { phases: ['deciding', 'accepted', 'queued', 'running'] },
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
              guard: { type: 'jobIs', params: { phases: ['accepted', 'queued', 'running'] } },
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
        // Draining: no new spares.
        DRAIN: '.closed',
        // The kept process's check (one deadline; two events, so paths take both outcomes):
        // checked again later, or let go as a surplus.
        IDLE_CHECK: {
          guard: and(['keptIdle', not('surplusIdle')]),
          actions: 'clearEffects',
        },
        IDLE_CHECK_SURPLUS: { guard: and(['keptIdle', 'surplusIdle']), actions: 'retireKept' },
        SPARE_REFILL: { guard: 'refillPending', actions: 'dropRefill' },
        SPARE_REFILL_LATE: { guard: 'refillLatePending', actions: 'dropRefillLate' },
      },
      states: {
        warming: {
          // Stopped: no new processes.
          always: { guard: stateIn({ lifecycle: 'stopped' }), target: 'closed' },
          on: {
            // The lifecycle region (first) has just used an idle process or queued the job. A
            // queued job gets its process now; the spare replacing a process a job took is
            // started once that job runs (at once here: the model's processes confirm a launch
            // in the same step).
            ASSIGN: {
              guard: and([
                { type: 'jobIs', params: { phases: ['accepted'] } },
                stateIn({ lifecycle: 'registered' }),
              ]),
              actions: 'fillPoolAfterAssignment',
            },
            PROC_WARM_OK: {
              guard: 'anyStarting',
              actions: [
                { type: 'processWarm', params: { refills: true } },
                { type: 'fillPool', params: { spares: true } },
              ],
            },
            SPARE_REFILL: { guard: 'refillPending', actions: 'refill' },
            SPARE_REFILL_LATE: { guard: 'refillLatePending', actions: 'refillLate' },
            // A failed start fails no job by itself; the pool backs off before the next.
            PROC_WARM_FAIL: {
              guard: 'anyStarting',
              target: 'backingOff',
              actions: 'processFailed',
            },
            SPARE_CRASH: {
              guard: 'anyIdle',
              actions: ['idleCrashed', { type: 'fillPool', params: { spares: true } }],
            },
            RECYCLE: { actions: ['dropSpares', { type: 'fillPool', params: { spares: true } }] },
            // A job's process that exits leaves the pool short until a refill: it is refilled
            // now (a kept one is idle again instead).
            JOB_ENDS_CLEAN: {
              guard: 'endsUnlessStale',
              actions: ['keepProcess', { type: 'fillPool', params: { spares: true } }],
            },
            JOB_ENDS_CLEAN_STALE: {
              guard: 'endsKeptButStale',
              actions: { type: 'fillPool', params: { spares: true } },
            },
            JOB_ENDS: {
              guard: { type: 'jobIs', params: { phases: ['running', 'endingJob'] } },
              actions: { type: 'fillPool', params: { spares: true } },
            },
            JOB_CRASH: {
              guard: { type: 'jobIs', params: { phases: ['running', 'endingJob'] } },
              actions: { type: 'fillPool', params: { spares: true } },
            },
          },
        },
        backingOff: {
          always: { guard: stateIn({ lifecycle: 'stopped' }), target: 'closed' },
          on: {
            SPAWN_RETRY: {
              target: 'warming',
              actions: ['clearEffects', { type: 'fillPool', params: { spares: true } }],
            },
            RECYCLE: {
              target: 'warming',
              actions: ['dropSpares', { type: 'fillPool', params: { spares: true } }],
            },
            PROC_WARM_OK: {
              guard: 'anyStarting',
              actions: { type: 'processWarm', params: { refills: false } },
            },
            PROC_WARM_FAIL: { guard: 'anyStarting', actions: 'processFailed' },
            SPARE_CRASH: { guard: 'anyIdle', actions: 'idleCrashed' },
            JOB_ENDS_CLEAN: { guard: 'endsUnlessStale', actions: 'keepProcess' },
          },
        },
        // Draining or stopped: only a queued job still gets a process started for it.
        closed: {
          type: 'final',
          on: {
            ASSIGN: {
              guard: { type: 'jobIs', params: { phases: ['accepted'] } },
              actions: { type: 'fillPool', params: { spares: false } },
            },
            PROC_WARM_OK: {
              guard: 'anyStarting',
              actions: [
                { type: 'processWarm', params: { refills: false } },
                { type: 'fillPool', params: { spares: false } },
              ],
            },
            PROC_WARM_FAIL: {
              guard: 'anyStarting',
              actions: ['processFailed', { type: 'fillPool', params: { spares: false } }],
            },
            SPARE_CRASH: {
              guard: 'anyIdle',
              actions: ['idleCrashed', { type: 'fillPool', params: { spares: false } }],
            },
          },
        },
      },
    },
  },
});

/** What a model state holds besides where it is: its identity, with the state value. */
const IDENTITY: readonly (keyof Omit<WorkerModelContext, 'effects'>)[] = [
  'job',
  'starting',
  'idle',
  'load',
  'keptIdle',
  'runningKeepable',
  'runningStale',
  'refillPending',
  'refillLatePending',
];

/** A model state's identity: where it is and what it holds; never the effects. */
export function serializeWorkerModel(s: { value: unknown; context: WorkerModelContext }): string {
  return JSON.stringify([s.value, ...IDENTITY.map((k) => s.context[k])]);
}

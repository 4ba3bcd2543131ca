/**
 * An abstract model of one job process, written from the contract (jobProcess.contract.ts and
 * docs/architecture.md §2), not from the chart: which state the process must be in, whether its pid must be
 * known, and what it must have told its parent and its host after each stimulus. It has no
 * invoke and no delays (so `xstate/graph` can traverse it): deadlines are events here, and the
 * adapter turns them into clock time.
 *
 * Effects are abstract strings, checked against the real actor after every step:
 * - reports to the worker: `prewarmed`, `started`, `ended:success|failed` (`ended:success:kept`
 *   when the process stays for another job), `exited:<final state>:ok|failed`;
 * - commands to the host: `launch`, `shutdownJob`, `terminate`, `kill`.
 */
import { assign, setup } from 'xstate';

/** The final state a process must end in, named as the contract names ways to end. */
export type ExitKind =
  | 'finished'
  | 'stopped'
  | 'prewarmFailed'
  | 'prewarmTimedOut'
  | 'crashed'
  | 'killed'
  | 'memoryExceeded'
  | 'unresponsive';

/** Ends that are abnormal (`PROCESS_EXITED.failed`). Only a finished job or a requested stop are not. */
export const failedExit = (kind: ExitKind | 'abandoned'): boolean =>
  kind !== 'finished' && kind !== 'stopped';

export interface JobProcessModelContext {
  /** The process has a job (given in the input or by LAUNCH_REQUESTED) whose end is not reported yet. */
  holdsJob: boolean;
  /** The OS process exists, so its pid must be known. */
  spawned: boolean;
  /** Chosen when the process starts to exit. */
  exit: ExitKind | undefined;
  /**
   * Jobs given so far. The model is of a process that may run `MODEL_JOBS_PER_PROCESS` jobs
   * (process reuse): a job that returns clean before that sends it back to idle.
   */
  jobsRun: number;
  /** What the last step must have caused (not part of the state identity). */
  effects: string[];
}

export type JobProcessModelEvent =
  | { type: 'START_WARM' } // the worker starts a spare process
  | { type: 'START_FOR_JOB' } // the worker starts a process for a job (none idle)
  | { type: 'SPAWNED' }
  | { type: 'PREWARM_OK' }
  | { type: 'PREWARM_FAIL' }
  | { type: 'INIT_TIMEOUT' }
  | { type: 'SILENCE_MEASURED' } // the host's answer: the child has been silent since the launch
  | { type: 'PONGS_SINCE_LAUNCH' } // the host's answer: the child answered pings since the launch
  | { type: 'LAUNCH_REQUESTED' }
  | { type: 'JOB_CONFIRMED' }
  | { type: 'JOB_RETURNED' } // ended well, teardown facts unknown: never reused
  | { type: 'JOB_RETURNED_CLEAN' } // ended well, teardown clean, memory within the bound
  | { type: 'JOB_THREW' }
  | { type: 'SHUTDOWN' }
  | { type: 'SHUTDOWN_TIMEOUT' }
  | { type: 'KILL' }
  | { type: 'CRASH' }
  | { type: 'PING_TIMEOUT' }
  | { type: 'MEMORY_LIMIT' }
  | { type: 'EXIT' }
  | { type: 'TERMINATE_TIMEOUT' }
  | { type: 'KILL_TIMEOUT' };

type Ctx = JobProcessModelContext;

/** The `reuse.maxJobs` the model's process is started with. */
export const MODEL_JOBS_PER_PROCESS = 2;
const endedIfHeld = (c: Ctx, outcome: 'success' | 'failed'): string[] =>
  c.holdsJob ? [`ended:${outcome}`] : [];
const exitedEffect = (kind: ExitKind | 'abandoned') =>
  `exited:${kind}:${failedExit(kind) ? 'failed' : 'ok'}`;

const EXIT_KINDS: ExitKind[] = [
  'finished',
  'stopped',
  'prewarmFailed',
  'prewarmTimedOut',
  'crashed',
  'killed',
  'memoryExceeded',
  'unresponsive',
];

/** Where the process lands when the OS process is gone while exiting: the end chosen on the way in. */
const landOn = (kind: ExitKind) => ({
  guard: { type: 'exitIs' as const, params: { kind } },
  target: `#jobProcessModel.${kind}`,
  actions: { type: 'effects' as const, params: { list: [exitedEffect(kind)] } },
});

export const jobProcessModel = setup({
  types: { context: {} as Ctx, events: {} as JobProcessModelEvent },
  actions: {
    effects: assign((_, p: { list: string[] }) => ({ effects: p.list })),
    /** Begins an exit: the job (if any) must be reported ended first, then the host told to stop. */
    beginExit: assign(
      (
        { context },
        p: {
          exit: ExitKind;
          command: 'terminate' | 'kill';
          outcome: 'success' | 'failed';
          /** Reported before the end (a job that counts as started). */
          before?: string[];
        },
      ) => ({
        exit: p.exit,
        effects: [...(p.before ?? []), ...endedIfHeld(context, p.outcome), p.command],
        holdsJob: false,
      }),
    ),
    /** The OS process is gone at once: the job (if any) ended failed, the process exited. */
    exitedNow: assign(({ context }, p: { kind: ExitKind }) => ({
      exit: p.kind,
      effects: [...endedIfHeld(context, 'failed'), exitedEffect(p.kind)],
      holdsJob: false,
    })),
  },
  guards: {
    exitIs: ({ context }, p: { kind: ExitKind }) => context.exit === p.kind,
    spawned: ({ context }) => context.spawned,
    notSpawned: ({ context }) => !context.spawned,
    holdsJob: ({ context }) => context.holdsJob,
    mayRunMore: ({ context }) => context.jobsRun < MODEL_JOBS_PER_PROCESS,
  },
}).createMachine({
  id: 'jobProcessModel',
  context: { holdsJob: false, spawned: false, exit: undefined, jobsRun: 0, effects: [] },
  initial: 'notStarted',
  states: {
    notStarted: {
      on: {
        START_WARM: { target: 'prewarming', actions: { type: 'effects', params: { list: [] } } },
        START_FOR_JOB: {
          target: 'prewarming',
          actions: assign({ holdsJob: true, jobsRun: 1, effects: () => [] }),
        },
      },
    },
    prewarming: {
      on: {
        SPAWNED: {
          guard: 'notSpawned',
          actions: assign({ spawned: true, effects: () => [] }),
        },
        PREWARM_OK: [
          {
            guard: ({ context }) => context.spawned && context.holdsJob,
            target: 'running',
            actions: { type: 'effects', params: { list: ['prewarmed', 'launch'] } },
          },
          {
            guard: 'spawned',
            target: 'idle',
            actions: { type: 'effects', params: { list: ['prewarmed'] } },
          },
        ],
        PREWARM_FAIL: {
          guard: 'spawned',
          target: 'exiting.terminating',
          actions: {
            type: 'beginExit',
            params: { exit: 'prewarmFailed', command: 'terminate', outcome: 'failed' },
          },
        },
        CRASH: {
          guard: 'spawned',
          target: 'crashed',
          actions: { type: 'exitedNow', params: { kind: 'crashed' } },
        },
        SHUTDOWN: {
          target: 'exiting.terminating',
          actions: {
            type: 'beginExit',
            params: { exit: 'stopped', command: 'terminate', outcome: 'failed' },
          },
        },
        KILL: {
          target: 'exiting.killing',
          actions: {
            type: 'beginExit',
            params: { exit: 'killed', command: 'kill', outcome: 'failed' },
          },
        },
        INIT_TIMEOUT: {
          target: 'exiting.killing',
          actions: {
            type: 'beginExit',
            params: { exit: 'prewarmTimedOut', command: 'kill', outcome: 'failed' },
          },
        },
      },
    },
    idle: {
      on: {
        LAUNCH_REQUESTED: {
          target: 'running',
          actions: assign({
            holdsJob: true,
            jobsRun: ({ context }) => context.jobsRun + 1,
            effects: () => ['launch'],
          }),
        },
        CRASH: { target: 'crashed', actions: { type: 'exitedNow', params: { kind: 'crashed' } } },
        SHUTDOWN: {
          target: 'exiting.terminating',
          actions: {
            type: 'beginExit',
            params: { exit: 'stopped', command: 'terminate', outcome: 'failed' },
          },
        },
        KILL: {
          target: 'exiting.killing',
          actions: {
            type: 'beginExit',
            params: { exit: 'killed', command: 'kill', outcome: 'failed' },
          },
        },
        PING_TIMEOUT: {
          target: 'exiting.terminating',
          actions: {
            type: 'beginExit',
            params: { exit: 'unresponsive', command: 'terminate', outcome: 'failed' },
          },
        },
        MEMORY_LIMIT: {
          target: 'exiting.terminating',
          actions: {
            type: 'beginExit',
            params: { exit: 'memoryExceeded', command: 'terminate', outcome: 'failed' },
          },
        },
      },
    },
    running: {
      initial: 'starting',
      on: {
        JOB_RETURNED: {
          target: 'exiting.terminating',
          actions: {
            type: 'beginExit',
            params: { exit: 'finished', command: 'terminate', outcome: 'success' },
          },
        },
        // A clean end: back to idle while the process may run more jobs, else let go as usual.
        JOB_RETURNED_CLEAN: [
          {
            guard: 'mayRunMore',
            target: 'idle',
            actions: assign({ holdsJob: false, effects: () => ['ended:success:kept'] }),
          },
          {
            target: 'exiting.terminating',
            actions: {
              type: 'beginExit',
              params: { exit: 'finished', command: 'terminate', outcome: 'success' },
            },
          },
        ],
        CRASH: { target: 'crashed', actions: { type: 'exitedNow', params: { kind: 'crashed' } } },
        KILL: {
          target: 'exiting.killing',
          actions: {
            type: 'beginExit',
            params: { exit: 'killed', command: 'kill', outcome: 'failed' },
          },
        },
        PING_TIMEOUT: {
          target: 'exiting.terminating',
          actions: {
            type: 'beginExit',
            params: { exit: 'unresponsive', command: 'terminate', outcome: 'failed' },
          },
        },
        MEMORY_LIMIT: {
          target: 'exiting.terminating',
          actions: {
            type: 'beginExit',
            params: { exit: 'memoryExceeded', command: 'terminate', outcome: 'failed' },
          },
        },
      },
      states: {
        starting: {
          on: {
            JOB_CONFIRMED: {
              target: 'active',
              actions: { type: 'effects', params: { list: ['started'] } },
            },
            // Asked to end before the child confirmed: the request still reaches the job.
            SHUTDOWN: {
              target: 'shuttingDown',
              actions: { type: 'effects', params: { list: ['shutdownJob'] } },
            },
            // Unconfirmed at the deadline: the host is asked how long the child was silent.
            INIT_TIMEOUT: {
              target: 'unconfirmed',
              actions: { type: 'effects', params: { list: [] } },
            },
          },
        },
        unconfirmed: {
          on: {
            JOB_CONFIRMED: {
              target: 'active',
              actions: { type: 'effects', params: { list: ['started'] } },
            },
            SHUTDOWN: {
              target: 'shuttingDown',
              actions: { type: 'effects', params: { list: ['shutdownJob'] } },
            },
            // Blocked since it got the job: the entrypoint most likely runs, so the job started.
            SILENCE_MEASURED: {
              target: '#jobProcessModel.exiting.terminating',
              actions: {
                type: 'beginExit',
                params: {
                  exit: 'unresponsive',
                  command: 'terminate',
                  outcome: 'failed',
                  before: ['started'],
                },
              },
            },
            PONGS_SINCE_LAUNCH: {
              target: '#jobProcessModel.exiting.terminating',
              actions: {
                type: 'beginExit',
                params: { exit: 'unresponsive', command: 'terminate', outcome: 'failed' },
              },
            },
            // A host that does not answer: the end is still unresponsive.
            KILL_TIMEOUT: {
              target: '#jobProcessModel.exiting.terminating',
              actions: {
                type: 'beginExit',
                params: { exit: 'unresponsive', command: 'terminate', outcome: 'failed' },
              },
            },
          },
        },
        active: {
          on: {
            SHUTDOWN: {
              target: 'shuttingDown',
              actions: { type: 'effects', params: { list: ['shutdownJob'] } },
            },
            // A job that fails on its own ends like one that returns: reported failed, process let go.
            JOB_THREW: {
              target: '#jobProcessModel.exiting.terminating',
              actions: {
                type: 'beginExit',
                params: { exit: 'finished', command: 'terminate', outcome: 'failed' },
              },
            },
          },
        },
        shuttingDown: {
          on: {
            SHUTDOWN_TIMEOUT: {
              target: '#jobProcessModel.exiting.terminating',
              actions: {
                type: 'beginExit',
                params: { exit: 'killed', command: 'terminate', outcome: 'failed' },
              },
            },
          },
        },
      },
    },
    exiting: {
      initial: 'terminating',
      on: { EXIT: EXIT_KINDS.map(landOn) },
      states: {
        terminating: {
          on: {
            TERMINATE_TIMEOUT: {
              target: 'killing',
              actions: { type: 'effects', params: { list: ['kill'] } },
            },
            KILL: { target: 'killing', actions: { type: 'effects', params: { list: ['kill'] } } },
          },
        },
        killing: {
          on: {
            KILL_TIMEOUT: {
              target: '#jobProcessModel.abandoned',
              actions: { type: 'effects', params: { list: ['exited:abandoned:failed'] } },
            },
          },
        },
      },
    },
    finished: { type: 'final' },
    stopped: { type: 'final' },
    prewarmFailed: { type: 'final' },
    prewarmTimedOut: { type: 'final' },
    crashed: { type: 'final' },
    killed: { type: 'final' },
    memoryExceeded: { type: 'final' },
    unresponsive: { type: 'final' },
    abandoned: { type: 'final' },
  },
});

/** The model's identity of a state: value and the facts that matter, never the effects. */
export function serializeJobProcessModel(s: {
  value: unknown;
  context: JobProcessModelContext;
}): string {
  const { holdsJob, spawned, exit, jobsRun } = s.context;
  return JSON.stringify([s.value, holdsJob, spawned, exit, jobsRun]);
}

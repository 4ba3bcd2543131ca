/**
 * The life of one job process, as a pure chart: `prewarming → idle → running → exiting`, and a
 * named final state for every way a process can end. The chart does no I/O: it invokes an
 * abstract `processHost` actor (provided by `src/job-host`) that forks the process, relays what the
 * child says as events and carries out the chart's commands. Every wait has a named delay taken
 * from the input, so tests drive it with a `SimulatedClock`.
 *
 * How each end is chosen is in `jobProcess.exits.ts`. Reports to the worker follow
 * `jobProcess.contract.ts`: `PROCESS_PREWARMED`, `JOB_STARTED`,
 * exactly one `JOB_ENDED` per job the process was given, and `PROCESS_EXITED` last.
 */
import { assign, enqueueActions, fromCallback, sendParent, sendTo, setup } from 'xstate';
import {
  DEFAULT_KILL_TIMEOUT,
  DEFAULT_TERMINATE_TIMEOUT,
  NO_REUSE,
  type JobOutcome,
  type JobProcessMachineInput,
  type JobProcessReport,
  type JobProcessTimeouts,
  type ProcessReuse,
  type RunningJobInfo,
} from './jobProcess.contract.ts';
import type {
  ProcessHostCommand,
  ProcessHostEvent,
  ProcessHostInput,
} from './processHost.contract.ts';
import { fromEvent } from './params.ts';
import {
  capturesStack,
  CHOSEN_EXITS,
  endsAt,
  endsOn,
  endsOnActions,
  type Exit,
  type ExitKind,
  type JobProcessEvent,
} from './jobProcess.exits.ts';

export type { Exit, ExitKind, JobProcessEvent } from './jobProcess.exits.ts';

// Re-exported for the worker and tests that build this chart's input.
export type { JobProcessMachineInput, JobProcessTimeouts } from './jobProcess.contract.ts';

export interface JobProcessContext {
  procId: string;
  pid: number | undefined;
  /** The job given to this process (queued during prewarm, or running) until it is reported ended. */
  job: RunningJobInfo | undefined;
  /** Set when the process starts to exit. */
  exit: Exit | undefined;
  timeouts: Required<JobProcessTimeouts>;
  reuse: ProcessReuse;
  /** Jobs given to this process so far (the one running included). */
  jobsRun: number;
}

export const jobProcessMachine = setup({
  types: {
    context: {} as JobProcessContext,
    events: {} as JobProcessEvent,
    input: {} as JobProcessMachineInput,
  },
  actors: {
    /**
     * Abstract: `src/job-host` provides the real one. This stand-in reports at once that there is no
     * host, so an unprovided chart ends in `prewarmFailed` instead of waiting.
     */
    processHost: fromCallback<ProcessHostCommand, ProcessHostInput>(({ sendBack }) => {
      sendBack({
        type: 'PREWARM_FAILED',
        error: 'no processHost was provided',
      } satisfies ProcessHostEvent);
    }),
  },
  delays: {
    INITIALIZE_TIMEOUT: ({ context }) => context.timeouts.initializeTimeout,
    SHUTDOWN_TIMEOUT: ({ context }) => context.timeouts.shutdownTimeout,
    TERMINATE_TIMEOUT: ({ context }) => context.timeouts.terminateTimeout,
    KILL_TIMEOUT: ({ context }) => context.timeouts.killTimeout,
  },
  guards: {
    hasJob: ({ context }) => context.job !== undefined,
    /**
     * The job ended cleanly and the process may take another one (`ProcessReuse`): it has run
     * fewer than `maxJobs` and grew at most `memoryGrowthMb`. A failed job, an overrun or
     * throwing shutdown callback, or a room not left in time ends the process instead.
     */
    reusable: ({ context }, p: { outcome: JobOutcome; clean?: boolean; rssGrowthMb?: number }) =>
      p.outcome === 'success' &&
      p.clean === true &&
      context.jobsRun < context.reuse.maxJobs &&
      p.rssGrowthMb !== undefined &&
      p.rssGrowthMb <= context.reuse.memoryGrowthMb,
    exitIs: ({ context }, params: { kind: ExitKind }) => context.exit?.kind === params.kind,
    /** No pong since the job's launch: the child's loop has been blocked since it got the job. */
    silentSinceLaunch: (_, p: { silentMs: number; sinceLaunchMs: number }) =>
      p.silentMs >= p.sinceLaunchMs,
  },
  actions: {
    recordPid: assign((_, p: { pid: number }) => ({ pid: p.pid })),
    takeJob: assign(({ context }, p: { job: RunningJobInfo }) => ({
      job: p.job,
      jobsRun: context.jobsRun + 1,
    })),
    beginExit: assign((_, exit: Exit) => ({ exit })),
    launchJob: sendTo(
      'processHost',
      ({ context }) =>
        ({ type: 'JOB_LAUNCH_REQUESTED', job: context.job! }) satisfies ProcessHostCommand,
    ),
    askJobToShutdown: sendTo(
      'processHost',
      (_, p: { reason: string }) =>
        ({ type: 'JOB_SHUTDOWN_REQUESTED', reason: p.reason }) satisfies ProcessHostCommand,
    ),
    terminateProcess: sendTo(
      'processHost',
      ({ context }) =>
        ({
          type: 'EXIT_REQUESTED',
          reason: context.exit?.reason ?? 'exiting',
          captureStack: capturesStack(context.exit),
        }) satisfies ProcessHostCommand,
    ),
    measureSilence: sendTo('processHost', {
      type: 'SILENCE_MEASURE_REQUESTED',
    } satisfies ProcessHostCommand),
    killProcess: sendTo('processHost', { type: 'SIGKILL_REQUESTED' } satisfies ProcessHostCommand),
    reportPrewarmed: sendParent(
      ({ context }, p: { rssMb?: number }) =>
        ({
          type: 'PROCESS_PREWARMED',
          procId: context.procId,
          pid: context.pid!,
          ...(p.rssMb === undefined ? {} : { rssMb: p.rssMb }),
        }) satisfies JobProcessReport,
    ),
    reportJobStarted: sendParent(
      ({ context }) =>
        ({
          type: 'JOB_STARTED',
          procId: context.procId,
          pid: context.pid!,
          jobId: context.job!.jobId,
        }) satisfies JobProcessReport,
    ),
    /**
     * Reports the end of the job this process holds, if any, exactly once (the job is then
     * cleared). Without a reason of its own, the job ends for the reason the process does.
     */
    reportJobEnded: enqueueActions(
      (
        { context, enqueue },
        params: { outcome: JobOutcome; reason?: string; processKept?: boolean; returned?: boolean },
      ) => {
        const job = context.job;
        if (!job) return;
        enqueue.sendParent({
          type: 'JOB_ENDED',
          procId: context.procId,
          pid: context.pid,
          jobId: job.jobId,
          outcome: params.outcome,
          reason: params.reason ?? context.exit?.reason ?? 'job ended',
          // The runtime said how the job ended, or the process's end took the job with it.
          ending: params.returned ? 'returned' : (context.exit?.kind ?? 'crashed'),
          processKept: params.processKept ?? false,
        } satisfies JobProcessReport);
        enqueue.assign({ job: undefined });
      },
    ),
    reportExited: sendParent(({ context }) => {
      const exit = context.exit ?? { kind: 'crashed' as const, reason: 'exited' };
      return {
        type: 'PROCESS_EXITED',
        procId: context.procId,
        pid: context.pid,
        reason: exit.reason,
        // Only a finished job or a requested stop are normal ends.
        failed: exit.kind !== 'finished' && exit.kind !== 'stopped',
      } satisfies JobProcessReport;
    }),
  },
}).createMachine({
  id: 'jobProcess',
  context: ({ input }) => ({
    procId: input.procId,
    pid: undefined,
    job: input.job,
    exit: undefined,
    timeouts: {
      initializeTimeout: input.initializeTimeout,
      shutdownTimeout: input.shutdownTimeout,
      terminateTimeout: input.terminateTimeout ?? DEFAULT_TERMINATE_TIMEOUT,
      killTimeout: input.killTimeout ?? DEFAULT_KILL_TIMEOUT,
    },
    reuse: input.reuse ?? NO_REUSE,
    jobsRun: input.job ? 1 : 0,
  }),
  // The host lives as long as the chart: leaving the last state stops it, which releases the pool.
  invoke: {
    id: 'processHost',
    src: 'processHost',
    input: ({ context }) => ({ procId: context.procId }),
  },
  on: {
    PROCESS_SPAWNED: { actions: { type: 'recordPid', params: fromEvent } },
  },
  initial: 'prewarming',
  states: {
    prewarming: {
      after: {
        INITIALIZE_TIMEOUT: endsAt('exiting.killing', {
          kind: 'prewarmTimedOut',
          reason: 'prewarm timed out',
        }),
      },
      on: {
        PREWARM_SUCCEEDED: [
          {
            guard: 'hasJob',
            target: 'running',
            actions: { type: 'reportPrewarmed', params: fromEvent },
          },
          { target: 'idle', actions: { type: 'reportPrewarmed', params: fromEvent } },
        ],
        PREWARM_FAILED: endsOn('exiting.terminating'),
        CHILD_EXITED: endsOn('crashed'),
        SHUTDOWN_REQUESTED: endsOn('exiting.terminating'),
        KILL_REQUESTED: endsOn('exiting.killing'),
      },
    },

    idle: {
      on: {
        LAUNCH_REQUESTED: { target: 'running', actions: { type: 'takeJob', params: fromEvent } },
        CHILD_EXITED: endsOn('crashed'),
        SHUTDOWN_REQUESTED: endsOn('exiting.terminating'),
        KILL_REQUESTED: endsOn('exiting.killing'),
        PING_TIMED_OUT: endsOn('exiting.terminating'),
        MEMORY_EXCEEDED: endsOn('exiting.terminating'),
      },
    },

    running: {
      entry: 'launchJob',
      initial: 'starting',
      states: {
        /** Launched; waiting for the child to confirm. */
        starting: {
          on: {
            JOB_RUNNING: { target: 'active', actions: 'reportJobStarted' },
            // A termination or drain deadline can arrive before the child confirms; the child
            // routes it to the job as soon as it exists, so it is never dropped.
            SHUTDOWN_REQUESTED: {
              target: 'shuttingDown',
              actions: { type: 'askJobToShutdown', params: fromEvent },
            },
          },
          after: { INITIALIZE_TIMEOUT: 'unconfirmed' },
        },
        /**
         * The start deadline passed without the child's confirmation. A child whose entrypoint
         * blocks its loop from its first line never gets to say it started, so the host is asked
         * how long the child has been silent: the end says which of the two it was.
         */
        unconfirmed: {
          entry: 'measureSilence',
          on: {
            JOB_RUNNING: { target: 'active', actions: 'reportJobStarted' },
            SILENCE_MEASURED: [
              {
                // Its entrypoint was most likely called and is what blocks: the job counts as
                // started (the worker never runs a started job twice), and ends unresponsive.
                guard: { type: 'silentSinceLaunch', params: fromEvent },
                target: '#jobProcess.exiting.terminating',
                actions: ['reportJobStarted', ...endsOnActions()],
              },
              endsOn('#jobProcess.exiting.terminating'),
            ],
            SHUTDOWN_REQUESTED: {
              target: 'shuttingDown',
              actions: { type: 'askJobToShutdown', params: fromEvent },
            },
          },
          after: {
            // The host answers at once; this only bounds a host that cannot.
            KILL_TIMEOUT: endsAt('#jobProcess.exiting.terminating', {
              kind: 'unresponsive',
              reason: 'job did not start in time',
            }),
          },
        },
        active: {
          on: {
            SHUTDOWN_REQUESTED: {
              target: 'shuttingDown',
              actions: { type: 'askJobToShutdown', params: fromEvent },
            },
          },
        },
        /** The child runs the shutdown callbacks and leaves the room, within SHUTDOWN_TIMEOUT. */
        shuttingDown: {
          after: {
            SHUTDOWN_TIMEOUT: endsAt('#jobProcess.exiting.terminating', ({ context }) => ({
              kind: 'killed',
              reason: `shutdown budget exceeded (${context.timeouts.shutdownTimeout} ms)`,
            })),
          },
        },
      },
      on: {
        JOB_RETURNED: [
          {
            // Opt-in reuse: back to `idle`, the worker is told the process stays.
            guard: { type: 'reusable', params: fromEvent },
            target: 'idle',
            actions: {
              type: 'reportJobEnded',
              params: ({ event }) => ({ ...event, processKept: true, returned: true }),
            },
          },
          {
            target: 'exiting.terminating',
            actions: [
              { type: 'reportJobEnded', params: ({ event }) => ({ ...event, returned: true }) },
              { type: 'beginExit', params: { kind: 'finished', reason: 'job finished' } },
            ],
          },
        ],
        CHILD_EXITED: endsOn('crashed'),
        KILL_REQUESTED: endsOn('exiting.killing'),
        PING_TIMED_OUT: endsOn('exiting.terminating'),
        MEMORY_EXCEEDED: endsOn('exiting.terminating'),
      },
    },

    /**
     * The process is being stopped; its job (if any) is already reported. Told to exit first, SIGKILL
     * after TERMINATE_TIMEOUT; the final state is the one chosen on the way in.
     */
    exiting: {
      initial: 'terminating',
      states: {
        terminating: {
          entry: 'terminateProcess',
          after: { TERMINATE_TIMEOUT: 'killing' },
        },
        killing: {
          entry: 'killProcess',
          after: { KILL_TIMEOUT: '#jobProcess.abandoned' },
        },
      },
      on: {
        // Escalation only: a kill asked for while terminating skips the polite grace.
        KILL_REQUESTED: '.killing',
        // To the final state chosen on the way in (every way into `exiting` chooses one).
        CHILD_EXITED: CHOSEN_EXITS.map((kind) => ({
          target: kind,
          guard: { type: 'exitIs' as const, params: { kind } },
        })),
      },
    },

    /** The job ran and ended; the process was let go. */
    finished: { type: 'final', entry: 'reportExited' },
    /** Asked to shut down before it had a job. */
    stopped: { type: 'final', entry: 'reportExited' },
    prewarmFailed: { type: 'final', entry: 'reportExited' },
    prewarmTimedOut: { type: 'final', entry: 'reportExited' },
    /** Exited on its own (code or signal in the reason). */
    crashed: { type: 'final', entry: 'reportExited' },
    /** Killed on request or after a shutdown deadline. */
    killed: { type: 'final', entry: 'reportExited' },
    memoryExceeded: { type: 'final', entry: 'reportExited' },
    unresponsive: { type: 'final', entry: 'reportExited' },
    /** Did not exit even after SIGKILL (e.g. stuck in the kernel); nothing more can be done. */
    abandoned: {
      type: 'final',
      entry: [
        {
          type: 'beginExit',
          params: ({ context }) => ({
            kind: 'killed',
            reason: `${context.exit?.reason ?? 'exiting'}; no exit seen after SIGKILL`,
          }),
        },
        'reportExited',
      ],
    },
  },
});

/**
 * How a job process ends, for the jobProcess chart (`jobProcess.machine.ts`): the final state
 * each way of ending leads to, the exit an ending event chooses, and the transition shape every
 * ending shares (the exit recorded, a job held reported failed).
 */
import type { JobProcessCommand, ProcessEnd } from './jobProcess.contract.ts';
import type { ProcessHostEvent } from './processHost.contract.ts';

export type JobProcessEvent = JobProcessCommand | ProcessHostEvent;

/** The final state a process ends in, chosen when it starts to exit. */
export type ExitKind = ProcessEnd;

/**
 * The ends chosen on the way into `exiting` (every one but `crashed`, which is the process's own
 * doing). `exiting` routes the process's exit to the final state of the same name.
 */
export const CHOSEN_EXITS = [
  'finished',
  'stopped',
  'prewarmFailed',
  'prewarmTimedOut',
  'killed',
  'memoryExceeded',
  'unresponsive',
] as const satisfies readonly Exclude<ProcessEnd, 'crashed'>[];

/**
 * The ends the worker forces on a process that may be stuck or misbehaving: their record shows
 * the process's JavaScript stack at the kill, so the kill explains itself.
 */
const EXPLAINED_EXITS: ReadonlySet<ExitKind> = new Set([
  'unresponsive',
  'memoryExceeded',
  'killed',
]);

/** Whether the host reads the process's stack before it ends it (`EXIT_REQUESTED`). */
export function capturesStack(exit: Exit | undefined): boolean {
  return exit !== undefined && EXPLAINED_EXITS.has(exit.kind);
}

/** Which final state, and why. */
export interface Exit {
  kind: ExitKind;
  reason: string;
}

/** `crashed (code 1)`, `crashed (signal SIGSEGV)`. */
function describeExit(code: number | null, signal: string | null): string {
  return signal ? `signal ${signal}` : `code ${code ?? 'unknown'}`;
}

/** The events that end a process by themselves. */
type EndingEvent = Extract<
  JobProcessEvent,
  {
    type:
      | 'CHILD_EXITED'
      | 'PREWARM_FAILED'
      | 'SHUTDOWN_REQUESTED'
      | 'KILL_REQUESTED'
      | 'PING_TIMED_OUT'
      | 'MEMORY_EXCEEDED'
      | 'SILENCE_MEASURED';
  }
>;

/** The exit an ending event chooses. */
export function exitFor({ event }: { event: EndingEvent }): Exit {
  switch (event.type) {
    case 'CHILD_EXITED':
      return { kind: 'crashed', reason: `crashed (${describeExit(event.code, event.signal)})` };
    case 'PREWARM_FAILED':
      return { kind: 'prewarmFailed', reason: `prewarm failed: ${event.error}` };
    case 'SHUTDOWN_REQUESTED':
      return { kind: 'stopped', reason: `shutdown requested: ${event.reason}` };
    case 'KILL_REQUESTED':
      return { kind: 'killed', reason: `kill requested: ${event.reason}` };
    case 'PING_TIMED_OUT':
      return { kind: 'unresponsive', reason: `unresponsive (no pong for ${event.silentMs} ms)` };
    case 'SILENCE_MEASURED':
      // Silent since before the launch: the loop is blocked (the entrypoint's first,
      // synchronous part, most often), so the job may well have started; it cannot say so.
      return event.silentMs >= event.sinceLaunchMs
        ? { kind: 'unresponsive', reason: `unresponsive (no pong for ${event.silentMs} ms)` }
        : { kind: 'unresponsive', reason: 'job did not start in time' };
    case 'MEMORY_EXCEEDED':
      return {
        kind: 'memoryExceeded',
        reason: `memory limit (${event.rssMb} MB > ${event.limitMb} MB)`,
      };
  }
}

/**
 * A transition that ends the process: the exit is recorded and a job the process holds is
 * reported failed (a no-op without one). `endsOn` takes the exit from the ending event,
 * `endsAt` is for a deadline and names its exit.
 */
const endingActions = <P>(exit: P) => [
  { type: 'beginExit' as const, params: exit },
  { type: 'reportJobEnded' as const, params: { outcome: 'failed' as const } },
];
const ending = <T extends string, P>(target: T, exit: P) => ({
  target,
  actions: endingActions(exit),
});
/** The actions of `endsOn`, for a transition that reports something first. */
export const endsOnActions = () => endingActions(exitFor);
export const endsOn = <T extends string>(target: T) => ending(target, exitFor);
export const endsAt = <T extends string>(
  target: T,
  exit: Exit | ((args: { context: { timeouts: { shutdownTimeout: number } } }) => Exit),
) => ending(target, exit);

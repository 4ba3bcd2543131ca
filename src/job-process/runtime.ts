/**
 * The job runtime, child side: runs one job from launch to its end and says how it ended.
 *
 * A job ends on the first of: `ctx.shutdown()`, the room disconnecting (or the participant a
 * PUBLISHER or PARTICIPANT job is for leaving), the worker asking (`shutdown(reason)` on the handle), the entrypoint
 * returning without ever having connected (success), or the entrypoint throwing (failure).
 * Then the shutdown callbacks run (side by side, each within its budget, also after a throw),
 * then the room is left. The process itself is stopped by its host afterwards.
 */
import { withDeadline } from '../clock.ts';
import { DeadlineExceededError, errorMessage } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { WorkerOptions } from '../options/worker-options.ts';
import { JobContext, type JobContextInit, type JobEnd, type ShutdownCallback } from './context.ts';
import type { JobProcess } from './process.ts';
import { ROOM_LEAVE_TIMEOUT, type RunningJobInfo } from '../../machines/jobProcess.contract.ts';

export interface JobRunOptions {
  entrypointFnc: WorkerOptions['entrypointFnc'];
  info: RunningJobInfo;
  proc: JobProcess;
  log: Logger;
  /** Budget of each shutdown callback. */
  callbackTimeout: number;
  /** Budget for leaving the room. Default 5000. */
  leaveTimeout?: number;
  /** For tests: a room stand-in. */
  room?: JobContextInit['room'];
  /** Where `ctx.checkpoint()` values go (to the worker over IPC). */
  checkpoint?: JobContextInit['checkpoint'];
  /** The job's spans, when tracing is on (`../telemetry/job-spans.ts`). */
  spans?: JobSpanHooks;
}

/**
 * Where a traced job's spans are made (`../telemetry/job-spans.ts`): the runtime says when each
 * step starts and ends, and never imports OpenTelemetry itself. None of these throws.
 */
export interface JobSpanHooks {
  /** Calls the entrypoint inside its span's context (the user's spans become its children). */
  runEntrypoint<T>(call: () => T): T;
  /** The entrypoint's promise settled; `error` when it threw. */
  entrypointSettled(error?: unknown): void;
  /** `ctx.connect()` started; the returned function is told how it ended. */
  connectStarted(url: string): (error?: unknown) => void;
  /** The job is ending; the returned function is told when its teardown is done. */
  endStarted(end: JobEnd): (teardown: JobTeardown) => void;
  /** The trace and span id for the job's log records. */
  logFields(): { traceId?: string; spanId?: string };
}

/** How a job ended, and whether its teardown was clean enough for the process to be reused. */
export interface JobTeardown extends JobEnd {
  /** Every shutdown callback finished in its budget without throwing, and the room was left in time. */
  clean: boolean;
}

export interface RunningJob {
  readonly ctx: JobContext;
  /** Ends the job on the worker's behalf (server termination, drain, stop). */
  shutdown(reason: string): void;
  /** Resolves once the job has ended and is torn down; never rejects. */
  readonly done: Promise<JobTeardown>;
}

export function startJob(opts: JobRunOptions): RunningJob {
  // The first end wins; later ones (e.g. the room disconnecting while we leave it) are ignored.
  let settle!: (end: JobEnd) => void;
  const ended = new Promise<JobEnd>((resolve) => {
    settle = resolve;
  });
  const ctx = new JobContext({
    info: opts.info,
    proc: opts.proc,
    onEnd: (end) => settle(end),
    ended,
    ...(opts.room ? { room: opts.room } : {}),
    ...(opts.checkpoint ? { checkpoint: opts.checkpoint } : {}),
    ...(opts.spans ? { onConnect: (url: string) => opts.spans!.connectStarted(url) } : {}),
  });
  const spans = opts.spans;

  // Called now, not a microtask later: the hand-off is one IPC hop plus this call. A synchronous
  // throw still rejects (the executor catches it).
  const call = () => opts.entrypointFnc(ctx);
  void new Promise<void>((resolve) => resolve(spans ? spans.runEntrypoint(call) : call())).then(
    () => {
      spans?.entrypointSettled();
      if (!ctx.connectionRequested) {
        settle({ outcome: 'success', reason: 'entrypoint returned without connecting' });
      }
    },
    (err: unknown) => {
      spans?.entrypointSettled(err);
      opts.log.error('entrypoint threw', { error: err });
      settle({ outcome: 'failed', reason: `entrypoint threw: ${errorMessage(err)}` });
    },
  );

  const done = ended.then(async (end): Promise<JobTeardown> => {
    opts.log.info('job ending', { reason: end.reason, outcome: end.outcome });
    const tornDown = spans?.endStarted(end);
    const callbacksDone = await runShutdownCallbacks(
      ctx.shutdownCallbacks,
      end.reason,
      opts.callbackTimeout,
      opts.log,
    );
    const roomLeft = await ctx.leaveRoom(opts.leaveTimeout ?? ROOM_LEAVE_TIMEOUT);
    const teardown = { ...end, clean: callbacksDone && roomLeft };
    tornDown?.(teardown);
    return teardown;
  });

  return { ctx, shutdown: (reason) => settle({ outcome: 'success', reason }), done };
}

/**
 * Runs every callback side by side; a throw or an overrun is logged and never stops the others.
 * Resolves true when every one finished in its budget without throwing.
 */
async function runShutdownCallbacks(
  callbacks: readonly ShutdownCallback[],
  reason: string,
  budgetMs: number,
  log: Logger,
): Promise<boolean> {
  const finished = await Promise.all(
    callbacks.map(async (fn, index) => {
      try {
        await withDeadline(
          Promise.resolve().then(() => fn(reason)),
          budgetMs,
          'shutdown callback',
        );
        return true;
      } catch (error) {
        if (error instanceof DeadlineExceededError) {
          log.warn('shutdown callback overran its budget', { index, budgetMs });
        } else {
          log.error('shutdown callback threw', { index, error });
        }
      }
      return false;
    }),
  );
  return finished.every(Boolean);
}

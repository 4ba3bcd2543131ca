/**
 * The `processHost` actor of the jobProcess chart: one forked process per actor, hosted by its
 * own single-process tinypool. It relays what the process says and does as chart events, and
 * carries out the chart's commands (launch, shutdown, terminate, SIGKILL).
 *
 * How each tinypool trap is avoided (also in docs/architecture.md §4):
 * - A failed prewarm leaves later `run()`s pending: there is exactly one `run()` per pool, its
 *   promise is never what we wait on (IPC messages and the process `exit` are), and the pool is
 *   destroyed with the actor, which rejects anything still queued.
 * - A death during prewarm stops refills: nothing here relies on refills (`minThreads: 0`, one
 *   process per pool, a new actor for a new process).
 * - An idle exit emits pool `'error'`, fatal without a listener: we always listen.
 * - Abort gives 1 s of grace: abort is never used; `terminate` (IPC) and SIGKILL are sent by
 *   this host when the chart's own deadlines say so.
 * - The child gets no environment unless given one: `env` is `process.env` plus our marker.
 * - `minThreads` counts busy processes: idle capacity is the worker chart's business (one actor
 *   per process), not the pool's.
 * - Stale channels: one task per process, and our forwarder is dead after `onClose`.
 */
import type { ChildProcess } from 'node:child_process';
import Tinypool from 'tinypool';
import { fromCallback } from 'xstate';
import type {
  ProcessHostCommand,
  ProcessHostEvent,
  ProcessHostInput,
} from '../../machines/processHost.contract.ts';
import { orphanGrace } from '../../machines/jobProcess.contract.ts';
import { systemClock, type Clock } from '../clock.ts';
import { startHeartbeat, type Heartbeat } from '../heartbeat.ts';
import { JOB_PROCESS_ENV } from '../runtime-registry.ts';
import { getLogLevel, LOG_LEVEL_ENV, type Logger } from '../log/logger.ts';
import { RUNS_FROM_SOURCE, SOURCE_CONDITION } from '../package-root.ts';
import { relayChildOutput } from './child-output.ts';
import {
  isChildMessage,
  type ChildMessage,
  type HostMessage,
  type JobProcessTask,
  type RtcBundle,
  type TraceCarrier,
  type ForwardedSpans,
} from '../../machines/jobIpc.contract.ts';
import type { JsonValue } from '@bufbuild/protobuf';
import { STOP_SIGNALS_IGNORED } from '../job-process/stop-signals-ignored.ts';
import { trackJobProcess } from './live-children.ts';
import { startMemoryWatch } from './memory-watch.ts';
import { publishLoopStall } from '../telemetry/loop-stall.ts';
import { captureJsStack, inspectorUrlIn, isInspectorBanner } from './js-stack.ts';
import { traceLogFields } from '../telemetry/otel-config.ts';

/**
 * How long reading a hung process's stack may hold its SIGTERM back (~0.15 s on an idle machine;
 * the chart's TERMINATE_TIMEOUT, 5 s by default, still bounds it).
 */
const STACK_CAPTURE_TIMEOUT_MS = 3_500;
import { rtcBundleForJobs } from './rtc-bundle.ts';

export interface ProcessHostConfig {
  /** Absolute path or `file:` URL of the user's agent module (read when a process starts). */
  agentModule: URL | (() => URL);
  /** Parent logger; child records arrive tagged with `procId`, `pid`, `jobId`, `roomName`. */
  logger: Logger;
  /** Budget of each shutdown callback in the child. */
  shutdownCallbackTimeout: number;
  /** RSS above which a warning is logged; 0 disables. */
  memoryWarnMb: number;
  /** RSS above which the process is ended; 0 disables. */
  memoryLimitMb: number;
  /** Default 5000. */
  memorySampleInterval?: number;
  /** A job process's loop blocked at least this long is logged and counted; 0: not watched. */
  loopStallThresholdMs?: number;
  /** Default 2500. */
  pingInterval?: number;
  /** No pong for this long means unresponsive. Default 30000. */
  pingTimeout?: number;
  /** Node flags of the child. Default: none from a build; tsx and the source condition from sources. */
  execArgv?: string[];
  /** Extra environment on top of `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Time of the pinger and the memory watch. Default: the system clock. */
  clock?: Clock;
  /**
   * The prebuilt `@livekit/rtc-node` the process loads, read when it starts. Default: the
   * worker process's own (`./rtc-bundle.ts`), once it is built.
   */
  rtcBundle?: () => RtcBundle | undefined;
  /** A job's `ctx.checkpoint(value)`, for the job journal (`src/recovery/`). */
  onCheckpoint?: (jobId: string, value: JsonValue) => void;
  /**
   * The trace context of a job's span, sent with its launch when tracing is on
   * (`../telemetry/job-traces.ts`).
   */
  traceCarrier?: (jobId: string) => TraceCarrier | undefined;
  /** A traced job process's finished spans, for the worker to export. */
  onSpans?: (m: ForwardedSpans) => void;
}

// From a build the child is plain `node` running `job-entry.js`: a TypeScript agent was compiled
// by the worker already (src/agent-file/compile-typescript.ts). Only the repo's own runs from
// sources need tsx in the child, for agentstate's own `.ts` files.
const JOB_ENTRY = new URL(
  RUNS_FROM_SOURCE ? '../job-process/job-entry.ts' : '../job-process/job-entry.js',
  import.meta.url,
);

/**
 * First thing in every job process, before Node loads tinypool's entry or anything else: stop
 * signals are ignored (`../job-process/job-entry.ts` says why). Set by the job entry alone, a
 * signal sent to the whole group while a process was still booting (a burst's processes, a
 * drain's first instant) killed it. Inline, so it needs no file and no loader.
 */
const IGNORE_STOP_SIGNALS = `data:text/javascript,for(const s of ${JSON.stringify(STOP_SIGNALS_IGNORED)})process.on(s,()=>{})`;

function defaultExecArgv(): string[] {
  const first = ['--import', IGNORE_STOP_SIGNALS];
  if (!RUNS_FROM_SOURCE) return first;
  return [...first, `--conditions=${SOURCE_CONDITION}`, '--import', import.meta.resolve('tsx')];
}

export function createProcessHost(config: ProcessHostConfig) {
  return fromCallback<ProcessHostCommand, ProcessHostInput>(({ sendBack, receive, input }) => {
    const emit = (e: ProcessHostEvent) => sendBack(e);
    let log = config.logger.child({ procId: input.procId });
    // The process's own logger; `log` adds the job's fields while it runs one.
    let processLog = log;
    const pool = new Tinypool({
      runtime: 'child_process',
      filename: JOB_ENTRY.href,
      minThreads: 0,
      maxThreads: 1,
      // The idle process after its job is stopped by the chart, not by tinypool's idle reaper.
      idleTimeout: 2 ** 31 - 1,
      // The child starts at the worker's current level, so it does not forward records the
      // worker would drop (nor drop records the worker would print).
      env: {
        ...process.env,
        [LOG_LEVEL_ENV]: getLogLevel(),
        ...config.env,
        [JOB_PROCESS_ENV]: '1',
      },
      execArgv: config.execArgv ?? defaultExecArgv(),
      serialization: 'advanced',
    });
    // Exits are learnt from the process itself; this only keeps an idle exit from being fatal.
    const onPoolError = (err: unknown) => log.debug('tinypool reported', { error: err });
    pool.on('error', onPoolError);

    let toChild: ((m: HostMessage) => void) | undefined;
    let channelOpen = true;
    const agentModule = (
      typeof config.agentModule === 'function' ? config.agentModule() : config.agentModule
    ).href;
    const task: JobProcessTask = {
      procId: input.procId,
      agentModule,
      orphanGraceMs: orphanGrace(config.shutdownCallbackTimeout),
      loopStallThresholdMs: config.loopStallThresholdMs ?? 0,
    };
    const rtcBundle = config.rtcBundle ? config.rtcBundle() : rtcBundleForJobs(config.logger);
    if (rtcBundle) task.rtcBundle = rtcBundle;
    pool
      .run(task, {
        channel: {
          onMessage: (forward: (m: unknown) => void) => {
            toChild = (m) => {
              if (channelOpen) forward(m);
            };
          },
          postMessage: (m: unknown) => {
            if (channelOpen && isChildMessage(m)) onChildMessage(m);
          },
          onClose: () => {
            channelOpen = false;
          },
        },
      })
      // The outcome travels over IPC and the exit listener; a rejection here only repeats it.
      .catch((err: unknown) => log.debug('job process task settled', { error: err }));

    // tinypool forks synchronously inside run(); `.process` is untyped, hence the cast.
    const child = (pool.threads[0] as unknown as { process?: ChildProcess } | undefined)?.process;
    const pid = child?.pid;
    const clock = config.clock ?? systemClock;
    let exited: { code: number | null; signal: string | null } | undefined;
    let stopMemoryWatch: (() => void) | undefined;
    // From `prewarmed` until the job returns or the process exits.
    let pinger: Heartbeat | undefined;
    let launchedAt: number | undefined;
    // The job the process runs, from its launch to its end.
    let jobId: string | undefined;
    // The child's inspector address, once a stack capture made it print one.
    let onInspectorUrl: ((url: string) => void) | undefined;
    const inspectorUrl = new Promise<string>((resolve) => {
      onInspectorUrl = resolve;
    });
    // A capture under way, cancelled by SIGKILL or the actor's stop.
    let capture: AbortController | undefined;

    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      exited = { code, signal };
      pinger?.stop();
      stopMemoryWatch?.();
      log.debug('job process exited', { code, signal });
      emit({ type: 'CHILD_EXITED', code, signal });
    };

    if (!child || pid === undefined) {
      emit({ type: 'PREWARM_FAILED', error: 'the job process could not be started' });
      exited = { code: null, signal: null };
    } else {
      log = log.child({ pid });
      processLog = log;
      relayChildOutput(
        child,
        () => log,
        (line) => {
          const url = inspectorUrlIn(line);
          if (url) onInspectorUrl?.(url);
          return isInspectorBanner(line);
        },
      );
      child.once('exit', onExit);
      trackJobProcess(child);
      emit({ type: 'PROCESS_SPAWNED', pid });
      stopMemoryWatch = startMemoryWatch({
        pid,
        warnMb: config.memoryWarnMb,
        limitMb: config.memoryLimitMb,
        intervalMs: config.memorySampleInterval ?? 5000,
        clock,
        log: () => log,
        onExceeded: (rssMb) =>
          emit({ type: 'MEMORY_EXCEEDED', rssMb, limitMb: config.memoryLimitMb }),
      });
    }

    const startPinging = (): Heartbeat =>
      startHeartbeat({
        clock,
        intervalMs: config.pingInterval ?? 2500,
        silenceLimitMs: config.pingTimeout ?? 30_000,
        ping: () => toChild?.({ type: 'ping', sentAt: clock.now() }),
        onSilent: (silentMs) => emit({ type: 'PING_TIMED_OUT', silentMs }),
      });

    function onChildMessage(m: ChildMessage): void {
      switch (m.type) {
        case 'log':
          log[m.level](m.message, m.fields);
          return;
        case 'pong':
          pinger?.heard();
          return;
        case 'checkpoint':
          config.onCheckpoint?.(m.jobId, m.value);
          return;
        case 'loopStalled':
          log.warn('event loop stalled', {
            process: 'job',
            stalledMs: m.stalledMs,
            thresholdMs: config.loopStallThresholdMs,
          });
          publishLoopStall({ process: 'job', stalledMs: m.stalledMs, ...(jobId ? { jobId } : {}) });
          return;
        case 'spans':
          config.onSpans?.(m);
          return;
        case 'prewarmed':
          pinger = startPinging();
          emit({ type: 'PREWARM_SUCCEEDED', rssMb: m.rssMb });
          return;
        case 'prewarmFailed':
          emit({ type: 'PREWARM_FAILED', error: m.error });
          return;
        case 'started':
          emit({ type: 'JOB_RUNNING' });
          return;
        // The pinger keeps going: a reused process is watched between jobs too.
        case 'ended':
        case 'failed': {
          const { clean, rssGrowthMb } = m;
          log.debug('job torn down', { clean, rssGrowthMb });
          log = processLog;
          jobId = undefined;
          emit(
            m.type === 'ended'
              ? { type: 'JOB_RETURNED', outcome: 'success', reason: m.reason, clean, rssGrowthMb }
              : { type: 'JOB_RETURNED', outcome: 'failed', reason: m.error, clean, rssGrowthMb },
          );
          return;
        }
      }
    }

    /**
     * Reads what the process's JavaScript is doing, logs it with the reason it is ended for,
     * and only then asks it to exit; SIGKILL (the chart's next step) cancels the capture.
     */
    function explainAndTerminate(reason: string): void {
      if (exited || !child || capture) return terminate();
      const ctl = new AbortController();
      capture = ctl;
      void captureJsStack({
        child,
        inspectorUrl,
        timeoutMs: STACK_CAPTURE_TIMEOUT_MS,
        signal: ctl.signal,
      }).then((stack) => {
        if (ctl.signal.aborted) return;
        capture = undefined;
        log.error('job process ended by the worker', {
          reason,
          ...(stack.ok
            ? { stack: stack.frames, stackCaptureMs: stack.tookMs }
            : { stackUnavailable: stack.error }),
        });
        terminate();
      });
    }

    /** The job's trace context; a tracer that throws costs the trace, never the launch. */
    function carrierFor(jobId: string): TraceCarrier | undefined {
      try {
        return config.traceCarrier?.(jobId);
      } catch (error) {
        log.debug('no trace context for the job', { error });
        return undefined;
      }
    }

    function signal(sig: NodeJS.Signals): void {
      if (exited) {
        // Already gone (e.g. it died while the chart was deciding): say so again so the chart can finish.
        emit({ type: 'CHILD_EXITED', ...exited });
        return;
      }
      log.debug('signalling job process', { signal: sig });
      child?.kill(sig);
    }

    /**
     * The polite stop: `terminate` over IPC, as the process ignores SIGTERM (./job-entry.ts).
     * A process that cannot be told (its channel not open yet, or gone) is killed instead: it
     * has no job to lose, and it would never hear anything else.
     */
    function terminate(): void {
      if (!exited && toChild && channelOpen && child?.connected) {
        log.debug('asking job process to exit');
        toChild({ type: 'terminate' });
        return;
      }
      signal('SIGKILL');
    }

    receive((cmd) => {
      switch (cmd.type) {
        case 'JOB_LAUNCH_REQUESTED': {
          launchedAt = clock.now();
          jobId = cmd.job.jobId;
          const roomName = (cmd.job.job as { room?: { name?: string } } | null)?.room?.name;
          const trace = carrierFor(cmd.job.jobId);
          log = processLog.child({ jobId: cmd.job.jobId, roomName, ...traceLogFields(trace) });
          toChild?.({
            type: 'launch',
            job: cmd.job,
            callbackTimeout: config.shutdownCallbackTimeout,
            ...(trace ? { trace } : {}),
          });
          return;
        }
        case 'JOB_SHUTDOWN_REQUESTED':
          toChild?.({ type: 'shutdown', reason: cmd.reason });
          return;
        case 'SILENCE_MEASURE_REQUESTED': {
          const sinceLaunchMs = launchedAt === undefined ? 0 : clock.now() - launchedAt;
          emit({
            type: 'SILENCE_MEASURED',
            silentMs: pinger ? pinger.silentMs() : sinceLaunchMs,
            sinceLaunchMs,
          });
          return;
        }
        case 'EXIT_REQUESTED':
          if (cmd.captureStack) explainAndTerminate(cmd.reason);
          else {
            log.debug('ending job process', { reason: cmd.reason });
            terminate();
          }
          return;
        case 'SIGKILL_REQUESTED':
          capture?.abort();
          capture = undefined;
          signal('SIGKILL');
          return;
      }
    });

    return () => {
      capture?.abort();
      pinger?.stop();
      stopMemoryWatch?.();
      channelOpen = false;
      child?.off('exit', onExit);
      // The chart only stops us after the exit; if our parent stops us early, no process may outlive us.
      if (!exited) child?.kill('SIGKILL');
      pool
        .destroy()
        .catch((err: unknown) => log.debug('tinypool destroy failed', { error: err }))
        .finally(() => pool.off('error', onPoolError));
    };
  });
}

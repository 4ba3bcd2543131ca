/**
 * The job process's life after its entry (`./job-entry.ts`) has loaded rtc-node: import the
 * user's agent module, prewarm once, warm the job path, wait for a job, run it (`./runtime.ts`)
 * and report how it ended, with the facts the host decides reuse on. The host then stops the
 * process, or (with `jobsPerProcess` above 1) gives it the next job.
 */
import { importAgentModule } from '../agent-file/load.ts';
import { JobProcess } from './process.ts';
import type { RtcPreload } from './rtc-preload.ts';
import { errorMessage } from '../errors.ts';
import { startJob, type RunningJob } from './runtime.ts';
import { startNativeRuntime, warmJobRuntime } from './warm-up.ts';
import { createLogger, setLogSink, type Logger } from '../log/logger.ts';
import { watchEventLoop } from '../telemetry/loop-stall.ts';
import { otelWanted } from '../telemetry/otel-config.ts';
import type { JobTracing } from '../telemetry/job-spans.ts';
import { setExitFlush } from './exit-flush.ts';
import type { WorkerOptions } from '../options/worker-options.ts';
import {
  isHostMessage,
  type ChildMessage,
  type HostMessage,
  type JobProcessTask,
} from '../../machines/jobIpc.contract.ts';

type AgentFunctions = Pick<WorkerOptions, 'entrypointFnc' | 'prewarmFnc' | 'tracerProvider'>;

function write(m: ChildMessage): void {
  // The channel may already be closed when the host is gone; nothing useful can be done then.
  if (process.connected) process.send?.(m, undefined, {}, () => {});
}

/**
 * The job whose `started` is still to be written. Its entrypoint is called first and the report
 * follows in the same tick, so the IPC write (~0.1 ms) is not on the job's way to its first
 * line; whatever is sent before then (a record the entrypoint logs at once, a pong) writes it
 * first, so the host still reads `started` before anything else of the job.
 */
let unsentStart: string | undefined;

function send(m: ChildMessage): void {
  flushStarted();
  write(m);
}

function flushStarted(): void {
  if (unsentStart === undefined) return;
  const jobId = unsentStart;
  unsentStart = undefined;
  write({ type: 'started', jobId });
}

type Launch = Extract<HostMessage, { type: 'launch' }>;

/** What ends the wait for the next job: a job, started, or the host having gone away. */
type NextJob = { type: 'started'; job: RunningJob } | { type: 'hostGone' };

/** Starts a launched job; called in the tick its `launch` message arrives in. */
type StartJob = (launch: Launch) => RunningJob;

interface StarterOptions {
  entrypointFnc: AgentFunctions['entrypointFnc'];
  proc: JobProcess;
  log: Logger;
  /**
   * Whether the host hears that the job runs (`started`, written once the entrypoint is called).
   * A flag, not a callback: the rehearsal runs every line a real start does.
   */
  announces: boolean;
  /** Set when tracing is on: a launch that carries a trace context is traced. */
  tracing?: JobTracing | undefined;
}

/**
 * How a launch becomes a running job. The warm-up rehearses with one of these too (announcing
 * nothing), so the real one runs compiled code at the first job.
 */
function jobStarter(o: StarterOptions): StartJob {
  return (launch) => {
    if (o.announces) unsentStart = launch.job.jobId;
    const spans = launch.trace && o.tracing?.forJob(launch.job, launch.trace);
    try {
      return startJob({
        entrypointFnc: o.entrypointFnc,
        info: launch.job,
        proc: o.proc,
        log: o.log.child(
          spans
            ? {
                jobId: launch.job.jobId,
                traceId: () => spans.logFields().traceId,
                spanId: () => spans.logFields().spanId,
              }
            : { jobId: launch.job.jobId },
        ),
        callbackTimeout: launch.callbackTimeout,
        ...(spans ? { spans } : {}),
        ...(o.announces
          ? {
              checkpoint: (value) => send({ type: 'checkpoint', jobId: launch.job.jobId, value }),
            }
          : {}),
      });
    } finally {
      flushStarted();
    }
  };
}

/**
 * Waits for the host's next job between jobs, and routes `shutdown` to the running job; pings
 * are answered by the listener all along. A `launch` that finds the task waiting starts its job
 * inside the message listener itself: the hand-off does not wait for the promise the loop
 * awaits to settle (a microtask turn behind the rest of Node's tick).
 */
class Inbox {
  #waiting:
    { resolve: (m: NextJob) => void; reject: (err: unknown) => void; start: StartJob } | undefined;
  #queued: Launch[] = [];
  #job: RunningJob | undefined;
  #gone = false;

  readonly listener = (raw: unknown): void => {
    if (!isHostMessage(raw)) return;
    if (raw.type === 'ping') {
      send({ type: 'pong', sentAt: raw.sentAt });
      return;
    }
    // `shutdown` is for the running job. Between jobs there is none: the host ends an idle
    // process with `terminate`, so one that crossed its job's end on the way is dropped.
    if (raw.type === 'shutdown') {
      this.#job?.shutdown(raw.reason);
      return;
    }
    // The process's own listener (./job-entry.ts) exits on it.
    if (raw.type === 'terminate') return;
    const w = this.#waiting;
    if (!w) {
      this.#queued.push(raw);
      return;
    }
    this.#waiting = undefined;
    // A start that throws fails the task as it would have in the loop, not the listener.
    try {
      w.resolve(this.#begin(raw, w.start));
    } catch (err) {
      w.reject(err);
    }
  };

  #begin(launch: Launch, start: StartJob): NextJob {
    // Until `detach`, `shutdown` goes to this job.
    this.#job = start(launch);
    return { type: 'started', job: this.#job };
  }

  /** The next job, started with `start`, or the host having gone. */
  next(start: StartJob): Promise<NextJob> {
    const m = this.#queued.shift();
    if (m) return Promise.resolve(this.#begin(m, start));
    if (this.#gone) return Promise.resolve({ type: 'hostGone' });
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject, start };
    });
  }

  detach(): void {
    this.#job = undefined;
  }

  /** The host went away: end the job if there is one, and stop waiting for the next. */
  hostGone(): void {
    this.#gone = true;
    this.#job?.shutdown('worker process went away');
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.resolve({ type: 'hostGone' });
  }
}

export async function runJobDialogue(task: JobProcessTask, rtc: RtcPreload): Promise<string> {
  const log = createLogger({ procId: task.procId, pid: process.pid });
  setLogSink((level, message, fields) =>
    send({ type: 'log', level: level as 'info', message, fields }),
  );
  const inbox = new Inbox();
  const onDisconnect = () => {
    inbox.hostGone();
    // No host is left to enforce the shutdown deadline, and leaving a room whose server is gone
    // too can wait forever: an orphan ends itself once its callbacks have had their budget.
    setTimeout(() => process.exit(1), task.orphanGraceMs).unref();
  };
  process.on('message', inbox.listener);
  process.on('disconnect', onDisconnect);
  // The host may have gone while rtc-node and this module loaded: no 'disconnect' is left to come.
  if (!process.connected) onDisconnect();
  try {
    return await dialogue(task, inbox, log, rtc);
  } finally {
    process.off('message', inbox.listener);
    process.off('disconnect', onDisconnect);
    if (!process.connected) process.exit(0); // orphaned: no host will stop us
  }
}

async function dialogue(
  task: JobProcessTask,
  inbox: Inbox,
  log: ReturnType<typeof createLogger>,
  rtc: RtcPreload,
): Promise<string> {
  const proc = new JobProcess(process.pid);
  let agent: AgentFunctions;
  // Before the agent module: the native runtime is configured by us, whatever it imports.
  startNativeRuntime();
  try {
    agent = await importAgentModule(new URL(task.agentModule));
    await agent.prewarmFnc?.(proc);
  } catch (err) {
    log.error('prewarm failed', { error: err });
    send({ type: 'prewarmFailed', error: errorMessage(err) });
    return 'prewarm failed';
  }
  // The rehearsed start takes the way a launch does: the message listener, the hand-off, a starter.
  const warm = warmJobRuntime(proc, (info, entrypointFnc, quiet) => {
    const rehearsal = new Inbox();
    void rehearsal.next(jobStarter({ entrypointFnc, proc, log: quiet, announces: false }));
    rehearsal.listener({ type: 'launch', job: info, callbackTimeout: 1_000 } satisfies Launch);
  });
  if (Object.values(warm).includes(false)) {
    log.debug('job runtime warm-up skipped a step', { ...warm });
  }
  if (rtc.loadedFrom !== 'bundle') {
    log.debug('@livekit/rtc-node loaded from its own files', { reason: rtc.reason });
  }
  // After the warm-up, so the cache holds what it compiled too; once per bundle, not per process.
  rtc.saveCodeCache();
  const tracing = await startTracingIfWanted(agent, log);
  // Growth is counted from here, warm and idle, for the host's reuse decision.
  const warmRss = process.memoryUsage.rss();
  send({ type: 'prewarmed', rssMb: Math.round(warmRss / 2 ** 20) });
  // Watched from here: a stall is reported once the loop turns again (the host logs it with
  // the job it belongs to). For the process's life; nothing stops it but the exit.
  watchEventLoop({
    thresholdMs: task.loopStallThresholdMs,
    onStall: (stalledMs) => send({ type: 'loopStalled', stalledMs }),
  });

  // One job after another: the host decides after each end whether this process takes another
  // (process reuse) or stops it; without reuse the first end is the last.
  // `started` is said in the same tick as the entrypoint is called (startJob calls it at once),
  // and before anything the entrypoint logs (`unsentStart`): the worker knows the job runs before
  // it reads its records, and starts the spare replacing this process only now, not during the
  // hand-off.
  const start = jobStarter({
    entrypointFnc: agent.entrypointFnc,
    proc,
    log,
    announces: true,
    tracing,
  });
  for (;;) {
    const next = await inbox.next(start);
    if (next.type !== 'started') return 'host gone';
    const { job } = next;
    const end = await job.done;
    inbox.detach();
    const rssGrowthMb = Math.round((process.memoryUsage.rss() - warmRss) / 2 ** 20);
    send(
      end.outcome === 'success'
        ? { type: 'ended', reason: end.reason, clean: end.clean, rssGrowthMb }
        : { type: 'failed', error: end.reason, clean: end.clean, rssGrowthMb },
    );
  }
}

/**
 * Tracing in this process, when the standard environment or the agent's `tracerProvider` asks
 * for it: only then is OpenTelemetry's SDK imported. A failure leaves the job untraced.
 */
async function startTracingIfWanted(
  agent: AgentFunctions,
  log: Logger,
): Promise<JobTracing | undefined> {
  try {
    const wanted = otelWanted(process.env, agent.tracerProvider !== undefined);
    if (!wanted?.traces) return undefined;
    const { startJobTracing } = await import('../telemetry/job-spans.ts');
    // The spans go to the worker over IPC, which exports them (../telemetry/span-forwarding.ts).
    const tracing = await startJobTracing(wanted, agent.tracerProvider, log, (m, sent) => {
      flushStarted();
      if (process.connected) process.send?.(m, undefined, {}, () => sent());
      else sent();
    });
    // What is batched goes out before the host's `terminate` ends the process (./job-entry.ts).
    if (tracing) setExitFlush(() => tracing.flush());
    return tracing;
  } catch (error) {
    log.warn('OpenTelemetry tracing could not be set up; the job runs untraced', { error });
    return undefined;
  }
}

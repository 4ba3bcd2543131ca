/**
 * The child side of a job process: the module tinypool loads in the forked process, whose
 * default export is the one long task the host runs in it. The task imports the user's agent
 * module, prewarms once, waits for a job, runs it (`./runtime.ts`) and reports how it ended,
 * with the facts the host decides reuse on. The host then stops the process, or (with
 * `jobsPerProcess` above 1) gives it the next job.
 */
import { importAgentModule } from '../agent-file/load.ts';
import { JobProcess } from './process.ts';
import { errorMessage, startJob, type RunningJob } from './runtime.ts';
import { warmJobRuntime } from './warm-up.ts';
import { createLogger, setLogSink } from '../log.ts';
import type { WorkerOptions } from '../options.ts';
import {
  isHostMessage,
  type ChildMessage,
  type HostMessage,
  type JobProcessTask,
} from '../pool/ipc.ts';

/**
 * Ctrl-C reaches the whole process group; the worker decides how its jobs end (drain), so a job
 * process ignores SIGINT. SIGTERM keeps its default (exit): it is the host's second step.
 */
process.on('SIGINT', () => {});

type AgentFunctions = Pick<WorkerOptions, 'entrypointFnc' | 'prewarmFnc'>;

function send(m: ChildMessage): void {
  // The channel may already be closed when the host is gone; nothing useful can be done then.
  if (process.connected) process.send?.(m, undefined, {}, () => {});
}

/** What ends the wait for the next job: a job, or the host having gone away. */
type NextJob = Extract<HostMessage, { type: 'launch' }> | { type: 'hostGone' };

/**
 * Waits for the host's next job between jobs, and routes `shutdown` to the running job; pings
 * are answered by the listener all along.
 */
class Inbox {
  #waiting: ((m: NextJob) => void) | undefined;
  #queued: NextJob[] = [];
  #job: RunningJob | undefined;
  #gone = false;

  readonly listener = (raw: unknown): void => {
    if (!isHostMessage(raw)) return;
    if (raw.type === 'ping') {
      send({ type: 'pong', sentAt: raw.sentAt });
      return;
    }
    // `shutdown` is for the running job. Between jobs there is none: the host ends an idle
    // process with a signal, so one that crossed its job's end on the way is dropped.
    if (raw.type === 'shutdown') {
      this.#job?.shutdown(raw.reason);
      return;
    }
    this.#deliver(raw);
  };

  #deliver(m: NextJob): void {
    const w = this.#waiting;
    this.#waiting = undefined;
    if (w) w(m);
    else this.#queued.push(m);
  }

  next(): Promise<NextJob> {
    const m = this.#queued.shift();
    if (m) return Promise.resolve(m);
    if (this.#gone) return Promise.resolve({ type: 'hostGone' });
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  /** Until `detach`, `shutdown` goes to this job. */
  attach(job: RunningJob): void {
    this.#job = job;
  }

  detach(): void {
    this.#job = undefined;
  }

  /** The host went away: end the job if there is one, and stop waiting for the next. */
  hostGone(): void {
    this.#gone = true;
    this.#job?.shutdown('worker process went away');
    this.#deliver({ type: 'hostGone' });
  }
}

export default async function runJobProcess(task: JobProcessTask): Promise<string> {
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
  try {
    return await dialogue(task, inbox, log);
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
): Promise<string> {
  const proc = new JobProcess(process.pid);
  let agent: AgentFunctions;
  try {
    agent = await importAgentModule(task.agentModule);
    await agent.prewarmFnc?.(proc);
  } catch (err) {
    log.error('prewarm failed', { error: err });
    send({ type: 'prewarmFailed', error: errorMessage(err) });
    return 'prewarm failed';
  }
  const warm = warmJobRuntime(proc);
  if (Object.values(warm).includes(false)) {
    log.debug('job runtime warm-up skipped a step', { ...warm });
  }
  // Growth is counted from here, warm and idle, for the host's reuse decision.
  const warmRss = process.memoryUsage.rss();
  send({ type: 'prewarmed' });

  // One job after another: the host decides after each end whether this process takes another
  // (process reuse) or stops it; without reuse the first end is the last.
  for (;;) {
    const next = await inbox.next();
    if (next.type !== 'launch') return 'host gone';
    const jobLog = log.child({ jobId: next.job.jobId });
    // Said in the same tick as the entrypoint is called (startJob calls it at once), and before
    // anything the entrypoint logs: the worker knows the job runs before it reads its records,
    // and starts the spare replacing this process only now, not during the hand-off.
    send({ type: 'started', jobId: next.job.jobId });
    const job = startJob({
      entrypointFnc: agent.entrypointFnc,
      info: next.job,
      proc,
      log: jobLog,
      callbackTimeout: next.callbackTimeout,
    });
    inbox.attach(job);
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

/**
 * The child side of a job process: the module tinypool loads in the forked process, whose
 * default export is the one long task the host runs in it. The task imports the user's agent
 * module, prewarms once, waits for a job, runs it (`./runtime.ts`) and reports how it
 * ended. The process is then stopped by its host; it never runs a second job.
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

/** Waits for the host's first command after prewarm; pings are answered meanwhile by the listener. */
class Inbox {
  #waiting: ((m: HostMessage) => void) | undefined;
  #queued: HostMessage[] = [];
  #job: RunningJob | undefined;

  readonly listener = (raw: unknown): void => {
    if (!isHostMessage(raw)) return;
    if (raw.type === 'ping') {
      send({ type: 'pong', sentAt: raw.sentAt });
      return;
    }
    if (raw.type === 'shutdown' && this.#job) {
      this.#job.shutdown(raw.reason);
      return;
    }
    if (this.#waiting) {
      const w = this.#waiting;
      this.#waiting = undefined;
      w(raw);
    } else {
      this.#queued.push(raw);
    }
  };

  next(): Promise<HostMessage> {
    const m = this.#queued.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  /** From now on `shutdown` goes to this job. */
  attach(job: RunningJob): void {
    this.#job = job;
  }

  /** The host went away: end the job if there is one, else stop waiting. */
  hostGone(): void {
    if (this.#job) this.#job.shutdown('worker process went away');
    else this.listener({ type: 'shutdown', reason: 'worker process went away' });
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
  send({ type: 'prewarmed' });

  const first = await inbox.next();
  if (first.type !== 'launch') return 'stopped before a job';

  const jobLog = log.child({ jobId: first.job.jobId });
  // Said in the same tick as the entrypoint is called (startJob calls it at once), and before
  // anything the entrypoint logs: the worker knows the job runs before it reads its records,
  // and starts the spare replacing this process only now, not during the hand-off.
  send({ type: 'started', jobId: first.job.jobId });
  const job = startJob({
    entrypointFnc: agent.entrypointFnc,
    info: first.job,
    proc,
    log: jobLog,
    callbackTimeout: first.callbackTimeout,
  });
  inbox.attach(job);
  const end = await job.done;
  send(
    end.outcome === 'success'
      ? { type: 'ended', reason: end.reason }
      : { type: 'failed', error: end.reason },
  );
  return end.outcome;
}

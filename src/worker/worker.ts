/**
 * `Worker`: the programmatic face of the worker chart. It resolves options, wires the chart to
 * its real effects (server link, load sampler, request decisions, job processes), handles
 * SIGTERM/SIGINT/SIGHUP, and exposes what users and tools read: `id`, `status`, `activeJobs`,
 * `processes` and `on(type, fn)` (the chart's records); `actor` is for the inspector and tests.
 */
import { fileURLToPath } from 'node:url';
import type { Actor } from 'xstate';
import {
  activeJobs,
  statusOf,
  type ActiveJob,
  type ProcRecord,
  type WorkerEmitted,
  type WorkerStatusName,
} from '../../machines/worker.contract.ts';
import type { workerMachine } from '../../machines/worker.machine.ts';
import { isTypeScriptFile } from '../agent-file/typescript-file.ts';
import { agentModuleFor } from '../agent-file/load.ts';
import { AgentStateError, ServerRefusedError } from '../errors.ts';
import { isJobProcess, registerAgentOptions } from '../runtime-registry.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import { publishLoopStall, watchEventLoop } from '../telemetry/loop-stall.ts';
import { otelWanted, traceLogFields, type OtelWanted } from '../telemetry/otel-config.ts';
import type { WorkerTelemetry } from '../telemetry/worker-telemetry.ts';
import type { ResolvedWorkerOptions } from '../options/resolve.ts';
import { WorkerOptions, type WorkerOptionsInit } from '../options/worker-options.ts';
import { onStopSignals } from './stop-signals.ts';
import type { WorkerRunConfig } from './run-config.ts';
import type { Recoverer, RecoveryRecord, RecoveryStatus } from '../recovery/recoverer.ts';

// In a job process a Worker only hands its options to the job runtime (`run()` below), so the
// chart and its effects — xstate, the server link, the process pool, a third of a second of CPU
// and ~30 MB — are loaded only in the worker process.
const runtime = isJobProcess() ? undefined : await import('./worker-actor.ts');
// Nor does a job process resolve options: the environment's defaults and the proxy are the
// worker's business.
const resolution = isJobProcess() ? undefined : await import('../options/resolve.ts');

export type { ActiveJob, WorkerStatusName };
export type { WorkerRunConfig } from './run-config.ts';

/** A job process of this worker: its id, phase, pid once spawned, and the job it holds. */
export type JobProcessView = Readonly<ProcRecord>;

/** What `worker.on()` follows: the chart's records and job recovery's (`RecoveryRecord`). */
export type WorkerRecord = WorkerEmitted | RecoveryRecord;

/** The listener of `worker.on(type, fn)`: the record of that type (every record for `'*'`). */
export type WorkerListener<T extends WorkerRecord['type'] | '*'> = (
  e: T extends '*' ? WorkerRecord : Extract<WorkerRecord, { type: T }>,
) => void;

type WorkerActor = Actor<typeof workerMachine>;

export class Worker {
  /** The options as the user gave them. */
  readonly options: WorkerOptions;
  readonly #config: WorkerRunConfig;
  /** Resolved once, at construction; none in a job process, which starts no worker. */
  readonly #resolved: ResolvedWorkerOptions | undefined;
  #actor: WorkerActor | undefined;
  #done: Promise<void> | undefined;
  #log: Logger;
  readonly #listeners = new Set<(e: WorkerRecord) => void>();
  #recovery: Recoverer | undefined;
  /** What the standard `OTEL_*` environment (or `tracerProvider`) asks for; none in a job process. */
  readonly #otel: OtelWanted | undefined;
  #telemetry: WorkerTelemetry | undefined;

  /**
   * Resolves the options (defaults, environment, CLI overrides) at once: an invalid option or
   * missing credentials throw `InvalidOptionError` here, before anything starts. Inside a job
   * process nothing is resolved (`run()` only hands the options to the job runtime).
   */
  constructor(options: WorkerOptions | WorkerOptionsInit, config: WorkerRunConfig = {}) {
    this.options = options instanceof WorkerOptions ? options : new WorkerOptions(options);
    this.#config = config;
    const log = config.logger ?? createLogger();
    if (isJobProcess()) {
      this.#log = log;
      return;
    }
    const resolved = resolution!.resolveOptions(this.options, config);
    this.#resolved = resolved;
    // The job processes inherit this environment and read it the same way.
    this.#otel = otelWanted(process.env, this.options.tracerProvider !== undefined);
    // Every record carries the agent name ('' for automatic dispatch) and, once registered, the
    // worker id; job processes log through this logger too, so their records get both.
    this.#log = log.child({ agentName: resolved.agentName, workerId: () => this.id });
  }

  /** The server-assigned worker id (`AW_…`), once registered. */
  get id(): string | undefined {
    return this.#actor?.getSnapshot().context.workerId;
  }

  /** The running chart, for the inspector and tests. `undefined` before `run()`. */
  get actor(): WorkerActor | undefined {
    return this.#actor;
  }

  /** The options after defaults, environment and CLI overrides. */
  get resolvedOptions(): ResolvedWorkerOptions {
    if (!this.#resolved) {
      throw new AgentStateError('resolvedOptions: a job process resolves no worker options');
    }
    return this.#resolved;
  }

  /** The worker's logger: every record carries its agent name and, once registered, its id. */
  get logger(): Logger {
    return this.#log;
  }

  /** Where the worker is, in one word: the tag of its lifecycle state. */
  get status(): WorkerStatusName {
    const snap = this.#actor?.getSnapshot();
    return snap ? statusOf(snap) : 'connecting';
  }

  /** The last load sample, in [0, 1]. */
  get load(): number {
    return this.#actor?.getSnapshot().context.load ?? 0;
  }

  get activeJobs(): readonly ActiveJob[] {
    const ctx = this.#actor?.getSnapshot().context;
    return ctx ? activeJobs(ctx) : [];
  }

  /** Its job processes, warm or busy; empty before `run()`. */
  get processes(): readonly JobProcessView[] {
    return Object.values(this.#actor?.getSnapshot().context.procs ?? {});
  }

  /**
   * Follows what the worker reports (its chart's emitted records, `WorkerEmitted`):
   * `worker.on('jobEnded', (e) => …)`, or `'*'` for every record. May be called before `run()`.
   * Returns the function that stops listening.
   */
  on<T extends WorkerRecord['type'] | '*'>(type: T, fn: WorkerListener<T>): () => void {
    const listener = (e: WorkerRecord) => {
      if (type === '*' || e.type === type) (fn as (e: WorkerRecord) => void)(e);
    };
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Connects, registers and serves jobs until drained or stopped. Resolves when the worker has
   * stopped; rejects with `ServerRefusedError` when the server refuses it (bad credentials or
   * URL). In a job process it only hands the options to the job runtime and resolves.
   */
  run(): Promise<void> {
    if (!this.#resolved) {
      registerAgentOptions(this.options);
      return Promise.resolve();
    }
    this.#done ??= this.#start(this.#resolved);
    return this.#done;
  }

  /**
   * Job recovery's state: its store (`disk`, `redis`, `none`), whether it is up, why not, and
   * which running jobs are recoveries. `undefined` when recovery is off or before `run()`.
   */
  get recovery(): RecoveryStatus | undefined {
    return this.#recovery?.status();
  }

  /** Stops taking jobs, waits for running ones (up to `drainTimeout`), then stops. */
  async drain(reason = 'drain requested'): Promise<void> {
    if (!this.#actor) return;
    this.#actor.send({ type: 'DRAIN_REQUESTED', reason });
    await this.#done?.catch(() => undefined);
  }

  /**
   * Calls `listener` after every change of the worker's state (status, load, jobs, processes)
   * until the returned remover is called. Nothing happens before `run()`.
   */
  subscribe(listener: () => void): () => void {
    const sub = this.#actor?.subscribe({ next: () => listener(), error: () => undefined });
    return () => sub?.unsubscribe();
  }

  /**
   * Replaces every idle process with a fresh one (running jobs are untouched): what `agent dev`
   * does when the agent's files change.
   */
  recycleIdleProcesses(reason = 'recycle requested'): void {
    this.#actor?.send({ type: 'PROCESSES_RECYCLE_REQUESTED', reason });
  }

  /**
   * Asks the server to create a job for this worker in `roomName` (LiveKit's `SimulateJobRequest`),
   * without a dispatch. Ignored unless registered. Used by `agent connect --room`.
   */
  simulateJob(roomName: string, participantIdentity?: string): void {
    this.#actor?.send({ type: 'JOB_SIMULATION_REQUESTED', roomName, participantIdentity });
  }

  /** Stops at once: running jobs are killed and reported failed. Idempotent. */
  async stop(reason = 'stop requested'): Promise<void> {
    if (!this.#actor) return;
    this.#actor.send({ type: 'FORCE_STOP_REQUESTED', reason });
    await this.#done?.catch(() => undefined);
  }

  #fanOut(ev: WorkerRecord): void {
    for (const listener of this.#listeners) {
      // A listener's throw must not reach the chart: it is logged, the others still run.
      try {
        listener(ev);
      } catch (err) {
        this.#log.error('a worker event listener threw', { event: ev.type, error: err });
      }
    }
  }

  async #start(resolved: ResolvedWorkerOptions): Promise<void> {
    if (!runtime) throw new AgentStateError('a job process cannot run a worker');
    const recovery =
      resolved.recovery === false
        ? undefined
        : runtime.createRecoverer({
            recovery: resolved.recovery,
            agentName: resolved.agentName,
            wsUrl: resolved.wsUrl,
            apiKey: resolved.apiKey,
            apiSecret: resolved.apiSecret,
            stateDir: resolved.stateDir,
            stateDirProblem: resolved.stateDirProblem,
            log: this.#log,
            emit: (r) => this.#fanOut(r),
            ...(this.#config.clock ? { clock: this.#config.clock } : {}),
          });
    this.#recovery = recovery;
    // The actor exists when run() returns (tools and tests read it at once).
    const running = this.#run(resolved, recovery);
    try {
      await running;
    } finally {
      await recovery?.stop();
    }
  }

  #run(resolved: ResolvedWorkerOptions, recovery: Recoverer | undefined): Promise<void> {
    if (!runtime) return Promise.reject(new AgentStateError('a job process cannot run a worker'));
    const log = this.#log;
    // Job processes run plain node: a TypeScript agent module (a main script run under tsx) is
    // compiled once, and the chart starts when it is; until then the actor exists, unstarted, so
    // metrics and the inspector can already follow it. The `agent` bin passes compiled JS.
    const modulePath = fileURLToPath(resolved.agentModule);
    let agentModule = resolved.agentModule;
    const compiled = isTypeScriptFile(modulePath)
      ? agentModuleFor(modulePath).then((m) => {
          agentModule = m;
        })
      : undefined;
    // OpenTelemetry's SDK is imported only when asked for; the chart starts once it is set up.
    const telemetry = this.#startTelemetry(resolved);
    const ready = compiled || telemetry ? Promise.all([compiled, telemetry]) : undefined;
    const finish = async (reason: string) => {
      await this.#telemetry?.stop(reason);
    };
    const actor = runtime.createWorkerActor({
      resolved,
      config: this.#config,
      log,
      view: this,
      agentModule: () => agentModule,
      ...(recovery ? { recovery } : {}),
      ...(this.#otel
        ? {
            onRecord: (ev) => this.#telemetry?.onRecord(ev),
            traceCarrier: (jobId) => this.#telemetry?.traces?.carrier(jobId),
            onSpans: (m) => this.#telemetry?.onForwardedSpans(m),
            jobLogFields: (jobId) => traceLogFields(this.#telemetry?.traces?.carrier(jobId)),
          }
        : {}),
    });
    this.#actor = actor;
    actor.on('*', (ev) => this.#fanOut(ev));
    recovery?.start({
      on: (type, fn) => this.on(type, fn as WorkerListener<'*'>),
      jobRecord: (jobId) => actor.getSnapshot().context.jobs[jobId],
      endJob: (jobId, reason) => actor.send({ type: 'JOB_TERMINATED', jobId, reason }),
    });
    const removeSignals =
      this.#config.handleSignals === false ? () => undefined : this.#onSignals();
    // The job path's warm-up runs beside the chart from its start until the worker stops.
    const rehearsal = new AbortController();
    let stopLoopWatch = () => {};
    const start = () => {
      stopLoopWatch = watchEventLoop({
        thresholdMs: resolved.eventLoopStallThreshold,
        onStall: (stalledMs) => {
          log.warn('event loop stalled', {
            process: 'worker',
            stalledMs,
            thresholdMs: resolved.eventLoopStallThreshold,
          });
          publishLoopStall({ process: 'worker', stalledMs });
        },
      });
      this.#telemetry?.follow(actor);
      actor.start();
      void runtime.rehearseJobPath(resolved, this.#config, rehearsal.signal).then((report) => {
        log.debug('rehearsed the job path', { ...report });
      });
    };
    return new Promise<void>((resolve, reject) => {
      const sub = actor.subscribe({
        complete: () => {
          rehearsal.abort();
          stopLoopWatch();
          sub.unsubscribe();
          removeSignals();
          const ctx = actor.getSnapshot().context;
          void finish(`worker stopped: ${ctx.stopReason ?? 'stop'}`).then(() => {
            if (ctx.refusal) reject(new ServerRefusedError(ctx.refusal));
            else resolve();
          });
        },
        error: (err) => {
          rehearsal.abort();
          stopLoopWatch();
          removeSignals();
          void finish('worker failed').then(() =>
            reject(err instanceof Error ? err : new Error(String(err))),
          );
        },
      });
      if (!ready) start();
      else
        ready.then(
          () => start(),
          (err: unknown) => {
            sub.unsubscribe();
            removeSignals();
            reject(err instanceof Error ? err : new Error(String(err)));
          },
        );
    });
  }

  /** Sets up tracing (and OTLP logs) when asked for; a failure leaves them off, logged. */
  #startTelemetry(resolved: ResolvedWorkerOptions): Promise<void> | undefined {
    const wanted = this.#otel;
    if (!wanted) return undefined;
    return import('../telemetry/worker-telemetry.ts')
      .then(({ startWorkerTelemetry }) =>
        startWorkerTelemetry({
          wanted,
          tracerProvider: this.options.tracerProvider,
          agentName: resolved.agentName,
          workerId: () => this.id,
          log: this.#log,
        }),
      )
      .then(
        (t) => {
          this.#telemetry = t;
        },
        (error: unknown) => {
          this.#log.warn('OpenTelemetry could not be set up; continuing without it', { error });
        },
      );
  }

  /** First SIGTERM/SIGINT/SIGHUP drains, the second forces a stop. Returns the remover. */
  #onSignals(): () => void {
    return onStopSignals(this.#log, {
      drain: (reason) => this.#actor?.send({ type: 'DRAIN_REQUESTED', reason }),
      stop: (reason) => this.#actor?.send({ type: 'FORCE_STOP_REQUESTED', reason }),
    });
  }
}

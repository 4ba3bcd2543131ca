/**
 * `Worker`: the programmatic face of the worker chart. It resolves options, wires the chart to
 * its real effects (server link, load sampler, request decisions, job processes), handles
 * SIGTERM/SIGINT, and exposes what users and tools read: `id`, `status`, `activeJobs`, `actor`.
 */
import { fileURLToPath } from 'node:url';
import type { Actor, AnyActorLogic, createActor } from 'xstate';
import type { JobPhase, WorkerContext } from '../../machines/worker.context.ts';
import type { WorkerAvailability } from '../../machines/worker.contract.ts';
import type { workerMachine } from '../../machines/worker.machine.ts';
import { isTypeScriptFile } from '../agent-file/compile-typescript.ts';
import { agentModuleFor } from '../agent-file/load.ts';
import { ServerRefusedError } from '../errors.ts';
import { isJobProcess, registerAgentOptions } from '../job/runtime-registry.ts';
import { createLogger, registerSecret, type Logger } from '../log.ts';
import {
  resolveOptions,
  WorkerOptions,
  type ResolvedWorkerOptions,
  type ResolveSources,
  type WorkerOptionsInit,
} from '../options.ts';
import { onStopSignals } from './stop-signals.ts';

// In a job process a Worker only hands its options to the job runtime (`run()` below), so the
// chart and its effects — xstate, the server link, the process pool, a third of a second of CPU
// and ~30 MB — are loaded only in the worker process.
const runtime = isJobProcess() ? undefined : await import('./worker-actor.ts');

/** Where the worker is, in one word (the chart's state, flattened). */
export type WorkerStatusName =
  'connecting' | 'available' | 'full' | 'reconnecting' | 'draining' | 'stopped';

/** A job this worker holds, from acceptance to its end. */
export interface ActiveJob {
  id: string;
  roomName: string;
  /** The participant a PUBLISHER or PARTICIPANT job is for. */
  participantIdentity: string | undefined;
  phase: JobPhase;
  procId: string | undefined;
  pid: number | undefined;
}

/** How to run a worker, beyond its `WorkerOptions`. */
export interface WorkerRunConfig extends ResolveSources {
  logger?: Logger;
  /** Drain on SIGTERM/SIGINT, force-stop on the second. Default true. */
  handleSignals?: boolean;
  /** Liveness tuning of the server connection (defaults: 10 s heartbeat, 5 s grace). */
  serverLink?: { heartbeatInterval?: number; heartbeatTimeout?: number; handshakeTimeout?: number };
  /** Replaces the job process logic (tests, custom hosts). */
  jobProcessLogic?: AnyActorLogic;
  /**
   * @internal Set by `WorkerGroup` for each of its agents: the process-wide load sample and
   * capacity checks it shares with the other agents, and what its job processes must know.
   */
  membership?: WorkerMembership;
  /** Attach an XState inspector (the live inspector uses this). */
  inspect?: Parameters<typeof createActor>[1] extends infer O
    ? O extends { inspect?: infer I }
      ? I
      : never
    : never;
}

type WorkerActor = Actor<typeof workerMachine>;

/** The chart's own guards a group may tighten (each implementation must include the original check). */
type SharedGuards = {
  [K in 'hasFreeSlot' | 'loadBelowThreshold']: (args: { context: WorkerContext }) => boolean;
};

/** @internal What a `WorkerGroup` gives each of its workers (see `src/group/`). */
export interface WorkerMembership {
  /** Replaces the worker's own load sampler: sends `LOAD_SAMPLED` from the shared sample. */
  loadSampler(worker: Worker, resolved: ResolvedWorkerOptions, log: Logger): AnyActorLogic;
  /** Process-wide limits, checked together with the worker's own. */
  guards: SharedGuards;
  /** Extra environment of this worker's job processes. */
  jobEnv: NodeJS.ProcessEnv;
}

export class Worker {
  /** The options as the user gave them. */
  readonly options: WorkerOptions;
  readonly #config: WorkerRunConfig;
  #resolved: ResolvedWorkerOptions | undefined;
  #actor: WorkerActor | undefined;
  #done: Promise<void> | undefined;
  #log: Logger;

  constructor(options: WorkerOptions | WorkerOptionsInit, config: WorkerRunConfig = {}) {
    this.options = options instanceof WorkerOptions ? options : new WorkerOptions(options);
    this.#config = config;
    this.#log = config.logger ?? createLogger();
  }

  /** The server-assigned worker id (`AW_…`), once registered. */
  get id(): string | undefined {
    return this.#actor?.getSnapshot().context.workerId;
  }

  /** The running chart, for the inspector and tests. `undefined` before `run()`. */
  get actor(): WorkerActor | undefined {
    return this.#actor;
  }

  /** Options after defaults and environment; `undefined` before `run()`. */
  get resolvedOptions(): ResolvedWorkerOptions | undefined {
    return this.#resolved;
  }

  get status(): WorkerStatusName {
    const snap = this.#actor?.getSnapshot();
    if (!snap) return 'connecting';
    const life = (snap.value as { lifecycle: string | Record<string, string> }).lifecycle;
    if (typeof life === 'string') return life as WorkerStatusName;
    if ('registered' in life) return life.registered as WorkerAvailability;
    return 'draining';
  }

  /** The last load sample, in [0, 1]. */
  get load(): number {
    return this.#actor?.getSnapshot().context.load ?? 0;
  }

  get activeJobs(): readonly ActiveJob[] {
    const ctx = this.#actor?.getSnapshot().context;
    if (!ctx) return [];
    return Object.values(ctx.jobs).map((j) => ({
      id: j.jobId,
      roomName: j.job.room?.name ?? '',
      participantIdentity: j.job.participant?.identity,
      phase: j.phase,
      procId: j.procId,
      pid: j.procId ? ctx.procs[j.procId]?.pid : undefined,
    }));
  }

  /**
   * Connects, registers and serves jobs until drained or stopped. Resolves when the worker has
   * stopped; rejects with `ServerRefusedError` when the server refuses it (bad credentials or
   * URL) and with `InvalidOptionError` for missing credentials. In a job process it only hands
   * the options to the job runtime and resolves.
   */
  run(): Promise<void> {
    if (isJobProcess()) {
      registerAgentOptions(this.options);
      return Promise.resolve();
    }
    this.#done ??= this.#start();
    return this.#done;
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

  #start(): Promise<void> {
    if (!runtime) return Promise.reject(new Error('a job process cannot run a worker'));
    let resolved: ResolvedWorkerOptions;
    try {
      resolved = resolveOptions(this.options, this.#config);
    } catch (err) {
      return Promise.reject(err);
    }
    this.#resolved = resolved;
    // Job processes run plain node: a TypeScript agent module (a main script run under tsx) is
    // compiled once, and the chart starts when it is; until then the actor exists, unstarted, so
    // metrics and the inspector can already follow it. The `agent` bin passes compiled JS.
    const modulePath = resolved.agentModule.startsWith('file:')
      ? fileURLToPath(resolved.agentModule)
      : resolved.agentModule;
    let agentModule = modulePath;
    const compiled = isTypeScriptFile(modulePath)
      ? agentModuleFor(modulePath).then((m) => {
          agentModule = m;
        })
      : undefined;
    // Every record carries the agent name ('' for automatic dispatch) and, once registered, the
    // worker id; job processes log through this logger too, so their records get both.
    const log = this.#log.child({ agentName: resolved.agentName, workerId: () => this.id });
    registerSecret(resolved.apiSecret);
    this.#log = log; // signal messages too
    const actor = runtime.createWorkerActor({
      resolved,
      config: this.#config,
      log,
      view: this,
      agentModule: () => agentModule,
    });
    this.#actor = actor;
    const removeSignals =
      this.#config.handleSignals === false ? () => undefined : this.#onSignals();
    return new Promise<void>((resolve, reject) => {
      const sub = actor.subscribe({
        complete: () => {
          sub.unsubscribe();
          removeSignals();
          const ctx = actor.getSnapshot().context;
          if (ctx.refusal) reject(new ServerRefusedError(ctx.refusal));
          else resolve();
        },
        error: (err) => {
          removeSignals();
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      });
      if (!compiled) actor.start();
      else
        compiled.then(
          () => actor.start(),
          (err: unknown) => {
            sub.unsubscribe();
            removeSignals();
            reject(err instanceof Error ? err : new Error(String(err)));
          },
        );
    });
  }

  /** First SIGTERM/SIGINT drains, the second forces a stop. Returns the remover. */
  #onSignals(): () => void {
    return onStopSignals(this.#log, {
      drain: (reason) => this.#actor?.send({ type: 'DRAIN_REQUESTED', reason }),
      stop: (reason) => this.#actor?.send({ type: 'FORCE_STOP_REQUESTED', reason }),
    });
  }
}

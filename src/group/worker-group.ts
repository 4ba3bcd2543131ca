/**
 * `WorkerGroup`: several agents served by one worker process. Each agent is a `Worker` — its
 * own chart, its own registration with the server (agentName, workerType, permissions), its
 * own `requestFnc`, `prewarmFnc` and warm processes — and the group adds what they share: one
 * load sample for the machine, process-wide `maxJobs`/`loadThreshold` (`shared-capacity.ts`),
 * one signal handler that drains them all, and one place to resolve and check them all before
 * any connects.
 */
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidOptionError } from '../errors.ts';
import { isJobProcess, registerAgentOptions } from '../runtime-registry.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import {
  WorkerOptions,
  WorkerType,
  type WorkerLoadView,
  type WorkerOptionsInit,
} from '../options/worker-options.ts';
import type { ResolvedWorkerOptions } from '../options/resolve.ts';
import { onStopSignals } from '../worker/stop-signals.ts';
import {
  Worker,
  type ActiveJob,
  type WorkerRunConfig,
  type WorkerStatusName,
} from '../worker/worker.ts';
import {
  GROUP_MEMBER_ENV,
  WorkerGroupOptions,
  type WorkerGroupOptionsInit,
} from './group-options.ts';
import type { SharedCapacity } from './shared-capacity.ts';

// In a job process a group only hands over that process's agent (`run()`): the shared sampler
// and its xstate actors are loaded only in the worker process, as the worker chart is.
const shared = isJobProcess() ? undefined : await import('./shared-capacity.ts');

/** How to run a group, beyond its agents and policy; applied to every agent. */
export interface WorkerGroupRunConfig extends Pick<
  WorkerRunConfig,
  'env' | 'overrides' | 'mode' | 'logger' | 'serverLink' | 'jobProcessLogic' | 'inspect'
> {
  /** Drain every agent on SIGTERM/SIGINT/SIGHUP, stop them all on the second. Default true. */
  handleSignals?: boolean;
  /** Interval of the shared load sample (ms). Default 500. */
  loadSampleInterval?: number;
  /** How errors name each agent, in order (the CLI gives the files). Default: its `agentModule`. */
  agentLabels?: readonly string[];
}

/** One agent of the group, as `/worker` and the CLI show it. */
export interface WorkerGroupAgent {
  readonly worker: Worker;
  /** After `LIVEKIT_AGENT_NAME_OVERRIDE` and the environment, once `run()` resolved them. */
  readonly agentName: string;
  readonly workerType: WorkerType;
  readonly status: WorkerStatusName;
}

/** A job of one of the group's agents. */
export interface GroupActiveJob extends ActiveJob {
  agentName: string;
}

export class WorkerGroup implements WorkerLoadView {
  /** One `Worker` per agent, in the order given. */
  readonly workers: readonly Worker[];
  /** The process-wide policy. */
  readonly options: WorkerGroupOptions;
  readonly #config: WorkerGroupRunConfig;
  /** `undefined` in a job process, where nothing runs but the job. */
  readonly #capacity: SharedCapacity | undefined;
  readonly #log: Logger;
  #done: Promise<void> | undefined;

  /**
   * @param agents the agents to serve, each as its own worker; at least one.
   * @param options what they share: `maxJobs` and `loadThreshold` for the whole process, the
   *   machine `loadFnc` (sampled once for all), the health server's `host`/`port`.
   */
  constructor(
    agents: readonly (WorkerOptions | WorkerOptionsInit)[],
    options: WorkerGroupOptions | WorkerGroupOptionsInit = {},
    config: WorkerGroupRunConfig = {},
  ) {
    if (!Array.isArray(agents) || agents.length === 0) {
      throw new InvalidOptionError('agents', 'expected a non-empty array of WorkerOptions');
    }
    this.options =
      options instanceof WorkerGroupOptions ? options : new WorkerGroupOptions(options);
    this.#config = config;
    this.#log = config.logger ?? createLogger();
    this.#capacity = shared
      ? new shared.SharedCapacity({
          options: this.options,
          view: this,
          logger: this.#log.child({ component: 'group' }),
          ...(config.loadSampleInterval === undefined
            ? {}
            : { intervalMs: config.loadSampleInterval }),
        })
      : undefined;
    const {
      handleSignals: _signals,
      loadSampleInterval: _interval,
      agentLabels: _labels,
      ...common
    } = config;
    // Annotated: `Array.isArray` above narrows a readonly array's elements to `any`.
    this.workers = agents.map(
      (agent: WorkerOptions | WorkerOptionsInit, index) =>
        new Worker(agent instanceof WorkerOptions ? agent : new WorkerOptions(agent), {
          ...common,
          logger: this.#log,
          handleSignals: false,
          ...(this.#capacity ? { membership: this.#capacity.membership(index) } : {}),
        }),
    );
  }

  /** Each agent with its status and resolved name (a job process resolves none: the given name). */
  get agents(): readonly WorkerGroupAgent[] {
    return this.workers.map((worker) => ({
      worker,
      agentName: isJobProcess()
        ? (worker.options.agentName ?? '')
        : worker.resolvedOptions.agentName,
      workerType: worker.options.workerType,
      status: worker.status,
    }));
  }

  /** The last machine load sample, in [0, 1] (what the group's `loadThreshold` compares). */
  get load(): number {
    return this.#capacity?.machineLoad ?? 0;
  }

  /** The jobs of every agent. */
  get activeJobs(): readonly GroupActiveJob[] {
    return this.agents.flatMap((a) =>
      a.worker.activeJobs.map((j) => ({ ...j, agentName: a.agentName })),
    );
  }

  /** True while every agent is registered with the server (`available` or `full`). */
  get registered(): boolean {
    return this.workers.every((w) => w.status === 'available' || w.status === 'full');
  }

  /**
   * Resolves every agent's options and checks them together — missing credentials, invalid
   * values, or two agents with the same `agentName` and `workerType` reject with an
   * `InvalidOptionError` before any agent connects — then runs them all. Resolves when every
   * agent has stopped; if one fails (e.g. the server refuses it), the others are stopped and
   * the promise rejects with that failure. In a job process it only hands the agent of that
   * process to the job runtime.
   */
  run(): Promise<void> {
    if (isJobProcess()) {
      const index = Number(process.env[GROUP_MEMBER_ENV]);
      const worker = Number.isInteger(index) ? this.workers[index] : undefined;
      if (worker) registerAgentOptions(worker.options);
      return Promise.resolve();
    }
    this.#done ??= this.#start();
    return this.#done;
  }

  /**
   * Resolves every agent's options and checks them together, without starting anything:
   * throws `InvalidOptionError` for missing credentials, invalid values, or two agents with the
   * same `agentName` and `workerType` (the message names both, with their files). `run()` does
   * this first; call it to fail before binding ports or starting other services.
   */
  validate(): void {
    checkDistinct(
      // Each Worker resolved its options at construction; they are not resolved again.
      this.workers.map((w) => w.resolvedOptions),
      this.#config.agentLabels,
    );
  }

  /** Drains every agent (each up to its `drainTimeout`); resolves when all have stopped. */
  async drain(reason = 'drain requested'): Promise<void> {
    await Promise.all(this.workers.map((w) => w.drain(reason)));
  }

  /** Stops every agent at once (running jobs are killed and reported failed). */
  async stop(reason = 'stop requested'): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop(reason)));
  }

  async #start(): Promise<void> {
    this.validate();
    const removeSignals =
      this.#config.handleSignals === false
        ? () => undefined
        : onStopSignals(this.#log, {
            drain: (reason) => void this.drain(reason),
            stop: (reason) => void this.stop(reason),
          });
    let firstFailure: { error: unknown } | undefined;
    const runs = this.workers.map((w) =>
      w.run().catch((error: unknown) => {
        // One agent failing ends the process's service: nothing may keep running behind it.
        firstFailure ??= { error };
        void this.stop('another agent of the group failed');
      }),
    );
    this.#capacity?.start(this.workers);
    try {
      await Promise.all(runs);
    } finally {
      this.#capacity?.stop();
      removeSignals();
    }
    if (firstFailure) throw firstFailure.error;
  }
}

/** Two agents the server could not tell apart: same agentName and workerType. */
function checkDistinct(
  resolved: readonly ResolvedWorkerOptions[],
  labels: readonly string[] | undefined,
): void {
  const seen = new Map<string, number>();
  resolved.forEach((r, i) => {
    const key = `${r.workerType}\u0000${r.agentName}`;
    const first = seen.get(key);
    if (first === undefined) {
      seen.set(key, i);
      return;
    }
    const name =
      r.agentName === ''
        ? 'no agentName (automatic dispatch)'
        : `agentName ${JSON.stringify(r.agentName)}`;
    throw new InvalidOptionError(
      'agentName',
      `${describeAgent(resolved, first, labels)} and ${describeAgent(resolved, i, labels)} both register ${name} as a ${r.workerType} worker; give each agent its own agentName or workerType`,
    );
  });
}

/** `agents[1] (sales.ts)`: the agent's place in the list and, when known, its file. */
function describeAgent(
  resolved: readonly ResolvedWorkerOptions[],
  i: number,
  labels: readonly string[] | undefined,
): string {
  const module = resolved[i]?.agentModule;
  const path = labels?.[i] ?? (module ? fileURLToPath(module) : '');
  return path ? `agents[${i}] (${relative(process.cwd(), path) || path})` : `agents[${i}]`;
}

/**
 * The machine-level policy the agents of a `WorkerGroup` share: one load sample for the whole
 * process, and the group's `maxJobs` and `loadThreshold` on top of each agent's own. Each agent
 * is a `Worker` with its own chart; this gives each chart a load sampler fed from the shared
 * sample and the group's own guard (`groupAllowsJob`, which the chart checks beside its own in
 * `takesOffers`), so `available ⇄ full` stays the chart's decision.
 *
 * Every agent runs in this one JavaScript thread and a chart updates its snapshot before
 * anything hears about it, so a guard that reads the other agents' jobs sees every slot they
 * reserved: two offers to two agents can never both take the group's last slot.
 */
import { fromCallback, type EventObject } from 'xstate';
import { activeJobCount } from '../../machines/worker.contract.ts';
import { startLoadSampling } from '../load/load-sampler.ts';
import type { Logger } from '../log/logger.ts';
import type { WorkerLoadView } from '../options/worker-options.ts';
import type { WorkerMembership } from '../worker/run-config.ts';
import type { Worker } from '../worker/worker.ts';
import { GROUP_MEMBER_ENV, type WorkerGroupOptions } from './group-options.ts';

export interface SharedCapacityInit {
  options: WorkerGroupOptions;
  /** What the group's `loadFnc` gets: the jobs of every agent. */
  view: WorkerLoadView;
  logger: Logger;
  /** Sampling interval. Default 500 ms (as a single worker's). */
  intervalMs?: number;
}

export class SharedCapacity {
  readonly #init: SharedCapacityInit;
  readonly #members: (WorkerLoadView | undefined)[] = [];
  /** Re-send each agent its current load: its chart then re-checks whether it can take a job. */
  readonly #pushers = new Set<() => void>();
  #machineLoad = 0;
  #stoppers: (() => void)[] = [];
  #pokeQueued = false;

  constructor(init: SharedCapacityInit) {
    this.#init = init;
  }

  /** The last machine load sample, in [0, 1]. */
  get machineLoad(): number {
    return this.#machineLoad;
  }

  /** What worker `index` of the group runs with. Call once per agent, before its `run()`. */
  membership(index: number): WorkerMembership {
    const { maxJobs, loadThreshold } = this.#init.options;
    return {
      loadSampler: (worker, resolved, log) => {
        this.#members[index] = worker;
        return fromCallback<EventObject, void>(({ sendBack }) => {
          let own: number | undefined;
          const push = () => sendBack({ type: 'LOAD_SAMPLED', load: own ?? this.#machineLoad });
          // An agent with its own loadFnc reports that load (and compares it with its own
          // threshold); the machine sample still gates it through the group threshold.
          const stopOwn = resolved.loadFnc
            ? startLoadSampling(
                { loadFnc: resolved.loadFnc, view: worker, logger: log, ...this.#interval() },
                (load) => {
                  own = load;
                  push();
                },
              )
            : () => undefined;
          this.#pushers.add(push);
          push();
          return () => {
            stopOwn();
            this.#pushers.delete(push);
          };
        });
      },
      groupAllowsJob: ({ context }) =>
        this.#jobsOfOthers(index) + activeJobCount(context) < maxJobs &&
        this.#machineLoad < loadThreshold,
      jobEnv: { [GROUP_MEMBER_ENV]: String(index) },
    };
  }

  /** Starts the shared sample and follows the agents' jobs. `workers` are running. */
  start(workers: readonly Worker[]): void {
    this.stop();
    this.#stoppers.push(
      startLoadSampling(
        {
          loadFnc: this.#init.options.loadFnc,
          view: this.#init.view,
          logger: this.#init.logger,
          ...this.#interval(),
        },
        (load) => {
          this.#machineLoad = load;
          this.#pokeAll();
        },
      ),
    );
    // A job starting or ending on one agent changes what the others may take.
    workers.forEach((worker) => {
      let jobs = worker.activeJobs.length;
      this.#stoppers.push(
        worker.subscribe(() => {
          const now = worker.activeJobs.length;
          if (now === jobs) return;
          jobs = now;
          this.#queuePoke();
        }),
      );
    });
  }

  /** Stops sampling and following. Idempotent. */
  stop(): void {
    for (const stop of this.#stoppers.splice(0)) stop();
  }

  #interval(): { intervalMs?: number } {
    return this.#init.intervalMs === undefined ? {} : { intervalMs: this.#init.intervalMs };
  }

  #jobsOfOthers(index: number): number {
    let n = 0;
    this.#members.forEach((w, i) => {
      if (w && i !== index) n += w.activeJobs.length;
    });
    return n;
  }

  /** Pokes once after the current chart step, however many jobs changed in it. */
  #queuePoke(): void {
    if (this.#pokeQueued) return;
    this.#pokeQueued = true;
    queueMicrotask(() => {
      this.#pokeQueued = false;
      this.#pokeAll();
    });
  }

  #pokeAll(): void {
    for (const push of [...this.#pushers]) push();
  }
}

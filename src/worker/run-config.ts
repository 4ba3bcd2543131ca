/**
 * How a `Worker` is run, beyond its `WorkerOptions`: what `new Worker(options, config)` takes,
 * and what a `WorkerGroup` adds for each of its agents. Its own file because both the facade
 * (`worker.ts`) and the chart's wiring (`worker-actor.ts`) read it, and the facade loads the
 * wiring: with the types in either, the two would import each other.
 */
import type { AnyActorLogic, createActor } from 'xstate';
import type { WorkerContext } from '../../machines/worker.contract.ts';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log/logger.ts';
import type { ChartTuning } from '../options/chart-options.ts';
import type { ResolvedWorkerOptions, ResolveSources } from '../options/resolve.ts';
import type { WorkerLoadView } from '../options/worker-options.ts';

/** How to run a worker, beyond its `WorkerOptions`. */
export interface WorkerRunConfig extends ResolveSources {
  logger?: Logger;
  /** Drain on SIGTERM/SIGINT/SIGHUP, force-stop on the second. Default true. */
  handleSignals?: boolean;
  /** Liveness tuning of the server connection (defaults: 10 s heartbeat, 5 s grace). */
  serverLink?: { heartbeatInterval?: number; heartbeatTimeout?: number; handshakeTimeout?: number };
  /** Replaces the job process logic (tests, custom hosts). */
  jobProcessLogic?: AnyActorLogic;
  /** @internal Chart timings that are not options (tests stretch or shorten them). */
  chartTuning?: ChartTuning;
  /**
   * @internal Set by `WorkerGroup` for each of its agents: the process-wide load sample and
   * capacity check it shares with the other agents, and what its job processes must know.
   */
  membership?: WorkerMembership;
  /**
   * Time of everything the worker schedules: the charts' delays, the server heartbeat, the
   * process pinger and memory watch. Default: the system clock (tests pass a simulated one).
   */
  clock?: Clock;
  /** Attach an XState inspector (the live inspector uses this). */
  inspect?: Parameters<typeof createActor>[1] extends infer O
    ? O extends { inspect?: infer I }
      ? I
      : never
    : never;
}

/** @internal What a `WorkerGroup` gives each of its workers (see `src/group/`). */
export interface WorkerMembership {
  /** Replaces the worker's own load sampler: sends `LOAD_SAMPLED` from the shared sample. */
  loadSampler(view: WorkerLoadView, resolved: ResolvedWorkerOptions, log: Logger): AnyActorLogic;
  /**
   * The group's own condition for taking an offer (process-wide job cap and load), checked by
   * the chart beside its own (`groupAllowsJob` in `takesOffers`); the chart's checks stay its own.
   */
  groupAllowsJob: (args: { context: WorkerContext }) => boolean;
  /** Extra environment of this worker's job processes. */
  jobEnv: NodeJS.ProcessEnv;
}

/**
 * `WorkerGroupOptions`: the process-wide policy of a `WorkerGroup` (several agents served by one
 * worker process). Each agent keeps its own `WorkerOptions`; these are what the agents share.
 * Validated at construction by the same checks as `WorkerOptions` (`src/options/checks.ts`); the
 * caller's object is never mutated.
 */
import { InvalidOptionError } from '../errors.ts';
import { sharedLimits } from '../options/checks.ts';
import type { WorkerLoadView } from '../options/worker-options.ts';

/** Set in each job process of a group's agent: its index, for a module that defines several. */
export const GROUP_MEMBER_ENV = 'AGENTSTATE_GROUP_MEMBER';

/** Everything a user may pass as the second argument of `new WorkerGroup(agents, …)`. */
export interface WorkerGroupOptionsInit {
  /**
   * Cap on concurrent jobs of all agents together (each agent's own `maxJobs` still applies).
   * Default: no cap.
   */
  maxJobs?: number;
  /**
   * At or above this machine load every agent reports itself full. Default 0.7. `Infinity`:
   * only each agent's own `loadThreshold` applies.
   */
  loadThreshold?: number;
  /**
   * The machine's load in [0, 1], sampled once for the whole process (every agent gets the same
   * sample). Gets the jobs of all agents. Default: CPU utilisation over 5 s (cgroup aware). An
   * agent that has its own `loadFnc` reports and compares that instead, for its own threshold.
   */
  loadFnc?: (group: WorkerLoadView) => number | Promise<number>;
  /** Health/metrics HTTP host of the process. Default `0.0.0.0`. */
  host?: string;
  /** Health/metrics HTTP port of the process. Default 8081; `0` picks a free one. */
  port?: number;
}

/** The group's policy, validated; every field names itself in errors as `group.<field>`. */
export class WorkerGroupOptions {
  readonly maxJobs: number;
  readonly loadThreshold: number;
  readonly loadFnc: WorkerGroupOptionsInit['loadFnc'];
  readonly host: string;
  readonly port: number;

  constructor(init: WorkerGroupOptionsInit = {}) {
    if (init === null || typeof init !== 'object') {
      throw new InvalidOptionError('group', 'expected an object');
    }
    this.maxJobs = sharedLimits.maxJobs('group.maxJobs', init.maxJobs);
    this.loadThreshold = sharedLimits.loadThreshold('group.loadThreshold', init.loadThreshold);
    if (init.loadFnc !== undefined && typeof init.loadFnc !== 'function') {
      throw new InvalidOptionError('group.loadFnc', 'must be a function');
    }
    this.loadFnc = init.loadFnc;
    this.host = sharedLimits.host('group.host', init.host);
    this.port = sharedLimits.port('group.port', init.port);
    Object.freeze(this);
  }
}

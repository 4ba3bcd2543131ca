/**
 * `resolveOptions`: the user's `WorkerOptions` with command-line overrides, the environment and
 * the mode's defaults applied, producing the frozen `ResolvedWorkerOptions` the worker runs on.
 * The worker's only: a job process resolves nothing (`src/worker/worker.ts` imports this file
 * outside job processes), so it loads neither this nor the proxy lookup.
 */
import { availableParallelism } from 'node:os';
import {
  resolveAgentModule,
  resolveAgentName,
  resolveDeployment,
  resolveRedisUrl,
  resolveServerCredentials,
  resolveStateDir,
} from './sources.ts';
import { proxyFor, type ResolvedProxy } from './proxy.ts';
import { overridable, type WorkerOptions, type WorkerOptionsInit } from './worker-options.ts';

/** Options after defaults, environment and mode are applied. What the runtime reads. */
export interface ResolvedWorkerOptions extends Omit<
  WorkerOptions,
  | 'numIdleProcesses'
  | 'wsUrl'
  | 'apiKey'
  | 'apiSecret'
  | 'agentModule'
  | 'agentName'
  | 'stateDir'
  | 'recovery'
> {
  readonly numIdleProcesses: number;
  /** After `LIVEKIT_AGENT_NAME_OVERRIDE` > the option > `LIVEKIT_AGENT_NAME` > `''`. */
  readonly agentName: string;
  /** The proxy the server connection goes through (option, else environment), if any. */
  readonly proxy: ResolvedProxy | undefined;
  /** Path or file: URL of the module each job process imports. */
  readonly agentModule: URL;
  readonly wsUrl: string;
  readonly apiKey: string;
  readonly apiSecret: string;
  /** `LIVEKIT_AGENT_DEPLOYMENT`, sent with the registration (`''` when unset). */
  readonly deployment: string;
  /** The writable state directory, or `undefined` when none is (`stateDirProblem` says why). */
  readonly stateDir: string | undefined;
  readonly stateDirProblem: string | undefined;
  /** Job recovery, or `false` when turned off; `redisUrl` after `AGENTSTATE_REDIS_URL`. */
  readonly recovery: ResolvedRecovery | false;
}

/** Recovery's options with the environment applied. */
export interface ResolvedRecovery {
  readonly redisUrl: string | undefined;
  readonly maxAttempts: number;
  readonly leaseTtl: number;
}

/** Where option values may come from besides the options object. */
export interface ResolveSources {
  env?: NodeJS.ProcessEnv;
  /** CLI overrides (flags win over options and env). */
  overrides?: Partial<
    Pick<
      WorkerOptionsInit,
      | 'wsUrl'
      | 'apiKey'
      | 'apiSecret'
      | 'drainTimeout'
      | 'numIdleProcesses'
      | 'port'
      | 'host'
      | 'agentModule'
      | 'loadThreshold'
      | 'maxJobs'
      | 'jobsPerProcess'
    >
  >;
  /** Production (`start`) or development (`dev`) defaults. */
  mode?: 'production' | 'development';
}

/**
 * Applies flags → options → environment → defaults, in that order of precedence, and checks
 * that credentials are present. Never mutates `opts`.
 */
export function resolveOptions(
  opts: WorkerOptions,
  sources: ResolveSources = {},
): ResolvedWorkerOptions {
  const env = sources.env ?? process.env;
  const o = sources.overrides ?? {};
  const credentials = resolveServerCredentials(
    {
      wsUrl: o.wsUrl ?? opts.wsUrl,
      apiKey: o.apiKey ?? opts.apiKey,
      apiSecret: o.apiSecret ?? opts.apiSecret,
    },
    env,
  );
  // Only the job journal lives there: with recovery off, nothing is looked up or created.
  const state =
    opts.recovery === false || opts.recovery.redisUrl !== undefined || env.AGENTSTATE_REDIS_URL
      ? ({ dir: undefined, problem: 'not used' } as const)
      : resolveStateDir(opts.stateDir, env);
  const recovery: ResolvedRecovery | false =
    opts.recovery === false
      ? false
      : Object.freeze({ ...opts.recovery, redisUrl: resolveRedisUrl(opts.recovery.redisUrl, env) });
  const idleDefault = sources.mode === 'development' ? 1 : Math.min(availableParallelism(), 4);
  return Object.freeze({
    ...opts,
    drainTimeout: overridden(o.drainTimeout, opts.drainTimeout, overridable.drainTimeout),
    port: overridden(o.port, opts.port, overridable.port),
    host: o.host ?? opts.host,
    loadThreshold: overridden(o.loadThreshold, opts.loadThreshold, overridable.loadThreshold),
    maxJobs: overridden(o.maxJobs, opts.maxJobs, overridable.maxJobs),
    jobsPerProcess: overridden(o.jobsPerProcess, opts.jobsPerProcess, overridable.jobsPerProcess),
    agentModule: resolveAgentModule(o.agentModule ?? opts.agentModule),
    agentName: resolveAgentName(opts.agentName, env),
    proxy: proxyFor(new URL(credentials.wsUrl), opts.httpProxy, env),
    numIdleProcesses:
      overridden(o.numIdleProcesses, opts.numIdleProcesses, overridable.numIdleProcesses) ??
      idleDefault,
    // A --num-idle-processes flag wins over the options, the elastic pool included.
    elasticIdleProcesses: o.numIdleProcesses === undefined ? opts.elasticIdleProcesses : undefined,
    ...credentials,
    deployment: resolveDeployment(env),
    stateDir: state.dir,
    stateDirProblem: state.dir === undefined ? state.problem : undefined,
    recovery,
  });
}

/** A flag that was given, checked, beats the option. */
function overridden<T>(
  flag: number | undefined,
  option: T,
  check: (v: number) => number,
): number | T {
  return flag === undefined ? option : check(flag);
}

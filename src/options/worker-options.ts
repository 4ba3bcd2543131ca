/**
 * `WorkerOptions`: what the user writes, every value validated at construction, naming the
 * option at fault. The caller's object is never mutated and an explicit `0` is never replaced.
 * Both processes load this file (the agent file constructs its options in each); what only the
 * worker needs — defaults from the environment and the mode, the proxy — is `resolve.ts`. The
 * checks are in `checks.ts`, the environment lookups in `sources.ts`.
 */
import { InvalidOptionError } from '../errors.ts';
import {
  checkRedisUrl,
  checkUrl,
  fn,
  int,
  ms,
  num,
  parseProxyUrl,
  sharedLimits,
  str,
} from './checks.ts';
import type { TracerProvider } from '@opentelemetry/api';
import type { JobContext } from '../job-process/context.ts';
import type { JobProcess } from '../job-process/process.ts';
import type { JobRequest } from '../worker/job-request.ts';
import { WorkerPermissions, type WorkerPermissionsInit } from './permissions.ts';

export { WorkerPermissions };
export type { TrackSourceName, WorkerPermissionsInit } from './permissions.ts';

/**
 * What a job is started for: once per room, once per publishing participant, or once per
 * joining participant (agents and egress never count).
 */
export enum WorkerType {
  /** One job per room (the protocol's `JT_ROOM`). */
  ROOM = 'room',
  /** One job per participant, on its first published track (`JT_PUBLISHER`). */
  PUBLISHER = 'publisher',
  /** One job per non-agent participant, when it joins (`JT_PARTICIPANT`). */
  PARTICIPANT = 'participant',
}

const WORKER_TYPES: readonly WorkerType[] = [
  WorkerType.ROOM,
  WorkerType.PUBLISHER,
  WorkerType.PARTICIPANT,
];

/**
 * The elastic warm pool (`elasticIdleProcesses`): as offers come faster, more spares are kept
 * warm, enough for the offers expected while a taken spare is replaced; as they slow down, the
 * surplus is let go, down to `min`.
 */
export interface ElasticIdleProcessesInit {
  /** Spares kept even when no offers come (an integer in [0, 64]). */
  min: number;
  /** Spares kept at most (an integer in [max(1, min), 64]). */
  max: number;
  /** The most memory (MB) the spares may hold together. Default 1024. */
  memoryMb?: number;
}

/** The view of the running worker that `loadFnc` receives. */
export interface WorkerLoadView {
  /** Jobs currently assigned to this worker and not yet ended. */
  readonly activeJobs: readonly { readonly id: string }[];
}

/**
 * Job recovery (README, "When a worker dies"): a job that ends abnormally — its process crashed
 * or was killed, or its worker died — while its user is still in the room is dispatched again,
 * and the new job joins with the same identity and finds `ctx.recovery`.
 */
export interface RecoveryOptionsInit {
  /**
   * The Redis that a fleet of workers shares (`redis://[user:password@]host:port[/db]`): each
   * worker holds a lease there, and one surviving worker claims each job of a worker whose
   * lease lapsed. Default: `AGENTSTATE_REDIS_URL`; unset, the job journal is on disk in
   * `stateDir` and recovers the jobs of this machine's worker when it is started again.
   */
  redisUrl?: string;
  /** Attempts per job, the first included: 2 recovers a job once. Default 2. */
  maxAttempts?: number;
  /** How long a worker's lease lasts unless renewed (renewed every third of it). Default 10 s. */
  leaseTtl?: number;
}

/** The recovery options after defaults (`recovery: false` is kept as `false`). */
export interface RecoveryOptions {
  readonly redisUrl: string | undefined;
  readonly maxAttempts: number;
  readonly leaseTtl: number;
}

function recoveryOptions(init: false | RecoveryOptionsInit | undefined): RecoveryOptions | false {
  if (init === false) return false;
  if (init === undefined) init = {};
  if (init === null || typeof init !== 'object') {
    throw new InvalidOptionError('recovery', 'must be false or an object');
  }
  const redisUrl = str('recovery.redisUrl', init.redisUrl);
  if (redisUrl !== undefined) checkRedisUrl('recovery.redisUrl', redisUrl);
  return Object.freeze({
    redisUrl,
    maxAttempts: int('recovery.maxAttempts', init.maxAttempts, 2, 1, 100),
    leaseTtl: num(
      'recovery.leaseTtl',
      init.leaseTtl,
      10_000,
      300,
      600_000,
      'a duration in ms in [300, 600000]',
    ),
  });
}

/** Everything a user may pass to `new WorkerOptions(...)`. Times are in milliseconds. */
export interface WorkerOptionsInit {
  /** Called in the job's own process for every accepted job. The only required option. */
  entrypointFnc: (ctx: JobContext) => Promise<void> | void;
  /** Decides whether to take a job. Default: accept every request. */
  requestFnc?: (req: JobRequest) => Promise<void> | void;
  /** Runs once in each new job process before it counts as idle. */
  prewarmFnc?: (proc: JobProcess) => Promise<void> | void;
  permissions?: WorkerPermissions | WorkerPermissionsInit;
  /** How long a draining worker waits for running jobs. Default 30 min. */
  drainTimeout?: number;
  workerType?: WorkerType;
  /** Current load in [0, 1]. Default: CPU utilisation over a 5 s window (cgroup aware). */
  loadFnc?: (worker: WorkerLoadView) => number | Promise<number>;
  /**
   * At or above this load the worker reports itself full. Default 0.7. `Infinity` never reports
   * full because of load (the server still gates on the load itself: see README).
   */
  loadThreshold?: number;
  /**
   * A non-empty name enables explicit dispatch only. Default: `LIVEKIT_AGENT_NAME`, else `''`
   * (automatic dispatch). `LIVEKIT_AGENT_NAME_OVERRIDE`, when set, beats this option (a
   * deployment can rename an agent without editing its code); an explicit `''` beats
   * `LIVEKIT_AGENT_NAME`.
   */
  agentName?: string;
  /** Prewarmed processes kept idle, independent of busy ones. `0` starts processes on demand. */
  numIdleProcesses?: number;
  /**
   * Opt-in elastic warm pool, instead of a fixed `numIdleProcesses`: the spares kept idle follow
   * the recent rate of offers and the measured start time of a process, between `min` and `max`,
   * and together never hold more than `memoryMb` (by the RSS each process has once warm).
   * Default: not elastic.
   */
  elasticIdleProcesses?: ElasticIdleProcessesInit;
  /** Hard cap on concurrent jobs. Default: no cap (load decides). */
  maxJobs?: number;
  /** LiveKit server URL. Default: `LIVEKIT_URL`. */
  wsUrl?: string;
  /** Default: `LIVEKIT_API_KEY`. Prefer the environment variable. */
  apiKey?: string;
  /** Default: `LIVEKIT_API_SECRET`. Prefer the environment variable. */
  apiSecret?: string;
  /** Budget for `requestFnc` to answer; past it the request is rejected. Default 2000. */
  requestTimeout?: number;
  /** Budget for a new process to prewarm. Default 10 s. */
  initializeProcessTimeout?: number;
  /**
   * How long a job may be expected to wait for a warm process. An offer the load policy allows
   * is still declined (decision `startDelay`) when the jobs already waiting for processes, times
   * the measured start time of a process, divided by the processes that may start at once, is
   * over this. A job assigned with no warm process waits at most this plus
   * `initializeProcessTimeout`, then fails. Default 15 s: LiveKit's client SDKs give an agent
   * 20 s to join before they fail the session.
   */
  jobStartBudget?: number;
  /** Budget for a job process to end after being asked to. Default 60 s. */
  shutdownProcessTimeout?: number;
  /** RSS above which a job process is logged as a warning. Default 500 MB; 0 disables. */
  jobMemoryWarnMb?: number;
  /** RSS above which a job process is ended. Default 0 (disabled). */
  jobMemoryLimitMb?: number;
  /**
   * How many jobs one process may run, one after another. Default 1: every job gets a fresh
   * process. Above 1 (opt-in process reuse), a process whose job ended cleanly — the job did not
   * fail, every shutdown callback finished in its budget, the room was left — and whose RSS grew
   * at most `reuseMemoryGrowthMb` since it got warm takes a later job instead of exiting, which
   * saves a process start per job. Module state, timers and listeners a job leaves behind are
   * then seen by the next job in that process.
   */
  jobsPerProcess?: number;
  /** RSS growth (MB) since a process got warm past which it is not reused. Default 100. */
  reuseMemoryGrowthMb?: number;
  /**
   * An event loop blocked at least this long (ms), in the worker or in a job process, is
   * logged as a warning (`event loop stalled`, with its length and the job) and counted in the
   * `agentstate_event_loop_stall_seconds` histogram. Default 500; 0 turns the watch off.
   */
  eventLoopStallThreshold?: number;
  /** Module that holds these options, imported by each job process. Default: the main script. */
  agentModule?: string | URL;
  /**
   * HTTP(S) proxy for the connection to the LiveKit server (`http://[user:password@]host:port`),
   * also handed to job processes. Default: `HTTPS_PROXY` (for `wss://`) or `HTTP_PROXY` (for
   * `ws://`) from the environment; `null`: never a proxy. `NO_PROXY` hosts are reached directly.
   */
  httpProxy?: string | null;
  /** Health/metrics HTTP host. Default `0.0.0.0`. */
  host?: string;
  /** Health/metrics HTTP port. Default 8081; `0` picks a free one. */
  port?: number;
  /**
   * A directory for what outlives the worker process (the job journal). Default:
   * `AGENTSTATE_STATE_DIR`, else `$XDG_STATE_HOME/agentstate`, else `~/.local/state/agentstate`,
   * else a directory in the system's temporary one: the first that is writable. None writable:
   * the disk journal is off, with one warning.
   */
  stateDir?: string;
  /** Job recovery; on by default (disk journal, or Redis). `false` turns it off. */
  recovery?: false | RecoveryOptionsInit;
  /**
   * Where the traces of jobs go, instead of the exporter the standard `OTEL_*` environment sets
   * up: an OpenTelemetry `TracerProvider` of yours (e.g. `NodeTracerProvider` with your own span
   * processors). It is used in the worker and in each job process (the agent file, and so this
   * option, is loaded in both); agentstate does not register it globally or shut it down, and
   * flushes it when a job process exits. Default: none, and traces only when the environment
   * asks for them (README, "Observability").
   */
  tracerProvider?: TracerProvider;
}

/**
 * The checks of the options a command-line flag can override, used for the option and for the
 * flag alike, so each limit is written once.
 */
export const overridable = {
  drainTimeout: (v: number | undefined) => ms('drainTimeout', v, 30 * 60_000),
  numIdleProcesses: (v: number) => int('numIdleProcesses', v, 0, 0, 64),
  maxJobs: (v: number | undefined) => sharedLimits.maxJobs('maxJobs', v),
  loadThreshold: (v: number | undefined) => sharedLimits.loadThreshold('loadThreshold', v),
  port: (v: number | undefined) => sharedLimits.port('port', v),
  jobsPerProcess: (v: number | undefined) => int('jobsPerProcess', v, 1, 1, 1_000_000),
};

function elasticIdleProcesses(
  init: WorkerOptionsInit,
): Readonly<Required<ElasticIdleProcessesInit>> | undefined {
  const e = init.elasticIdleProcesses;
  if (e === undefined) return undefined;
  const name = 'elasticIdleProcesses';
  if (e === null || typeof e !== 'object') {
    throw new InvalidOptionError(name, 'expected an object { min, max, memoryMb? }');
  }
  if (init.numIdleProcesses !== undefined) {
    throw new InvalidOptionError(name, 'replaces numIdleProcesses: give one of them, not both');
  }
  if (e.min === undefined || e.max === undefined) {
    throw new InvalidOptionError(name, 'needs both `min` and `max`');
  }
  const min = int(`${name}.min`, e.min, 0, 0, 64);
  const max = int(`${name}.max`, e.max, 0, Math.max(1, min), 64);
  const memoryMb = num(`${name}.memoryMb`, e.memoryMb, 1024, 1, Infinity, 'a number of MB ≥ 1');
  return Object.freeze({ min, max, memoryMb });
}

function tracerProvider(p: unknown): TracerProvider | undefined {
  if (p === undefined) return undefined;
  if (
    p === null ||
    typeof p !== 'object' ||
    typeof (p as { getTracer?: unknown }).getTracer !== 'function'
  ) {
    throw new InvalidOptionError(
      'tracerProvider',
      'must be an OpenTelemetry TracerProvider (an object with getTracer())',
    );
  }
  return p as TracerProvider;
}

/** The user's options. Construction validates everything and names the offending option. */
export class WorkerOptions {
  readonly entrypointFnc: WorkerOptionsInit['entrypointFnc'];
  readonly requestFnc: WorkerOptionsInit['requestFnc'];
  readonly prewarmFnc: WorkerOptionsInit['prewarmFnc'];
  readonly permissions: WorkerPermissions;
  readonly drainTimeout: number;
  readonly workerType: WorkerType;
  readonly loadFnc: WorkerOptionsInit['loadFnc'];
  readonly loadThreshold: number;
  /** `undefined` when not given: resolved from the environment (see `resolveOptions`). */
  readonly agentName: string | undefined;
  readonly numIdleProcesses: number | undefined;
  readonly elasticIdleProcesses: Readonly<Required<ElasticIdleProcessesInit>> | undefined;
  readonly maxJobs: number;
  readonly wsUrl: string | undefined;
  readonly apiKey: string | undefined;
  readonly apiSecret: string | undefined;
  readonly requestTimeout: number;
  readonly initializeProcessTimeout: number;
  readonly jobStartBudget: number;
  readonly shutdownProcessTimeout: number;
  readonly jobMemoryWarnMb: number;
  readonly jobMemoryLimitMb: number;
  readonly jobsPerProcess: number;
  readonly reuseMemoryGrowthMb: number;
  readonly eventLoopStallThreshold: number;
  readonly agentModule: string | undefined;
  readonly httpProxy: string | null | undefined;
  readonly host: string;
  readonly port: number;
  readonly stateDir: string | undefined;
  readonly recovery: RecoveryOptions | false;
  readonly tracerProvider: TracerProvider | undefined;

  constructor(init: WorkerOptionsInit) {
    if (init === null || typeof init !== 'object') {
      throw new InvalidOptionError('options', 'expected an object with at least `entrypointFnc`');
    }
    this.entrypointFnc = fn('entrypointFnc', init.entrypointFnc, true)!;
    this.requestFnc = fn('requestFnc', init.requestFnc, false);
    this.prewarmFnc = fn('prewarmFnc', init.prewarmFnc, false);
    this.loadFnc = fn('loadFnc', init.loadFnc, false);
    this.permissions =
      init.permissions instanceof WorkerPermissions
        ? init.permissions
        : new WorkerPermissions(init.permissions ?? {});
    this.drainTimeout = overridable.drainTimeout(init.drainTimeout);
    const workerType = init.workerType ?? WorkerType.ROOM;
    if (!WORKER_TYPES.includes(workerType)) {
      throw new InvalidOptionError(
        'workerType',
        'must be WorkerType.ROOM, WorkerType.PUBLISHER or WorkerType.PARTICIPANT',
      );
    }
    this.workerType = workerType;
    this.loadThreshold = overridable.loadThreshold(init.loadThreshold);
    this.agentName = str('agentName', init.agentName);
    this.numIdleProcesses =
      init.numIdleProcesses === undefined
        ? undefined
        : overridable.numIdleProcesses(init.numIdleProcesses);
    this.elasticIdleProcesses = elasticIdleProcesses(init);
    this.maxJobs = overridable.maxJobs(init.maxJobs);
    this.wsUrl = str('wsUrl', init.wsUrl);
    if (this.wsUrl !== undefined) checkUrl('wsUrl', this.wsUrl);
    this.apiKey = str('apiKey', init.apiKey);
    this.apiSecret = str('apiSecret', init.apiSecret);
    this.requestTimeout = num(
      'requestTimeout',
      init.requestTimeout,
      2000,
      1,
      2800,
      'ms in [1, 2800] (the server waits ~3 s)',
    );
    this.initializeProcessTimeout = ms(
      'initializeProcessTimeout',
      init.initializeProcessTimeout,
      10_000,
    );
    this.jobStartBudget = ms('jobStartBudget', init.jobStartBudget, 15_000);
    this.shutdownProcessTimeout = ms('shutdownProcessTimeout', init.shutdownProcessTimeout, 60_000);
    this.jobMemoryWarnMb = num(
      'jobMemoryWarnMb',
      init.jobMemoryWarnMb,
      500,
      0,
      Infinity,
      'a number ≥ 0',
    );
    this.jobMemoryLimitMb = num(
      'jobMemoryLimitMb',
      init.jobMemoryLimitMb,
      0,
      0,
      Infinity,
      'a number ≥ 0',
    );
    this.jobsPerProcess = overridable.jobsPerProcess(init.jobsPerProcess);
    this.reuseMemoryGrowthMb = num(
      'reuseMemoryGrowthMb',
      init.reuseMemoryGrowthMb,
      100,
      0,
      Infinity,
      'a number ≥ 0',
    );
    this.eventLoopStallThreshold = num(
      'eventLoopStallThreshold',
      init.eventLoopStallThreshold,
      500,
      0,
      60_000,
      'ms in [0, 60000] (0 turns the watch off)',
    );
    const mod = init.agentModule;
    if (mod !== undefined && typeof mod !== 'string' && !(mod instanceof URL)) {
      throw new InvalidOptionError('agentModule', 'must be a path or a file: URL');
    }
    this.agentModule = mod instanceof URL ? mod.href : mod;
    if (init.httpProxy !== undefined && init.httpProxy !== null) {
      if (typeof init.httpProxy !== 'string') {
        throw new InvalidOptionError('httpProxy', 'must be a proxy URL string, or null for none');
      }
      parseProxyUrl('httpProxy', init.httpProxy);
    }
    this.httpProxy = init.httpProxy;
    this.host = sharedLimits.host('host', init.host);
    this.port = overridable.port(init.port);
    this.stateDir = str('stateDir', init.stateDir);
    if (this.stateDir === '') throw new InvalidOptionError('stateDir', 'must not be empty');
    this.recovery = recoveryOptions(init.recovery);
    this.tracerProvider = tracerProvider(init.tracerProvider);
    Object.freeze(this);
  }
}

/**
 * `WorkerOptions`: what the user writes, and `resolveOptions`: defaults applied, environment
 * read and every value validated, producing the frozen `ResolvedWorkerOptions` the rest of the
 * framework uses. The caller's object is never mutated and an explicit `0` is never replaced.
 */
import { availableParallelism } from 'node:os';
import { InvalidOptionError } from './errors.ts';
import { parseProxyUrl, proxyFor, type ResolvedProxy } from './protocol/proxy.ts';
import type { JobContext } from './job-process/context.ts';
import type { JobProcess } from './job-process/process.ts';
import type { JobRequest } from './worker/job-request.ts';

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

/** Track sources an agent may publish (mirrors LiveKit's `TrackSource`). */
export type TrackSourceName = 'camera' | 'microphone' | 'screen_share' | 'screen_share_audio';

/** Fields of `WorkerPermissions`; all optional, with LiveKit's defaults. */
export interface WorkerPermissionsInit {
  canPublish?: boolean;
  canSubscribe?: boolean;
  canPublishData?: boolean;
  canUpdateMetadata?: boolean;
  /** Sources the agent may publish; empty means all. */
  canPublishSources?: TrackSourceName[];
  /** A hidden agent is invisible to other participants (and so cannot publish). */
  hidden?: boolean;
}

/** What the agent participant may do in the room; sent to the server at registration. */
export class WorkerPermissions {
  readonly canPublish: boolean;
  readonly canSubscribe: boolean;
  readonly canPublishData: boolean;
  readonly canUpdateMetadata: boolean;
  readonly canPublishSources: readonly TrackSourceName[];
  readonly hidden: boolean;

  constructor(init: WorkerPermissionsInit = {}) {
    this.canPublish = bool('permissions.canPublish', init.canPublish, true);
    this.canSubscribe = bool('permissions.canSubscribe', init.canSubscribe, true);
    this.canPublishData = bool('permissions.canPublishData', init.canPublishData, true);
    this.canUpdateMetadata = bool('permissions.canUpdateMetadata', init.canUpdateMetadata, true);
    this.hidden = bool('permissions.hidden', init.hidden, false);
    const sources = init.canPublishSources ?? [];
    if (!Array.isArray(sources)) {
      throw new InvalidOptionError('permissions.canPublishSources', 'must be an array');
    }
    for (const s of sources) {
      if (!TRACK_SOURCES.includes(s)) {
        throw new InvalidOptionError(
          'permissions.canPublishSources',
          `unknown source ${JSON.stringify(s)} (expected one of ${TRACK_SOURCES.join(', ')})`,
        );
      }
    }
    this.canPublishSources = Object.freeze([...sources]);
    Object.freeze(this);
  }
}

const TRACK_SOURCES: readonly TrackSourceName[] = [
  'camera',
  'microphone',
  'screen_share',
  'screen_share_audio',
];

/** The view of the running worker that `loadFnc` receives. */
export interface WorkerLoadView {
  /** Jobs currently assigned to this worker and not yet ended. */
  readonly activeJobs: readonly { readonly id: string }[];
}

/** Arguments given to `requestFnc`'s `accept`. */
export interface AcceptArguments {
  /** Display name of the agent participant (default: empty, the identity shows). */
  name?: string;
  /** Identity of the agent participant (default: `agent-<jobId>`). */
  identity?: string;
  metadata?: string;
  attributes?: Record<string, string>;
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
   * `initializeProcessTimeout`, then fails. Default 10 s.
   */
  jobStartBudget?: number;
  /** Budget for a job process to end after being asked to. Default 60 s. */
  shutdownProcessTimeout?: number;
  /** RSS above which a job process is logged as a warning. Default 500 MB; 0 disables. */
  jobMemoryWarnMb?: number;
  /** RSS above which a job process is ended. Default 0 (disabled). */
  jobMemoryLimitMb?: number;
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
  readonly agentModule: string | undefined;
  readonly httpProxy: string | null | undefined;
  readonly host: string;
  readonly port: number;

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
    this.drainTimeout = ms('drainTimeout', init.drainTimeout, 30 * 60_000);
    const workerType = init.workerType ?? WorkerType.ROOM;
    if (!WORKER_TYPES.includes(workerType)) {
      throw new InvalidOptionError(
        'workerType',
        'must be WorkerType.ROOM, WorkerType.PUBLISHER or WorkerType.PARTICIPANT',
      );
    }
    this.workerType = workerType;
    this.loadThreshold = threshold('loadThreshold', init.loadThreshold, 0.7);
    this.agentName = str('agentName', init.agentName);
    this.numIdleProcesses =
      init.numIdleProcesses === undefined
        ? undefined
        : int('numIdleProcesses', init.numIdleProcesses, 0, 0, 64);
    this.maxJobs =
      init.maxJobs === undefined || init.maxJobs === Infinity
        ? Infinity
        : int('maxJobs', init.maxJobs, 0, 1, 100_000);
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
    this.jobStartBudget = ms('jobStartBudget', init.jobStartBudget, 10_000);
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
    this.host = str('host', init.host) ?? '0.0.0.0';
    this.port = int('port', init.port, 8081, 0, 65535);
    Object.freeze(this);
  }
}

/** Options after defaults, environment and mode are applied. What the runtime reads. */
export interface ResolvedWorkerOptions extends Omit<
  WorkerOptions,
  'numIdleProcesses' | 'wsUrl' | 'apiKey' | 'apiSecret' | 'agentModule' | 'agentName'
> {
  readonly numIdleProcesses: number;
  /** After `LIVEKIT_AGENT_NAME_OVERRIDE` > the option > `LIVEKIT_AGENT_NAME` > `''`. */
  readonly agentName: string;
  /** The proxy the server connection goes through (option, else environment), if any. */
  readonly proxy: ResolvedProxy | undefined;
  /** Path or file: URL of the module each job process imports. */
  readonly agentModule: string;
  readonly wsUrl: string;
  readonly apiKey: string;
  readonly apiSecret: string;
  /** `LIVEKIT_AGENT_DEPLOYMENT`, sent with the registration (`''` when unset). */
  readonly deployment: string;
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
  const wsUrl = o.wsUrl ?? opts.wsUrl ?? nonEmpty(env.LIVEKIT_URL);
  const apiKey = o.apiKey ?? opts.apiKey ?? nonEmpty(env.LIVEKIT_API_KEY);
  const apiSecret = o.apiSecret ?? opts.apiSecret ?? nonEmpty(env.LIVEKIT_API_SECRET);
  if (!wsUrl) throw new InvalidOptionError('wsUrl', 'required: pass --url or set LIVEKIT_URL');
  checkUrl('wsUrl', wsUrl);
  if (!apiKey)
    throw new InvalidOptionError('apiKey', 'required: pass --api-key or set LIVEKIT_API_KEY');
  if (!apiSecret) {
    throw new InvalidOptionError(
      'apiSecret',
      'required: pass --api-secret or set LIVEKIT_API_SECRET',
    );
  }
  const idleDefault = sources.mode === 'development' ? 1 : Math.min(availableParallelism(), 4);
  const numIdleProcesses =
    o.numIdleProcesses !== undefined
      ? int('numIdleProcesses', o.numIdleProcesses, 0, 0, 64)
      : (opts.numIdleProcesses ?? idleDefault);
  return Object.freeze({
    ...opts,
    permissions: opts.permissions,
    drainTimeout:
      o.drainTimeout !== undefined ? ms('drainTimeout', o.drainTimeout, 0) : opts.drainTimeout,
    port: o.port !== undefined ? int('port', o.port, 0, 0, 65535) : opts.port,
    host: o.host ?? opts.host,
    loadThreshold:
      o.loadThreshold !== undefined
        ? threshold('loadThreshold', o.loadThreshold, 0.7)
        : opts.loadThreshold,
    maxJobs:
      o.maxJobs === undefined
        ? opts.maxJobs
        : o.maxJobs === Infinity
          ? Infinity
          : int('maxJobs', o.maxJobs, 0, 1, 100_000),
    agentModule: agentModuleFrom(o.agentModule ?? opts.agentModule),
    agentName: resolveAgentName(opts.agentName, env),
    proxy: proxyFor(new URL(wsUrl), opts.httpProxy, env),
    numIdleProcesses,
    wsUrl,
    apiKey,
    apiSecret,
    deployment: env.LIVEKIT_AGENT_DEPLOYMENT ?? '',
  });
}

/**
 * The name the worker registers with, as LiveKit's frameworks pick it: the override variable
 * (set by a deployment, beats the code), then the option (an explicit `''` included), then the
 * plain variable, then `''`. An empty variable counts as unset.
 */
export function resolveAgentName(option: string | undefined, env: NodeJS.ProcessEnv): string {
  return (
    nonEmpty(env.LIVEKIT_AGENT_NAME_OVERRIDE) ?? option ?? nonEmpty(env.LIVEKIT_AGENT_NAME) ?? ''
  );
}

/** The module job processes import: an absolute path or file: URL; default the main script. */
function agentModuleFrom(mod: string | URL | undefined): string {
  const m = mod ?? process.argv[1];
  if (m === undefined || m === '') {
    throw new InvalidOptionError(
      'agentModule',
      'cannot tell which file defines the agent; pass agentModule',
    );
  }
  return m instanceof URL ? m.href : m;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

function checkUrl(name: string, value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch (cause) {
    throw new InvalidOptionError(name, `not a URL: ${JSON.stringify(value)}`, { cause });
  }
  if (!['ws:', 'wss:', 'http:', 'https:'].includes(url.protocol)) {
    throw new InvalidOptionError(
      name,
      `expected ws://, wss://, http:// or https://, got ${url.protocol}//`,
    );
  }
}

/** A load threshold: a number in [0, 1], or `Infinity` to never be full because of load. */
function threshold(name: string, value: number | undefined, dflt: number): number {
  if (value === Infinity) return Infinity;
  return num(name, value, dflt, 0, 1, 'a number in [0, 1], or Infinity');
}

function fn<T>(name: string, value: T | undefined, required: boolean): T | undefined {
  if (value === undefined || value === null) {
    if (required) throw new InvalidOptionError(name, 'is required (a function)');
    return undefined;
  }
  if (typeof value !== 'function') throw new InvalidOptionError(name, 'must be a function');
  return value;
}

function bool(name: string, value: boolean | undefined, dflt: boolean): boolean {
  if (value === undefined) return dflt;
  if (typeof value !== 'boolean') throw new InvalidOptionError(name, 'must be true or false');
  return value;
}

function str(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InvalidOptionError(name, 'must be a string');
  return value;
}

function num(
  name: string,
  value: number | undefined,
  dflt: number,
  min: number,
  max: number,
  expected: string,
): number {
  if (value === undefined) return dflt;
  if (typeof value !== 'number' || Number.isNaN(value) || value < min || value > max) {
    throw new InvalidOptionError(name, `expected ${expected}, got ${String(value)}`);
  }
  return value;
}

function int(
  name: string,
  value: number | undefined,
  dflt: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return dflt;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(
      name,
      `expected an integer in [${min}, ${max}], got ${String(value)}`,
    );
  }
  return value;
}

function ms(name: string, value: number | undefined, dflt: number): number {
  return num(name, value, dflt, 0, 2 ** 31 - 1, 'a duration in milliseconds (≥ 0)');
}

/**
 * The messages between a job process and its host, over the tinypool task channel (Node's IPC).
 * One task carries the whole dialogue: the child prewarms, says `prewarmed`, waits for `launch`,
 * says `started`, runs the job and says `ended` or `failed`, then waits for the next `launch`
 * (with process reuse) until the host stops it. `ping`/`pong` run alongside.
 *
 * Both processes load it: the worker side's host (`src/job-host/process-host.ts`) and the job
 * process's entry (`src/job-process/job-entry.ts`) share this contract (docs/architecture.md §5).
 */
import type { JsonValue } from '@bufbuild/protobuf';
import type { RunningJobInfo } from './jobProcess.contract.ts';

/** A log record's fields, as the child sends them (the logger's `LogFields`). */
type LogFields = Record<string, unknown>;

/** The tinypool task: what a new process needs before it can prewarm. */
export interface JobProcessTask {
  procId: string;
  /** Absolute path or `file:` URL of the user's agent module. */
  agentModule: string;
  /** If the host goes away, how long the process may take to end its job before it exits. */
  orphanGraceMs: number;
  /** A loop blocked at least this long is reported (`loopStalled`); 0: not watched. */
  loopStallThresholdMs: number;
  /** `@livekit/rtc-node` as one prebuilt file, when the worker has one (`../src/job-host/rtc-bundle.ts`). */
  rtcBundle?: RtcBundle;
}

/** A prebuilt bundle of `@livekit/rtc-node` and where its parts belong (`../src/job-host/rtc-bundle.ts`). */
export interface RtcBundle {
  /**
   * The bundle: CommonJS exporting `modules` (the exports of `modules`, in that order) and the
   * `Job` and `JobType` classes of `@livekit/protocol` the job runtime uses.
   */
  file: string;
  /** Where the V8 code cache of `file` is kept (written by the first job process to load it). */
  codeCache: string;
  /** The module files the bundle stands in for, as Node's `require.cache` names them. */
  modules: string[];
  /** The file the bundle's own `require`s (the native binding) resolve from. */
  requireFrom: string;
  /**
   * The bundled packages' package.json files as they were ([path, size, mtimeMs]): changed, they
   * say the packages were reinstalled under a running worker, and the bundle is not used.
   */
  sentinels: [string, number, number][];
}

/**
 * The W3C trace context (https://www.w3.org/TR/trace-context/) of the worker's span for a job,
 * carried with its launch so the job process's spans are its children. Only when tracing is on.
 */
export interface TraceCarrier {
  traceparent: string;
  tracestate?: string;
}

/**
 * Finished spans of a traced job process, sent to its worker, which exports them with its own
 * exporter (`../src/telemetry/span-forwarding.ts`): the job process's resource attributes, and
 * the spans as plain data.
 */
export interface ForwardedSpans {
  type: 'spans';
  resource: Record<string, unknown>;
  spans: unknown[];
}

/** Host → child. */
export type HostMessage =
  | { type: 'launch'; job: RunningJobInfo; callbackTimeout: number; trace?: TraceCarrier }
  | { type: 'shutdown'; reason: string }
  | { type: 'ping'; sentAt: number }
  /**
   * Exit now: the host's polite stop of the process (its job, if any, has ended or overran its
   * shutdown budget). Instead of SIGTERM, which a job process ignores: a SIGTERM that reaches it
   * is meant for its worker (a group or a unit signalled as a whole).
   */
  | { type: 'terminate' };

/** Child → host. */
export type ChildMessage =
  /** `rssMb`: the warm process's RSS (MB, rounded), for the elastic pool's memory bound. */
  | { type: 'prewarmed'; rssMb: number }
  | { type: 'prewarmFailed'; error: string }
  | { type: 'started'; jobId: string }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; message: string; fields: LogFields }
  | { type: 'pong'; sentAt: number }
  /** `ctx.checkpoint(value)`: the job's latest checkpoint, for the worker's job journal. */
  | { type: 'checkpoint'; jobId: string; value: JsonValue }
  /** The process's event loop did not turn for `stalledMs` (over the task's threshold). */
  | { type: 'loopStalled'; stalledMs: number }
  | ForwardedSpans
  /** The job ended well (callbacks ran, room left). */
  | ({ type: 'ended'; reason: string } & JobTeardownFacts)
  /** The job failed (the entrypoint threw); callbacks still ran. */
  | ({ type: 'failed'; error: string } & JobTeardownFacts);

/** What the host decides process reuse on, sent with a job's end. */
export interface JobTeardownFacts {
  /** Every shutdown callback finished in its budget without throwing, and the room was left in time. */
  clean: boolean;
  /** RSS growth (MB, rounded) since the process got warm. */
  rssGrowthMb: number;
}

const CHILD_TYPES = new Set([
  'prewarmed',
  'prewarmFailed',
  'started',
  'log',
  'pong',
  'checkpoint',
  'loopStalled',
  'spans',
  'ended',
  'failed',
]);
const HOST_TYPES = new Set(['launch', 'shutdown', 'ping', 'terminate']);

function typeOf(m: unknown): unknown {
  return typeof m === 'object' && m !== null ? (m as { type?: unknown }).type : undefined;
}

export function isChildMessage(m: unknown): m is ChildMessage {
  return CHILD_TYPES.has(typeOf(m) as string);
}

/** Also filters out tinypool's own messages (`__tinypool_worker_message__`), which have no `type`. */
export function isHostMessage(m: unknown): m is HostMessage {
  return HOST_TYPES.has(typeOf(m) as string);
}

/**
 * Child side: what a warm job process does after prewarm, so the hand-off of its job runs warm
 * code. Left cold, the first job's start (the runtime's own path; protobuf's lazy message
 * reflection for `Job`, `Room`, `ParticipantInfo`; rtc-node's `Room`) and the first `ctx.connect()`
 * (starting rtc-node's native runtime; the reflection of its FFI messages, ~13 ms for the first
 * request alone) cost milliseconds each on the job's critical path; here they cost the same once
 * (~15 ms in all), while the process is idle. Nothing done here outlives the call but the native
 * runtime, the reflection caches and Node's `perf_hooks`, which jobs use anyway (the rehearsed
 * job's teardown finishes in the same tick's microtasks: it never connected).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { RunningJobInfo } from '../../machines/jobProcess.contract.ts';
import type { Logger } from '../log/logger.ts';
import type { WorkerOptions } from '../options/worker-options.ts';
import type { JobProcess } from './process.ts';
import { startJob } from './runtime.ts';

/** What the warm-up managed; a step that fails is skipped (the job then pays for it, as before). */
export interface WarmUpReport {
  context: boolean;
  performance: boolean;
  nativeRuntime: boolean;
  ffiMessages: boolean;
}

/**
 * Starts the rehearsed job: with the entrypoint and the logger given, the way a real one starts
 * (the job process passes its own launch path; by default, the runtime's start alone).
 */
export type RehearseStart = (
  info: RunningJobInfo,
  entrypointFnc: WorkerOptions['entrypointFnc'],
  log: Logger,
) => void;

export function warmJobRuntime(
  proc: JobProcess,
  rehearse: RehearseStart = (info, entrypointFnc, log) => {
    startJob({ info, entrypointFnc, log, proc, callbackTimeout: 1_000 });
  },
): WarmUpReport {
  return {
    nativeRuntime: startNativeRuntime(),
    context: warmJobStart(proc, rehearse),
    performance: warmPerformance(),
    ffiMessages: warmFfiMessages(),
  };
}

/**
 * A job as the server sends it, every nested message the server fills in set (room with codecs
 * and version, participant with permission and attributes, state), so parsing a real one later
 * meets no cold path.
 */
const SAMPLE_JOB = {
  id: 'AJ_warmup',
  dispatchId: 'AD_warmup',
  type: 'JT_PARTICIPANT',
  room: {
    sid: 'RM_warmup',
    name: 'warmup',
    emptyTimeout: 300,
    departureTimeout: 20,
    maxParticipants: 0,
    creationTime: '1',
    creationTimeMs: '1000',
    turnPassword: 'warmup',
    enabledCodecs: [{ mime: 'audio/opus' }, { mime: 'video/VP8' }],
    metadata: '{}',
    numParticipants: 1,
    numPublishers: 1,
    activeRecording: false,
    version: { unixMicro: '1', ticks: 1 },
  },
  participant: {
    sid: 'PA_warmup',
    identity: 'warmup',
    state: 'ACTIVE',
    joinedAt: '1',
    joinedAtMs: '1000',
    name: 'warmup',
    version: 1,
    permission: { canSubscribe: true, canPublish: true, canPublishData: true },
    attributes: { warmup: 'yes' },
    kind: 'STANDARD',
    isPublisher: true,
  },
  namespace: '',
  metadata: '',
  agentName: 'warmup',
  state: { status: 'JS_PENDING', startedAt: '0', updatedAt: '0', participantIdentity: 'warmup' },
};

/** A logger that drops everything: the rehearsal's records are nobody's business. */
const SILENT: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => SILENT,
};

/**
 * Rehearses a job's start once, with the sample job and an entrypoint of ours that reads it:
 * the start path (in a job process: the message listener, the hand-off, the runtime's start,
 * context, logger, the entrypoint's call and its end, in the job's order) is compiled and run
 * before a real job needs it. Left to the first job, compiling it cost ~0.3 ms of the hand-off
 * (probe stamps, bench latency rounds). Nothing is sent to the worker, no room is joined.
 */
function warmJobStart(proc: JobProcess, rehearse: RehearseStart): boolean {
  try {
    const info: RunningJobInfo = {
      jobId: SAMPLE_JOB.id,
      job: SAMPLE_JOB,
      acceptArguments: { name: '', identity: 'warmup', metadata: '', attributes: {} },
      url: '',
      token: '',
      workerId: '',
    };
    let parsed = false;
    rehearse(
      info,
      (ctx) => {
        // The JSON must have parsed in full: a field the parser skipped would stay cold; and the
        // process's own object must be the one a job gets.
        parsed =
          ctx.job.room?.enabledCodecs.length === 2 &&
          ctx.participant !== undefined &&
          ctx.proc === proc;
      },
      SILENT,
    );
    return parsed;
  } catch {
    return false;
  }
}

/**
 * Node loads `perf_hooks` (eight internal modules, ~1 ms) on the first use of the `performance`
 * global; an entrypoint that times itself (as agents reporting latency metrics do) would pay for
 * it inside its job.
 */
function warmPerformance(): boolean {
  return performance.now() >= 0;
}

/** rtc-node's FFI bindings, the one function of them this module calls. */
interface FfiBindings {
  livekitInitialize?: (onEvent: unknown, captureLogs: boolean, ...rest: unknown[]) => unknown;
}

/**
 * Starts rtc-node's native (Rust) runtime, which it otherwise starts on the first FFI call of the
 * process (normally inside `ctx.connect()`), with the native side's log capture off. rtc-node asks
 * for every native log record, down to TRACE, as an FFI event of its own, decodes each one in
 * JavaScript on the main thread and drops it: about a thousand and a half events per room connect
 * (libwebrtc's and the websocket's debug lines), tens of ms of CPU each time
 * (docs/measurements.md).
 * Without capture the native side filters by `RUST_LOG` (default: errors only) and writes to the
 * process's stderr, which the worker passes through (README, "Logging").
 *
 * Called before the agent module is imported, so the runtime is ours whatever the module does at
 * import or in `prewarmFnc`. rtc-node keeps one client per process, on `globalThis`; its class
 * sits beside the package's CommonJS entry and calls the bindings through their exports object,
 * so the call is redirected for the one construction and put back. If the layout ever changes,
 * this is skipped and rtc-node starts its runtime as it always does. Idempotent.
 */
export function startNativeRuntime(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const entry = require.resolve('@livekit/rtc-node');
    const ffi = require(join(dirname(entry), 'ffi_client.cjs')) as {
      FfiClient?: { instance?: unknown };
    };
    const running = (globalThis as { _ffiClientInstance?: unknown })._ffiClientInstance;
    if (running !== undefined) return true;
    const bindings = createRequire(entry)('@livekit/rtc-ffi-bindings') as FfiBindings;
    const initialize = bindings.livekitInitialize;
    if (typeof initialize !== 'function') return ffi.FfiClient?.instance !== undefined;
    bindings.livekitInitialize = (onEvent, _captureLogs, ...rest) =>
      initialize(onEvent, false, ...rest);
    try {
      return ffi.FfiClient?.instance !== undefined;
    } finally {
      bindings.livekitInitialize = initialize;
    }
  } catch {
    return false;
  }
}

/** The FFI message classes, as rtc-node itself loads them (its own dependency, CommonJS). */
interface MessageClass {
  new (): unknown;
  fromBinary(bytes: Uint8Array): unknown;
  fields: { list(): readonly { kind: string; localName: string; T?: unknown }[] };
}

/**
 * The envelope fields (request, response and event alike) a typical job goes through: joining
 * and leaving, data, room and track events, audio in and out, and rtc-node's log forwarding.
 */
const JOB_PATH_FIELDS = new Set([
  'connect',
  'disconnect',
  'dispose',
  'roomEvent',
  'trackEvent',
  'publishData',
  'publishTrack',
  'unpublishTrack',
  'createAudioTrack',
  'newAudioSource',
  'captureAudioFrame',
  'newAudioStream',
  'audioStreamEvent',
  'logs',
]);

/**
 * protobuf-es builds a message type's field list on its first use; rtc-node speaks to its native
 * side in ~400 such types. The ones reachable from a job's usual envelope fields (about a third)
 * are built here; walking all of them would cost twice the time and memory for types most jobs
 * never see.
 */
function warmFfiMessages(): boolean {
  try {
    const fromRtc = createRequire(createRequire(import.meta.url).resolve('@livekit/rtc-node'));
    const ffi = fromRtc('@livekit/rtc-ffi-bindings') as Record<string, MessageClass | undefined>;
    const seen = new Set<MessageClass>();
    const walk = (type: MessageClass): void => {
      if (seen.has(type)) return;
      seen.add(type);
      new type();
      type.fromBinary(new Uint8Array());
      for (const field of type.fields.list()) {
        if (field.kind === 'message' && field.T) walk(field.T as MessageClass);
      }
    };
    for (const name of ['FfiRequest', 'FfiResponse', 'FfiEvent']) {
      const envelope = ffi[name];
      if (!envelope) return false;
      seen.add(envelope);
      new envelope();
      for (const field of envelope.fields.list()) {
        if (field.kind === 'message' && field.T && JOB_PATH_FIELDS.has(field.localName)) {
          walk(field.T as MessageClass);
        }
      }
    }
    return seen.size > 3;
  } catch {
    return false;
  }
}

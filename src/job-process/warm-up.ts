/**
 * Child side: what a warm job process does after prewarm, so the hand-off of its job runs warm
 * code. Left cold, the first `JobContext` (protobuf's lazy message reflection for `Job`,
 * `Room`, `ParticipantInfo`; rtc-node's `Room`) and the first `ctx.connect()` (starting
 * rtc-node's native runtime; the reflection of its FFI messages, ~13 ms for the first request
 * alone) cost milliseconds each on the job's critical path; here they cost the same once (~15 ms
 * in all), while the process is idle. Nothing done here outlives the call but the native
 * runtime and the reflection caches, which every job uses anyway.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Job, JobState, JobType, ParticipantInfo, Room as RoomInfo } from './protocol.ts';
import type { RunningJobInfo } from '../../machines/jobProcess.contract.ts';
import { JobContext } from './context.ts';
import type { JobProcess } from './process.ts';

/** What the warm-up managed; a step that fails is skipped (the job then pays for it, as before). */
export interface WarmUpReport {
  context: boolean;
  nativeRuntime: boolean;
  ffiMessages: boolean;
}

export function warmJobRuntime(proc: JobProcess): WarmUpReport {
  return {
    context: warmContext(proc),
    nativeRuntime: startNativeRuntime(),
    ffiMessages: warmFfiMessages(),
  };
}

/** Builds and drops one `JobContext` for a job shaped like a real one (room, participant, state). */
function warmContext(proc: JobProcess): boolean {
  try {
    const job = new Job({
      id: 'AJ_warmup',
      type: JobType.JT_PARTICIPANT,
      room: new RoomInfo({ sid: 'RM_warmup', name: 'warmup', metadata: '{}' }),
      participant: new ParticipantInfo({ sid: 'PA_warmup', identity: 'warmup', name: 'warmup' }),
      namespace: '',
      metadata: '',
      agentName: 'warmup',
      state: new JobState({ participantIdentity: 'warmup' }),
      dispatchId: 'AD_warmup',
    });
    const info: RunningJobInfo = {
      jobId: job.id,
      job: job.toJson(),
      acceptArguments: { name: '', identity: 'warmup', metadata: '', attributes: {} },
      url: '',
      token: '',
      workerId: '',
    };
    void new JobContext({ info, proc, onEnd: () => {}, ended: new Promise(() => {}) }).participant;
    return true;
  } catch {
    return false;
  }
}

/**
 * rtc-node starts its native (Rust) runtime on the first FFI call of the process, normally inside
 * `ctx.connect()`. Its client is not exported; it sits beside the package's CommonJS entry, and
 * takes ~1 ms and ~2 MB to start. If the package's layout ever changes, this is skipped.
 */
function startNativeRuntime(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const dist = dirname(require.resolve('@livekit/rtc-node'));
    const ffi = require(join(dist, 'ffi_client.cjs')) as { FfiClient?: { instance?: unknown } };
    return ffi.FfiClient?.instance !== undefined;
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

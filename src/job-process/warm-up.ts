/**
 * Child side: what a warm job process does after prewarm, so the hand-off of its job runs warm
 * code. Left cold, the first `JobContext` (protobuf's lazy message reflection for `Job`,
 * `Room`, `ParticipantInfo`; rtc-node's `Room`) and the first `ctx.connect()` (starting
 * rtc-node's native runtime) cost several milliseconds each on the job's critical path; here
 * they cost the same once, while the process is idle. Nothing done here outlives the call but
 * the native runtime, which every job uses anyway.
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
}

export function warmJobRuntime(proc: JobProcess): WarmUpReport {
  return { context: warmContext(proc), nativeRuntime: startNativeRuntime() };
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

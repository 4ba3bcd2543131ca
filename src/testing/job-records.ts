/**
 * The emulator's record of one job: what it was created for, the dispatch key that says which
 * workers may be asked, its protocol `Job`, and the snapshot tests see. Used by the dispatcher
 * (`dispatcher.ts`), which creates the records, offers and assigns them.
 */
import { JobStatus, JobType, type Job } from '@livekit/protocol';
import type { WorkerState } from './connection.ts';
import type { JobAcceptSnapshot, JobKind, JobSnapshot, JobStatusName } from './types.ts';

export const JOB_TYPES: Record<JobKind, JobType> = {
  room: JobType.JT_ROOM,
  publisher: JobType.JT_PUBLISHER,
  participant: JobType.JT_PARTICIPANT,
};

export const STATUS_NAMES: Record<JobStatus, JobStatusName> = {
  [JobStatus.JS_PENDING]: 'pending',
  [JobStatus.JS_RUNNING]: 'running',
  [JobStatus.JS_SUCCESS]: 'success',
  [JobStatus.JS_FAILED]: 'failed',
};

/** Dispatch key: only workers registered with exactly this key are asked. */
export interface JobKey {
  agentName: string;
  namespace: string;
  jobType: JobType;
  deployment: string;
}

export interface JobRecord extends Omit<JobSnapshot, 'tries' | 'accept'> {
  tries: string[];
  accept: JobAcceptSnapshot | undefined;
  /** Its dispatch was deleted before the link: terminate it as soon as it is linked. */
  terminateOnLink: boolean;
  proto: Job;
  key: JobKey;
}

/** What a job is created from besides its `Job`. */
export interface JobOrigin {
  type: JobKind;
  room: string;
  participant: string | undefined;
  key: JobKey;
  simulated: boolean;
}

export const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

/**
 * Whether a worker registered with the key; a key without `namespace` matches every namespace
 * (a dispatch is launched once per namespace of its workers).
 */
export function servesKey(
  w: WorkerState | undefined,
  key: Omit<JobKey, 'namespace'> & { namespace?: string },
): w is WorkerState {
  return (
    w !== undefined &&
    w.agentName === key.agentName &&
    (key.namespace === undefined || (w.namespace ?? '') === key.namespace) &&
    w.jobType === key.jobType &&
    w.deployment === key.deployment
  );
}

export function newJobRecord(proto: Job, origin: JobOrigin): JobRecord {
  return {
    id: proto.id,
    dispatchId: proto.dispatchId,
    type: origin.type,
    room: origin.room,
    agentName: proto.agentName,
    namespace: proto.namespace,
    deployment: proto.deployment,
    metadata: proto.metadata,
    participant: origin.participant,
    participantIdentity: undefined,
    workerId: undefined,
    status: 'pending',
    error: '',
    accept: undefined,
    tries: [],
    token: undefined,
    simulated: origin.simulated,
    linked: false,
    terminateOnLink: false,
    createdAt: Date.now(),
    endedAt: undefined,
    proto,
    key: origin.key,
  };
}

/** A copy for tests: no protocol objects, nothing they can change in the record. */
export function jobSnapshot(job: JobRecord): JobSnapshot {
  const { proto: _proto, key: _key, terminateOnLink: _terminateOnLink, ...rest } = job;
  return {
    ...rest,
    tries: [...job.tries],
    accept: job.accept && { ...job.accept, attributes: { ...job.accept.attributes } },
  };
}

/**
 * The job journal: what a worker records of each job it runs, from its launch to its end, so that
 * a job that ends abnormally — or whose worker dies — can be dispatched again (`recoverer.ts`).
 * Two stores behind one interface: a directory on disk for one machine (`disk-journal.ts`) and
 * Redis for a fleet (`redis-store.ts`).
 */
import type { JsonValue } from '@bufbuild/protobuf';

/** Why a job that ended abnormally was not dispatched again (a metric label). */
export const RECOVERY_DECLINE_REASONS = [
  'roomGone',
  'userLeft',
  'jobType',
  'storeUnavailable',
  'serverError',
] as const;
export type RecoveryDeclineReason = (typeof RECOVERY_DECLINE_REASONS)[number];

/** One running job, as journaled. Serialisable as JSON. */
export interface JournalEntry {
  jobId: string;
  dispatchId: string;
  roomName: string;
  /** The agent name it was dispatched to (`''`: automatic dispatch). */
  agentName: string;
  /** `JT_ROOM`, `JT_PUBLISHER` or `JT_PARTICIPANT`. */
  jobType: string;
  /** The participant a PUBLISHER or PARTICIPANT job serves. */
  participantIdentity: string | undefined;
  /** The agent participant's identity, name, metadata and attributes (the recovered job's too). */
  agentIdentity: string;
  agentParticipantName: string;
  agentParticipantMetadata: string;
  agentAttributes: Record<string, string>;
  /** The dispatch's metadata (`job.metadata`). */
  metadata: string;
  /** The server's id of the worker that runs it, and the journal owner (this worker's run). */
  workerId: string;
  owner: string;
  /** 1 for a first attempt. */
  attempt: number;
  /** When the first attempt started (ms since the epoch). */
  firstStartedAt: number;
  /** The last `ctx.checkpoint()` value. */
  checkpoint: JsonValue | undefined;
}

/**
 * A re-dispatch on its way: written before `createDispatch`, taken (once) by the worker that is
 * offered the new job, which answers with the entry's identity. Found by room, agent name and
 * dispatch metadata: the recovered job carries its predecessor's metadata unchanged.
 */
export interface PendingRecovery {
  entry: JournalEntry;
  /** When the abnormal end was seen (ms since the epoch), for the recovery latency. */
  detectedAt: number;
  /** After this (ms since the epoch) the record is stale: the dispatch reached no one. */
  expiresAt: number;
}

/** A journal file or record that could not be read: moved aside, never recovered. */
export interface JournalProblem {
  where: string;
  error: string;
}

/** The store behind the journal. Every method may reject (a disk error, Redis unreachable). */
export interface JobStore {
  readonly kind: 'disk' | 'redis';
  /**
   * Takes this worker's place in the store (the directory's lease, or the worker's lease in
   * Redis). Rejects when the store cannot be used.
   */
  open(): Promise<void>;
  put(entry: JournalEntry): Promise<void>;
  remove(jobId: string): Promise<void>;
  /**
   * Claims the open jobs of workers that are gone (a predecessor on this disk, a lapsed lease in
   * Redis). Each one is claimed by exactly one caller and leaves the store as it is claimed.
   * Unreadable records are reported in `problems` and dropped.
   */
  claimOrphans(): Promise<{ entries: JournalEntry[]; problems: JournalProblem[] }>;
  putPending(p: PendingRecovery): Promise<void>;
  /** Takes the pending recovery for this offer, if there is one (at most one caller gets it). */
  takePending(
    roomName: string,
    agentName: string,
    metadata: string,
  ): Promise<PendingRecovery | undefined>;
  /**
   * Whether this worker still holds its lease; `false` once another worker may have claimed its
   * jobs (it was frozen or cut off past the lease). Renewal is the store's own business.
   */
  leaseHeld(): boolean;
  /** Whether a job of this worker is still its own (not claimed by another worker). */
  owns(jobId: string): Promise<boolean>;
  /** Releases the lease and every resource. Idempotent. */
  close(): Promise<void>;
}

export class JournalError extends Error {
  override name = 'JournalError';
}

/** Checks a parsed record's shape; throws a `JournalError` naming what is wrong. */
export function checkEntry(v: unknown): JournalEntry {
  if (typeof v !== 'object' || v === null) throw new JournalError('not an object');
  const e = v as Record<string, unknown>;
  const strings = [
    'jobId',
    'dispatchId',
    'roomName',
    'agentName',
    'jobType',
    'agentIdentity',
    'agentParticipantName',
    'agentParticipantMetadata',
    'metadata',
    'workerId',
    'owner',
  ];
  for (const k of strings) {
    if (typeof e[k] !== 'string') throw new JournalError(`field ${k} is not a string`);
  }
  for (const k of ['attempt', 'firstStartedAt']) {
    if (typeof e[k] !== 'number' || !Number.isFinite(e[k])) {
      throw new JournalError(`field ${k} is not a number`);
    }
  }
  if (typeof e.agentAttributes !== 'object' || e.agentAttributes === null) {
    throw new JournalError('field agentAttributes is not an object');
  }
  return e as unknown as JournalEntry;
}

export function checkPending(v: unknown): PendingRecovery {
  if (typeof v !== 'object' || v === null) throw new JournalError('not an object');
  const p = v as Record<string, unknown>;
  if (typeof p.detectedAt !== 'number' || typeof p.expiresAt !== 'number') {
    throw new JournalError('detectedAt/expiresAt are not numbers');
  }
  return { entry: checkEntry(p.entry), detectedAt: p.detectedAt, expiresAt: p.expiresAt };
}

/**
 * Job recovery, beside the worker chart: follows the worker's records, journals each job it
 * launches (`journal.ts`), and when a job ends abnormally — its process crashed, was killed by
 * the kernel, stopped answering or ran out of memory, without anyone asking it to end — or when
 * it finds the open jobs of a worker that is gone (a predecessor on this disk, a lapsed lease in
 * Redis), it dispatches the job again through the server's own API:
 *
 * 1. the room must still exist and hold the user (`RoomService.listParticipants`);
 * 2. the dead job's agent participant, which the server keeps listed for a while after its
 *    process died, is removed first: the server keys agent jobs by identity, and a new job joining with that identity while
 *    the old participant is there is ended at once ("agent worker left the room",
 *    test/e2e/SERVER-FACTS.md);
 * 3. a pending-recovery record goes into the store, then `AgentDispatchService.createDispatch`
 *    with the job's agent name and metadata; the worker offered the new job takes the record
 *    (`lookup`, inside the availability window) and answers with the old identity, and the job
 *    process gives its attempt and last checkpoint to `ctx.recovery`.
 *
 * A clean end, `ctx.shutdown()`, a server termination, a drain deadline, a forced stop and an
 * entrypoint that throws are never retried, and no job gets more than `maxAttempts`. A store that
 * fails is a reported degradation: jobs run on, recovery resumes when it is back.
 */
import { backgroundTimeout, repeatEvery, systemClock, withDeadline, type Clock } from '../clock.ts';
import { errorMessage } from '../errors.ts';
import { randomUUID } from 'node:crypto';
import type { JsonValue } from '@bufbuild/protobuf';
import { ParticipantInfo_Kind, type Job } from '@livekit/protocol';
import type { AgentDispatchClient, RoomServiceClient } from 'livekit-server-sdk';
import type { ResolvedAcceptArguments } from '../../machines/jobRequest.contract.ts';
import type { JobRecord, WorkerEmitted } from '../../machines/worker.contract.ts';
import type { Logger } from '../log/logger.ts';
import type { ResolvedRecovery } from '../options/resolve.ts';
import { DiskJournal } from './disk-journal.ts';
import type { JobStore, JournalEntry, PendingRecovery, RecoveryDeclineReason } from './journal.ts';

/** What recovery tells the outside world (logs, metrics, `/worker`), beside the chart's records. */
export type RecoveryRecord =
  | { type: 'jobJournaled'; jobId: string; attempt: number }
  | {
      type: 'jobRecoveryDispatched';
      jobId: string;
      roomName: string;
      attempt: number;
      cause: string;
    }
  | {
      type: 'jobRecovered';
      jobId: string;
      previousJobId: string;
      roomName: string;
      attempt: number;
      /** From the abnormal end (or the orphan's discovery) to the new job's launch. */
      latencyMs: number;
    }
  | {
      type: 'jobRecoveryDeclined';
      jobId: string;
      roomName: string;
      why: RecoveryDeclineReason;
      detail: string;
    }
  | {
      type: 'jobRecoveryGivenUp';
      jobId: string;
      roomName: string;
      attempts: number;
      /** Why: no attempts left, or no worker took any of its dispatches. */
      reason: string;
    }
  | { type: 'recoveryDegraded'; reason: string }
  | { type: 'recoveryRestored' };

/** What the recoverer reads of the worker (the `Worker` facade provides it). */
export interface RecoveredWorker {
  on(type: '*', fn: (e: WorkerEmitted) => void): () => void;
  /** The chart's record of a job (after its assignment: `launch` is set). */
  jobRecord(jobId: string): JobRecord | undefined;
  /** Asks a running job to end (it was claimed by another worker). */
  endJob(jobId: string, reason: string): void;
}

export interface RecovererOptions {
  recovery: ResolvedRecovery;
  agentName: string;
  /** `ws(s)://` URL and credentials of the server (its HTTP API is at the same address). */
  wsUrl: string;
  apiKey: string;
  apiSecret: string;
  stateDir: string | undefined;
  stateDirProblem: string | undefined;
  log: Logger;
  emit: (r: RecoveryRecord) => void;
  /** Wall-clock time (ms since the epoch): what the journal records and other workers read. */
  now?: () => number;
  /** Schedules every timer and deadline of recovery and its store. Default: the system clock. */
  clock?: Clock;
  /** For tests: the store (else disk or Redis from the options). */
  store?: JobStore;
  /** For tests: the server's API (else livekit-server-sdk's clients at `wsUrl`). */
  serverApi?: () => Promise<RecoveryServerApi>;
}

/** What recovery calls of the server's API (`RoomService`, `AgentDispatchService`). */
export interface RecoveryServerApi {
  rooms: Pick<RoomServiceClient, 'listRooms' | 'listParticipants' | 'removeParticipant'>;
  dispatch: Pick<AgentDispatchClient, 'createDispatch'>;
}

/** How long the offer's lookup may take: the server gives the whole answer ~3 s. */
const LOOKUP_BUDGET = 1_000;
/** A call to the server's API (RoomService, AgentDispatchService) that takes longer has failed. */
const SERVER_CALL_TIMEOUT = 10_000;
/** How long a pending-recovery record waits for its offer. */
const PENDING_TTL = 30_000;
/**
 * When to look whether a re-dispatch reached a worker: the server gives up on an offer after
 * 10 s without retrying (`AssignJobTimeout`), so a pending record still there after this was
 * offered to a worker that never answered — a frozen one, still registered — and dropped.
 */
const REDISPATCH_CHECK = 11_000;
/**
 * How long the first claim after registration waits for this worker to report itself available:
 * a worker starts full until its warm processes are up (~0.3 s), and a dispatch the server makes
 * while no worker of the name is available is dropped ("no servers available"), found only by the
 * re-dispatch check 11 s later. With the disk journal no other worker could take it as a recovery.
 */
const FIRST_CLAIM_WAIT = 5_000;
/** With Redis, how often at least the store is searched for the jobs of dead workers. */
const ORPHAN_SCAN = 1_000;
/** Dispatches per recovery, the first included. */
export const MAX_DISPATCHES = 3;
/** The ends no one asked for: only these are retried. */
const ABNORMAL_ENDS = new Set(['crashed', 'unresponsive', 'memoryExceeded']);

export interface Recoverer {
  /** The decide hook: accept arguments when this offer is a pending recovery. */
  lookup(job: Job): Promise<ResolvedAcceptArguments | undefined>;
  /** A job's `ctx.checkpoint(value)`, from its process host. */
  onCheckpoint(jobId: string, value: JsonValue): void;
  /** What `/worker` shows: the store, whether it is up, and why not. */
  status(): RecoveryStatus;
  /** Attaches to the worker. */
  start(worker: RecoveredWorker): void;
  stop(): Promise<void>;
}

export interface RecoveryStatus {
  store: 'disk' | 'redis' | 'none';
  up: boolean;
  /** Why recovery does nothing now, if it does not. */
  problem: string | undefined;
}

export function createRecoverer(o: RecovererOptions): Recoverer {
  const owner = randomUUID();
  const now = o.now ?? Date.now;
  const clock = o.clock ?? systemClock;
  const bounded = <T>(what: string, call: Promise<T>): Promise<T> =>
    withDeadline(call, SERVER_CALL_TIMEOUT, what, clock);
  const log = o.log.child({ component: 'recovery' });
  let store: JobStore | undefined = o.store;
  let problem: string | undefined;
  // The Redis client is loaded only by a worker that uses Redis.
  let storeLoading: Promise<void> | undefined;
  const kind: RecoveryStatus['store'] = o.store
    ? o.store.kind
    : o.recovery.redisUrl
      ? 'redis'
      : o.stateDir
        ? 'disk'
        : 'none';
  if (!store && o.recovery.redisUrl) {
    const url = o.recovery.redisUrl;
    storeLoading = import('./redis-store.ts').then(({ RedisStore }) => {
      store = new RedisStore({
        url,
        agentName: o.agentName,
        owner,
        leaseTtl: o.recovery.leaseTtl,
        onConnectionChange: (up, error) => onConnection(up, error),
        now,
        clock,
      });
    });
  } else if (!store && o.stateDir) {
    store = new DiskJournal({
      stateDir: o.stateDir,
      agentName: o.agentName,
      owner,
      leaseTtl: o.recovery.leaseTtl,
      now,
      clock,
    });
  } else if (!store) {
    problem = `recovery is off: ${o.stateDirProblem ?? 'no state directory'}; set stateDir or AGENTSTATE_STATE_DIR to a writable directory, or recovery.redisUrl`;
    log.warn(problem);
  }

  const http = o.wsUrl.replace(/^ws/, 'http');
  // The server API's clients, loaded at the first recovery: most workers never need them.
  let clients: Promise<RecoveryServerApi> | undefined;
  const serverApi = () =>
    (clients ??=
      o.serverApi?.() ??
      import('livekit-server-sdk').then((sdk) => ({
        rooms: new sdk.RoomServiceClient(http, o.apiKey, o.apiSecret),
        dispatch: new sdk.AgentDispatchClient(http, o.apiKey, o.apiSecret),
      })));
  const entries = new Map<string, JournalEntry>();
  /** New job id → the pending recovery it took (until its launch is journaled). */
  const incoming = new Map<string, PendingRecovery>();
  let worker: RecoveredWorker | undefined;
  let up = false;
  let opened = false;
  let registered = false;
  let stopped = false;
  let stopTicking: (() => void) | undefined;
  const rechecks = new Set<unknown>();
  let stopFollowing: (() => void) | undefined;
  let claiming = false;
  /** Whether this worker's last status report said available, and who waits for it. */
  let available = false;
  const waitingForAvailable = new Set<() => void>();
  function whenAvailable(): Promise<void> {
    if (available) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clock.clearTimeout(timer);
        waitingForAvailable.delete(done);
        resolve();
      };
      const timer = backgroundTimeout(clock, done, FIRST_CLAIM_WAIT);
      waitingForAvailable.add(done);
    });
  }

  function onConnection(isUp: boolean, error?: string) {
    if (!isUp) degrade(`Redis unreachable: ${error ?? 'disconnected'}`);
  }

  function degrade(reason: string) {
    if (!up && problem !== undefined) return;
    up = false;
    problem = `recovery degraded: ${reason}`;
    log.warn('recovery degraded: jobs keep running, recovery is off until the store is back', {
      reason,
    });
    o.emit({ type: 'recoveryDegraded', reason });
  }

  function restore() {
    if (up) return;
    const wasDegraded = problem !== undefined && opened;
    up = true;
    problem = undefined;
    if (wasDegraded) {
      log.info('recovery store is back: recovery resumed');
      o.emit({ type: 'recoveryRestored' });
    }
  }

  /** Opens the store (again): the lease, then every running job journaled again. */
  let opening: Promise<boolean> | undefined;
  function ensureOpen(): Promise<boolean> {
    // One attempt at a time: the start and the registration both ask for the store.
    opening ??= openStore().finally(() => {
      opening = undefined;
    });
    return opening;
  }

  async function openStore(): Promise<boolean> {
    await storeLoading;
    if (!store || stopped) return false;
    if (up && store.leaseHeld()) return true;
    try {
      await store.open();
      // A store that came back empty (Redis restarted) gets our running jobs again.
      for (const e of entries.values()) await store.put(e);
      restore();
      opened = true;
      return true;
    } catch (err) {
      degrade(errorMessage(err));
      return false;
    }
  }

  /** Runs a store operation; a failure degrades recovery instead of reaching the worker. */
  async function guarded<T>(what: string, op: (s: JobStore) => Promise<T>): Promise<T | undefined> {
    if (!store || !up) return undefined;
    try {
      return await op(store);
    } catch (err) {
      degrade(`${what}: ${errorMessage(err)}`);
      return undefined;
    }
  }

  function entryFor(jobId: string): JournalEntry | undefined {
    const rec = worker?.jobRecord(jobId);
    const launch = rec?.launch;
    if (!rec || !launch) return undefined;
    const a = launch.acceptArguments;
    const job = rec.job;
    const r = a.recovery;
    return {
      jobId,
      dispatchId: job.dispatchId,
      roomName: job.room?.name ?? '',
      agentName: job.agentName,
      jobType: jobTypeName(job.type),
      participantIdentity: job.participant?.identity,
      agentIdentity: a.identity,
      agentParticipantName: a.name,
      agentParticipantMetadata: a.metadata,
      agentAttributes: a.attributes,
      metadata: job.metadata,
      workerId: launch.workerId,
      owner,
      attempt: r?.attempt ?? 1,
      firstStartedAt: r?.firstStartedAt ?? now(),
      checkpoint: r?.checkpoint,
    };
  }

  function onLaunched(jobId: string) {
    const entry = entryFor(jobId);
    if (!entry) return;
    entries.set(jobId, entry);
    const p = incoming.get(jobId);
    incoming.delete(jobId);
    if (p) {
      const latencyMs = Math.max(0, now() - p.detectedAt);
      log.info('job recovered', {
        jobId,
        previousJobId: p.entry.jobId,
        roomName: entry.roomName,
        attempt: entry.attempt,
        latencyMs,
      });
      o.emit({
        type: 'jobRecovered',
        jobId,
        previousJobId: p.entry.jobId,
        roomName: entry.roomName,
        attempt: entry.attempt,
        latencyMs,
      });
    }
    void guarded('journal write', (s) => s.put(entry)).then((done) => {
      if (done !== undefined || (store && up)) {
        o.emit({ type: 'jobJournaled', jobId, attempt: entry.attempt });
      }
    });
  }

  function onEnded(e: Extract<WorkerEmitted, { type: 'jobEnded' }>) {
    const entry = entries.get(e.jobId);
    entries.delete(e.jobId);
    if (!entry) return;
    const abnormal = !e.endRequested && ABNORMAL_ENDS.has(e.ending);
    if (!abnormal || stopped) {
      void guarded('journal write', (s) => s.remove(e.jobId));
      return;
    }
    const cause = `job process ${e.ending}: ${e.reason}`;
    const detectedAt = now();
    // A job another worker claimed while this one was frozen or cut off is that worker's now.
    void guarded('ownership check', (s) => s.owns(e.jobId)).then((mine) => {
      if (mine === false) {
        log.info('job not recovered here: another worker claimed it', { jobId: e.jobId });
        return;
      }
      return recover(entry, cause, detectedAt);
    });
  }

  function decline(entry: JournalEntry, why: RecoveryDeclineReason, detail: string) {
    log.info('job not recovered', { jobId: entry.jobId, roomName: entry.roomName, why, detail });
    o.emit({
      type: 'jobRecoveryDeclined',
      jobId: entry.jobId,
      roomName: entry.roomName,
      why,
      detail,
    });
  }

  /** Dispatches `entry`'s job again, if its room still wants it. Never throws. */
  async function recover(entry: JournalEntry, cause: string, detectedAt: number): Promise<void> {
    const finish = () => guarded('journal write', (s) => s.remove(entry.jobId));
    if (!store || !up) {
      decline(entry, 'storeUnavailable', problem ?? 'no store');
      return;
    }
    if (entry.attempt >= o.recovery.maxAttempts) {
      log.warn('job recovery given up: no attempts left', {
        jobId: entry.jobId,
        roomName: entry.roomName,
        attempts: entry.attempt,
        cause,
      });
      o.emit({
        type: 'jobRecoveryGivenUp',
        jobId: entry.jobId,
        roomName: entry.roomName,
        attempts: entry.attempt,
        reason: 'no attempts left',
      });
      await finish();
      return;
    }
    if (entry.jobType !== 'JT_ROOM') {
      decline(entry, 'jobType', `${entry.jobType} jobs are not recovered (only room jobs)`);
      await finish();
      return;
    }
    try {
      const { rooms } = await serverApi();
      const found = await bounded('listRooms', rooms.listRooms([entry.roomName]));
      if (found.length === 0) {
        decline(entry, 'roomGone', `room ${entry.roomName} no longer exists`);
        await finish();
        return;
      }
      const participants = await bounded(
        'listParticipants',
        rooms.listParticipants(entry.roomName),
      );
      const users = participants.filter((p) => !isAgent(p));
      if (users.length === 0) {
        decline(entry, 'userLeft', `no user is left in room ${entry.roomName}`);
        await finish();
        return;
      }
      // The dead job's participant (or a frozen worker's live one): it goes first, so the new job
      // with its identity is not ended by the server on joining, and never meets it in the room.
      if (participants.some((p) => p.identity === entry.agentIdentity)) {
        await bounded(
          'removeParticipant',
          rooms.removeParticipant(entry.roomName, entry.agentIdentity),
        ).catch((err: unknown) => {
          log.debug('the old agent participant was already gone', { error: err });
        });
      }
      await dispatchAgain(entry, detectedAt, 1);
      log.info('job dispatched again', {
        jobId: entry.jobId,
        roomName: entry.roomName,
        attempt: entry.attempt + 1,
        cause,
      });
      o.emit({
        type: 'jobRecoveryDispatched',
        jobId: entry.jobId,
        roomName: entry.roomName,
        attempt: entry.attempt + 1,
        cause,
      });
    } catch (err) {
      decline(entry, 'serverError', errorMessage(err));
    }
    await finish();
  }

  /**
   * Writes the pending record and creates the dispatch; checks after `REDISPATCH_CHECK` that a
   * worker took it, and dispatches again (at most `MAX_DISPATCHES` in all) if none did.
   */
  async function dispatchAgain(entry: JournalEntry, detectedAt: number, n: number): Promise<void> {
    if (!store) return;
    const { dispatch } = await serverApi();
    await store.putPending({ entry, detectedAt, expiresAt: now() + PENDING_TTL });
    await bounded(
      'createDispatch',
      dispatch.createDispatch(entry.roomName, entry.agentName, { metadata: entry.metadata }),
    );
    const t = backgroundTimeout(
      clock,
      () => {
        rechecks.delete(t);
        void recheck(entry, detectedAt, n);
      },
      REDISPATCH_CHECK,
    );
    rechecks.add(t);
  }

  async function recheck(entry: JournalEntry, detectedAt: number, n: number): Promise<void> {
    // Taken here, the record can no longer be taken by a late offer: one of us gets it.
    const left = await guarded('pending-recovery check', (s) =>
      s.takePending(entry.roomName, entry.agentName, entry.metadata),
    );
    if (!left || stopped) return;
    if (n >= MAX_DISPATCHES) {
      const reason = `no worker took the job in ${n} dispatches`;
      log.warn('job recovery given up: no worker took it', {
        jobId: entry.jobId,
        roomName: entry.roomName,
        attempts: entry.attempt,
        dispatches: n,
      });
      o.emit({
        type: 'jobRecoveryGivenUp',
        jobId: entry.jobId,
        roomName: entry.roomName,
        attempts: entry.attempt,
        reason,
      });
      return;
    }
    try {
      const { rooms } = await serverApi();
      const participants = await bounded(
        'listParticipants',
        rooms.listParticipants(entry.roomName),
      );
      if (participants.some((p) => p.identity === entry.agentIdentity)) return;
      log.info('job dispatched again: the last dispatch reached no worker that answered', {
        jobId: entry.jobId,
        roomName: entry.roomName,
        dispatches: n + 1,
      });
      await dispatchAgain(entry, detectedAt, n + 1);
    } catch (err) {
      decline(entry, 'serverError', errorMessage(err));
    }
  }

  /** Claims the jobs of workers that are gone, and recovers each. */
  async function claimOrphans(): Promise<void> {
    if (claiming || !registered) return;
    claiming = true;
    try {
      const claimed = await guarded('claiming orphaned jobs', (s) => s.claimOrphans());
      if (!claimed) return;
      for (const p of claimed.problems) {
        log.error('job journal record unreadable: moved aside, its job is not recovered', {
          where: p.where,
          error: p.error,
        });
      }
      const at = now();
      await Promise.all(
        claimed.entries.map((e) =>
          recover(
            e,
            `worker ${e.workerId} is gone (${store?.kind === 'disk' ? 'restarted' : 'lease lapsed'})`,
            at,
          ),
        ),
      );
    } finally {
      claiming = false;
    }
  }

  /** Our lease lapsed (frozen, cut off): jobs that others claimed end here; the rest stay ours. */
  async function onLeaseLost(): Promise<void> {
    if (!store) return;
    log.warn('this worker lost its recovery lease: jobs claimed by another worker end here');
    for (const e of [...entries.values()]) {
      const mine = await guarded('lease check', (s) => s.owns(e.jobId));
      if (mine === false) {
        entries.delete(e.jobId);
        worker?.endJob(
          e.jobId,
          'recovered by another worker: this worker was unreachable past its lease',
        );
      }
    }
    up = false;
    problem = undefined;
    await ensureOpen();
  }

  async function onTick(): Promise<void> {
    if (stopped || !store) return;
    if (opened && up && !store.leaseHeld()) await onLeaseLost();
    if (!(await ensureOpen())) return;
    if (store.kind === 'redis') await claimOrphans();
  }

  return {
    async lookup(job) {
      if (!store || !up) return undefined;
      const roomName = job.room?.name ?? '';
      const take = guarded('pending-recovery lookup', (s) =>
        s.takePending(roomName, job.agentName, job.metadata),
      );
      // Past its budget the offer is answered as a new job: the server waits ~3 s for it.
      const p = await withDeadline(take, LOOKUP_BUDGET, 'pending-recovery lookup', clock).catch(
        () => undefined,
      );
      if (!p) return undefined;
      incoming.set(job.id, p);
      const e = p.entry;
      return {
        identity: e.agentIdentity,
        name: e.agentParticipantName,
        metadata: e.agentParticipantMetadata,
        attributes: { ...e.agentAttributes },
        recovery: {
          previousJobId: e.jobId,
          attempt: e.attempt + 1,
          firstStartedAt: e.firstStartedAt,
          checkpoint: e.checkpoint,
        },
      };
    },
    onCheckpoint(jobId, value) {
      const e = entries.get(jobId);
      if (!e) return;
      e.checkpoint = value;
      void guarded('journal write', (s) => s.put(e));
    },
    status() {
      return {
        store: kind,
        up,
        problem,
      };
    },
    start(w) {
      worker = w;
      stopFollowing = w.on('*', (e) => {
        switch (e.type) {
          case 'registered':
            if (!registered) {
              registered = true;
              void ensureOpen()
                .then(async (ok) => {
                  if (!ok) return;
                  await whenAvailable();
                  if (!stopped) await claimOrphans();
                })
                .catch(() => undefined);
            }
            return;
          case 'statusReported':
            available = e.status === 'available';
            if (available) for (const done of [...waitingForAvailable]) done();
            return;
          case 'jobLaunched':
            // The record's launch is in the snapshot once this step is done.
            queueMicrotask(() => onLaunched(e.jobId));
            return;
          case 'jobEnded':
            onEnded(e);
            return;
          default:
            return;
        }
      });
      if (kind === 'none') return;
      void ensureOpen();
      const third = Math.max(100, Math.floor(o.recovery.leaseTtl / 3));
      // With Redis the tick also looks for dead workers (a lapsed lease, or a dead one's closed
      // connection, redis-store.ts): at least every ORPHAN_SCAN.
      const every = kind === 'redis' ? Math.min(third, ORPHAN_SCAN) : third;
      stopTicking = repeatEvery(clock, every, () => void onTick());
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      stopTicking?.();
      for (const done of [...waitingForAvailable]) done();
      for (const t of rechecks) clock.clearTimeout(t);
      rechecks.clear();
      stopFollowing?.();
      await storeLoading?.catch(() => undefined);
      await store?.close().catch(() => undefined);
    },
  };
}

/**
 * livekit-server-sdk carries its own copy of @livekit/protocol, whose enum is another type with
 * the same values: compared as numbers.
 */
function isAgent(p: { kind: number }): boolean {
  return p.kind === (ParticipantInfo_Kind.AGENT as number);
}

function jobTypeName(t: number): string {
  return ['JT_ROOM', 'JT_PUBLISHER', 'JT_PARTICIPANT'][t] ?? `JT_${t}`;
}

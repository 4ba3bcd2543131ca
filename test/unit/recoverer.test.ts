/**
 * The recoverer (src/recovery/recoverer.ts) under a simulated clock, with a store in memory and
 * a fake server API: it claims a gone worker's job when it registers and on its tick, removes the
 * dead agent and dispatches the job again; a re-dispatch no worker took is dispatched again,
 * at most MAX_DISPATCHES times in all, and then given up with a reason; a re-dispatch that an
 * offer took, or whose agent is back in the room, is not; an offer's lookup is bounded.
 */
import type { Job } from '@livekit/protocol';
import { ParticipantInfo_Kind } from '@livekit/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import type { WorkerEmitted } from '../../machines/worker.contract.ts';
import type { Logger, LogFields } from '../../src/log/logger.ts';
import type { JobStore, JournalEntry, PendingRecovery } from '../../src/recovery/journal.ts';
import {
  createRecoverer,
  MAX_DISPATCHES,
  type Recoverer,
  type RecoveryRecord,
  type RecoveryServerApi,
} from '../../src/recovery/recoverer.ts';

/** The simulated clock starts at 0; wall time is this plus its reading. */
const EPOCH = 1_800_000_000_000;
const LEASE_TTL = 3_000;
/** The recoverer's wait before it looks whether a re-dispatch reached a worker. */
const REDISPATCH_CHECK = 11_000;

/** Lets the promise chains that a timer or an event started run to their end. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

function entry(jobId: string, roomName: string, over: Partial<JournalEntry> = {}): JournalEntry {
  return {
    jobId,
    dispatchId: `AD_${jobId}`,
    roomName,
    agentName: 'support',
    jobType: 'JT_ROOM',
    participantIdentity: undefined,
    agentIdentity: `agent-${jobId}`,
    agentParticipantName: 'support',
    agentParticipantMetadata: '',
    agentAttributes: {},
    metadata: '{"lang":"fr"}',
    workerId: 'AW_gone',
    owner: 'a-gone-worker',
    attempt: 1,
    firstStartedAt: EPOCH - 60_000,
    checkpoint: { turn: 4 },
    ...over,
  };
}

/** A store in memory, as Redis would be: `orphans` are a gone worker's jobs, claimed once. */
class MemoryStore implements JobStore {
  /** 'disk': claims only at registration, as the disk journal does. */
  constructor(
    private readonly now: () => number,
    readonly kind: 'redis' | 'disk' = 'redis',
  ) {}
  readonly jobs = new Map<string, JournalEntry>();
  readonly pending = new Map<string, PendingRecovery>();
  orphans: JournalEntry[] = [];
  /** A lookup that never answers (Redis hanging), when set. */
  hangTakes = false;
  async open() {}
  async put(e: JournalEntry) {
    this.jobs.set(e.jobId, e);
  }
  async remove(jobId: string) {
    this.jobs.delete(jobId);
  }
  async claimOrphans() {
    return { entries: this.orphans.splice(0), problems: [] };
  }
  async putPending(p: PendingRecovery) {
    this.pending.set(key(p.entry.roomName, p.entry.agentName, p.entry.metadata), p);
  }
  takePending(roomName: string, agentName: string, metadata: string) {
    if (this.hangTakes) return new Promise<undefined>(() => undefined);
    const k = key(roomName, agentName, metadata);
    const p = this.pending.get(k);
    this.pending.delete(k);
    return Promise.resolve(p && p.expiresAt >= this.now() ? p : undefined);
  }
  leaseHeld() {
    return true;
  }
  async owns(jobId: string) {
    return this.jobs.has(jobId);
  }
  async close() {}
}
const key = (room: string, agent: string, metadata: string) => `${room}|${agent}|${metadata}`;

/** The server's API, over rooms in memory: each room's users and agents by identity. */
function fakeServer(rooms: Record<string, { users: string[]; agents: string[] }>) {
  const calls: string[] = [];
  const api: RecoveryServerApi = {
    rooms: {
      listRooms: async (names?: string[]) => {
        calls.push('listRooms');
        return (names ?? []).filter((n) => n in rooms).map((name) => ({ name })) as never;
      },
      listParticipants: async (room: string) => {
        calls.push('listParticipants');
        const r = rooms[room] ?? { users: [], agents: [] };
        return [
          ...r.users.map((identity) => ({ identity, kind: 0 })),
          ...r.agents.map((identity) => ({ identity, kind: ParticipantInfo_Kind.AGENT })),
        ] as never;
      },
      removeParticipant: async (room: string, identity: string) => {
        calls.push(`removeParticipant ${identity}`);
        const r = rooms[room];
        if (r) r.agents = r.agents.filter((a) => a !== identity);
      },
    },
    dispatch: {
      createDispatch: async (room: string, agentName: string, o?: { metadata?: string }) => {
        calls.push(`createDispatch ${room} ${agentName} ${o?.metadata ?? ''}`);
        return {} as never;
      },
    },
  };
  return { api, calls, dispatches: () => calls.filter((c) => c.startsWith('createDispatch')) };
}

function recordingLogger() {
  const lines: { level: string; message: string; fields: LogFields }[] = [];
  const make = (base: LogFields): Logger => {
    const at =
      (level: string) =>
      (message: string, fields: LogFields = {}) =>
        lines.push({ level, message, fields: { ...base, ...fields } });
    return {
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      child: (fields) => make({ ...base, ...fields }),
    };
  };
  return { log: make({}), lines };
}

function fakeWorker() {
  const listeners = new Set<(e: WorkerEmitted) => void>();
  return {
    on(_type: '*', fn: (e: WorkerEmitted) => void) {
      listeners.add(fn);
      return () => void listeners.delete(fn);
    },
    jobRecord: () => undefined,
    endJob: () => undefined,
    emit(e: WorkerEmitted) {
      for (const fn of listeners) fn(e);
    },
  };
}

const running: Recoverer[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop();
});

function setUp(
  rooms: Record<string, { users: string[]; agents: string[] }>,
  kind: 'redis' | 'disk' = 'redis',
) {
  const clock = new SimulatedClock();
  const now = () => EPOCH + clock.now();
  const store = new MemoryStore(now, kind);
  const server = fakeServer(rooms);
  const { log, lines } = recordingLogger();
  const records: RecoveryRecord[] = [];
  const recoverer = createRecoverer({
    recovery: { redisUrl: undefined, maxAttempts: 2, leaseTtl: LEASE_TTL },
    agentName: 'support',
    wsUrl: 'ws://127.0.0.1:1',
    apiKey: 'key',
    apiSecret: 'secret',
    stateDir: undefined,
    stateDirProblem: undefined,
    log,
    emit: (r) => records.push(r),
    now,
    clock,
    store,
    serverApi: () => Promise.resolve(server.api),
  });
  running.push(recoverer);
  const worker = fakeWorker();
  recoverer.start(worker);
  /** Registered, then (unless `full`) its first status report: available. */
  const register = async (full = false) => {
    worker.emit({ type: 'registered', workerId: 'AW_here', serverVersion: '1.13.5' });
    await settle();
    if (!full) await reportStatus('available');
  };
  const reportStatus = async (status: 'available' | 'full') => {
    worker.emit({ type: 'statusReported', status, load: 0, jobCount: 0 });
    await settle();
  };
  /** Moves the simulated clock `ms` on, a second at a time, letting each step's work finish. */
  const advance = async (ms: number) => {
    for (let left = ms; left > 0; left -= 1_000) {
      clock.increment(Math.min(1_000, left));
      await settle();
    }
  };
  return { clock, store, server, lines, records, recoverer, register, reportStatus, advance };
}

const offer = (e: JournalEntry, jobId: string) =>
  ({ id: jobId, room: { name: e.roomName }, agentName: e.agentName, metadata: e.metadata }) as Job;

describe('the recoverer, under a simulated clock', () => {
  it("claims a gone worker's job once registered, removes its dead agent and dispatches it again with its metadata", async () => {
    const t = setUp({ 'room-1': { users: ['alice'], agents: ['agent-AJ_1'] } });
    const e = entry('AJ_1', 'room-1');
    t.store.orphans.push(e);
    await t.register();
    expect(t.server.calls).toEqual([
      'listRooms',
      'listParticipants',
      'removeParticipant agent-AJ_1',
      'createDispatch room-1 support {"lang":"fr"}',
    ]);
    expect(t.records).toContainEqual(
      expect.objectContaining({ type: 'jobRecoveryDispatched', jobId: 'AJ_1', attempt: 2 }),
    );
    // The offer of the new job finds the pending record: the old identity, attempt 2, checkpoint.
    const accepted = await t.recoverer.lookup(offer(e, 'AJ_2'));
    expect(accepted).toMatchObject({
      identity: 'agent-AJ_1',
      recovery: { previousJobId: 'AJ_1', attempt: 2, checkpoint: { turn: 4 } },
    });
    // Taken: no dispatch again after the check, and a second offer is a new job.
    await t.advance(REDISPATCH_CHECK + 5_000);
    expect(t.server.dispatches()).toHaveLength(1);
    expect(await t.recoverer.lookup(offer(e, 'AJ_3'))).toBeUndefined();
  });

  it("waits for the worker to report itself available before its first claim (a dispatch to a full worker's name is dropped)", async () => {
    const t = setUp({ 'room-7': { users: ['gus'], agents: [] } }, 'disk');
    t.store.orphans.push(entry('AJ_11', 'room-7'));
    await t.register(true);
    await t.reportStatus('full');
    await t.advance(2_000);
    expect(t.server.dispatches()).toEqual([]);
    await t.reportStatus('available');
    expect(t.server.dispatches()).toEqual(['createDispatch room-7 support {"lang":"fr"}']);
  });

  it('claims after 5 s all the same when the worker stays full (another worker may take it)', async () => {
    const t = setUp({ 'room-9': { users: ['ivy'], agents: [] } }, 'disk');
    t.store.orphans.push(entry('AJ_12', 'room-9'));
    await t.register(true);
    await t.advance(4_000);
    expect(t.server.dispatches()).toEqual([]);
    await t.advance(1_000);
    expect(t.server.dispatches()).toEqual(['createDispatch room-9 support {"lang":"fr"}']);
  });

  it('claims on its tick, every third of the lease, the jobs of a worker whose lease lapsed later', async () => {
    const t = setUp({ 'room-2': { users: ['bob'], agents: [] } });
    await t.register();
    expect(t.server.dispatches()).toEqual([]);
    t.store.orphans.push(entry('AJ_4', 'room-2'));
    await t.advance(LEASE_TTL / 3 - 1);
    expect(t.server.dispatches()).toEqual([]);
    await t.advance(1);
    expect(t.server.dispatches()).toEqual(['createDispatch room-2 support {"lang":"fr"}']);
  });

  it('dispatches again a re-dispatch that reached no worker that answered, at most MAX_DISPATCHES times, then gives up with a reason', async () => {
    const t = setUp({ 'room-3': { users: ['carol'], agents: ['agent-AJ_5'] } });
    t.store.orphans.push(entry('AJ_5', 'room-3'));
    await t.register();
    expect(t.server.dispatches()).toHaveLength(1);
    for (let n = 2; n <= MAX_DISPATCHES; n++) {
      await t.advance(REDISPATCH_CHECK - 1_000);
      expect(t.server.dispatches()).toHaveLength(n - 1);
      await t.advance(1_000);
      expect(t.server.dispatches()).toHaveLength(n);
      expect(
        t.lines.filter((l) =>
          l.message.startsWith('job dispatched again: the last dispatch reached no worker'),
        ),
      ).toHaveLength(n - 1);
    }
    // The last one's check: given up, stated, and nothing more however long the clock runs.
    await t.advance(REDISPATCH_CHECK);
    await t.advance(60_000);
    expect(t.server.dispatches()).toHaveLength(MAX_DISPATCHES);
    expect(t.records.filter((r) => r.type === 'jobRecoveryGivenUp')).toEqual([
      {
        type: 'jobRecoveryGivenUp',
        jobId: 'AJ_5',
        roomName: 'room-3',
        attempts: 1,
        reason: `no worker took the job in ${MAX_DISPATCHES} dispatches`,
      },
    ]);
    expect(t.lines).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        message: 'job recovery given up: no worker took it',
        fields: expect.objectContaining({ jobId: 'AJ_5', dispatches: MAX_DISPATCHES }),
      }),
    );
    // The pending record is gone: a late offer is a new job, not this recovery.
    expect(t.store.pending.size).toBe(0);
  });

  it('does not dispatch again when the agent is back in the room under its identity', async () => {
    const rooms = { 'room-4': { users: ['dave'], agents: ['agent-AJ_6'] } };
    const t = setUp(rooms);
    t.store.orphans.push(entry('AJ_6', 'room-4'));
    await t.register();
    // It joined with the old identity without taking the record (a worker that kept its job).
    rooms['room-4'].agents.push('agent-AJ_6');
    await t.advance(REDISPATCH_CHECK * 3);
    expect(t.server.dispatches()).toHaveLength(1);
    expect(t.records.some((r) => r.type === 'jobRecoveryGivenUp')).toBe(false);
  });

  it('answers an offer as a new job when the pending-recovery lookup takes longer than its budget', async () => {
    const t = setUp({});
    await t.register();
    t.store.hangTakes = true;
    let answered: unknown = 'not yet';
    void t.recoverer.lookup(offer(entry('AJ_7', 'room-5'), 'AJ_8')).then((a) => (answered = a));
    await t.advance(999);
    expect(answered).toBe('not yet');
    await t.advance(1);
    expect(answered).toBeUndefined();
  });

  it('schedules nothing more once stopped', async () => {
    const t = setUp({ 'room-6': { users: ['erin'], agents: [] } });
    t.store.orphans.push(entry('AJ_9', 'room-6'));
    await t.register();
    expect(t.server.dispatches()).toHaveLength(1);
    await t.recoverer.stop();
    t.store.orphans.push(entry('AJ_10', 'room-6'));
    await t.advance(REDISPATCH_CHECK * 4);
    expect(t.server.dispatches()).toHaveLength(1);
    expect(t.store.pending.size).toBe(1);
  });
});

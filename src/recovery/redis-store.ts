/**
 * The job journal in Redis, for a fleet: the Redis a multi-node LiveKit deployment already runs.
 * Client: `redis` (node-redis), Redis's own maintained client: promise API, typed commands, Lua
 * `EVAL`, a bounded reconnect strategy and `disableOfflineQueue` (a command while disconnected
 * fails at once instead of waiting in a queue, so a worker never hangs on a store that is gone).
 *
 * Keys, under `agentstate:<agent>:`: `owners` (a set of worker runs), `lease:<owner>` (a key with
 * a TTL that its worker renews every third of it; lapsed, the worker is gone), `jobs:<owner>` (a
 * hash: job id → entry) and `pending:<room>:<agent>:<hash>` (a re-dispatch on its way, with a TTL).
 * A claim is one Lua script: it takes a job out of a dead worker's hash only while that worker's
 * lease is absent, so of several survivors exactly one gets each job, and a worker that comes back
 * in time keeps its own.
 *
 * A lease lapses a whole `leaseTtl` after a worker stopped renewing it: that is how long a worker
 * may be frozen or cut off before its jobs are taken. A worker that *died* says so sooner: its
 * kernel closes its connections, and Redis drops its subscription to `alive:<owner>` at once.
 * Each worker holds that subscription on a connection of its own, and marks its lease
 * `presence:<pid>` once it has seen its own subscription counted (through a proxy or a cluster
 * that counts subscribers elsewhere it is not, and only the lease counts). A survivor that finds
 * such a lease with no subscriber on two scans PRESENCE_GRACE apart deletes it (a Lua script that
 * checks the count again) and claims the jobs: a reconnecting client has that long to subscribe
 * again, and a frozen worker (SIGSTOP, a pause) or one cut off by the network keeps its
 * connection open as far as Redis knows, so the lease decides for it as before.
 */
import { repeatEvery, systemClock, withDeadline, type Clock } from '../clock.ts';
import { DeadlineExceededError, errorMessage } from '../errors.ts';
import { createClient } from 'redis';
import {
  checkEntry,
  checkPending,
  JournalError,
  type JobStore,
  type JournalEntry,
  type JournalProblem,
  type PendingRecovery,
} from './journal.ts';

export interface RedisStoreOptions {
  url: string;
  agentName: string;
  owner: string;
  leaseTtl: number;
  /** How long `open()` waits for the first connection. Default 3000. */
  connectTimeout?: number;
  /** Called when the connection drops or comes back (the recoverer reports degradation). */
  onConnectionChange?: (up: boolean, error?: string) => void;
  now?: () => number;
  /** Schedules the lease's renewal and the connection's deadline. Default: the system clock. */
  clock?: Clock;
}

// Takes one job out of a dead worker's hash, only while its lease is absent.
const CLAIM = `
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then redis.call('HDEL', KEYS[1], ARGV[1]) end
return v`;
// A lease marked `presence:` whose worker has no subscriber on its channel: deleted when ARGV[2]
// is '1' (the absence confirmed). Returns the subscriber count, or -1 (no lease), -2 (unmarked).
const PRESENCE = `
local v = redis.call('GET', KEYS[1])
if not v then return -1 end
if string.sub(v, 1, 9) ~= 'presence:' then return -2 end
local n = redis.call('PUBSUB', 'NUMSUB', ARGV[1])[2]
if n == 0 and ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
return n`;
/**
 * How long a marked lease's subscriber must stay absent before its worker counts as dead: two
 * scans (the recoverer's, every second) at least this far apart.
 */
const PRESENCE_GRACE = 750;
/**
 * After this worker's own reconnection, how long it waits before it reads an absence as a death:
 * when Redis restarts, every worker reconnects, with a backoff of up to 2 s.
 */
const PRESENCE_SETTLE = 5_000;
/** How long each step of `close()` may take before it is given up. */
const CLOSE_TIMEOUT = 2_000;
// GET then DEL, atomically (GETDEL needs Redis 6.2).
const TAKE = `
local v = redis.call('GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) end
return v`;

export class RedisStore implements JobStore {
  readonly kind = 'redis';
  readonly #o: RedisStoreOptions;
  readonly #prefix: string;
  readonly #client: ReturnType<typeof createClient>;
  /** The connection that holds this worker's `alive:<owner>` subscription. */
  readonly #presence: ReturnType<typeof createClient>;
  #presenceSubscribed = false;
  /** Whether Redis counts our subscription: our lease is marked, and we read others' marks. */
  #presenceCounted = false;
  /** Since when (our `now`) each marked owner's subscriber has been seen absent. */
  readonly #absentSince = new Map<string, number>();
  /** When the main connection came back after a loss (never, for the first connection). */
  #reconnectedAt = Number.NEGATIVE_INFINITY;
  #connectedOnce = false;
  readonly #now: () => number;
  readonly #clock: Clock;
  #stopRenewing: (() => void) | undefined;
  #held = false;
  #closed = false;

  constructor(o: RedisStoreOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#clock = o.clock ?? systemClock;
    this.#prefix = `agentstate:${o.agentName}:`;
    this.#client = createClient({
      url: o.url,
      disableOfflineQueue: true,
      socket: {
        connectTimeout: o.connectTimeout ?? 3_000,
        reconnectStrategy: (retries: number) => Math.min(100 * 2 ** Math.min(retries, 5), 2_000),
      },
    });
    // Without a listener an error event would be thrown; every error is a reported state instead.
    this.#client.on('error', (err: unknown) => {
      o.onConnectionChange?.(false, errorMessage(err));
    });
    this.#client.on('ready', () => {
      if (this.#connectedOnce) this.#reconnectedAt = this.#now();
      this.#connectedOnce = true;
      this.#absentSince.clear();
      o.onConnectionChange?.(true);
    });
    this.#presence = this.#client.duplicate();
    // Its state is the main connection's to report; an error here only delays the fast path.
    this.#presence.on('error', () => undefined);
  }

  #key(...parts: string[]): string {
    return this.#prefix + parts.join(':');
  }

  get connected(): boolean {
    return this.#client.isReady;
  }

  async open(): Promise<void> {
    if (!this.#client.isReady) {
      const timeout = this.#o.connectTimeout ?? 3_000;
      // The client keeps reconnecting after a failed first attempt; the recoverer retries open().
      const connecting = this.#client.isOpen
        ? new Promise<void>((resolve) => this.#client.once('ready', () => resolve()))
        : this.#client.connect().then(() => undefined);
      connecting.catch(() => undefined);
      await withDeadline(connecting, timeout, 'connecting to Redis', this.#clock).catch(
        (err: unknown) => {
          if (!(err instanceof DeadlineExceededError)) throw err;
          throw new JournalError(`Redis not reachable within ${timeout} ms`, { cause: err });
        },
      );
    }
    await this.#announcePresence();
    await this.acquireLease();
    this.#stopRenewing ??= repeatEvery(
      this.#clock,
      Math.max(100, Math.floor(this.#o.leaseTtl / 3)),
      () => void this.#renew(),
    );
  }

  /**
   * Subscribes to `alive:<owner>` (once; the client subscribes again after a reconnect), then
   * checks that Redis counts it. Never rejects: without it only the lease counts.
   */
  async #announcePresence(): Promise<void> {
    const channel = this.#key('alive', this.#o.owner);
    try {
      if (!this.#presenceSubscribed) {
        const subscribing = (async () => {
          if (!this.#presence.isOpen) await this.#presence.connect();
          await this.#presence.subscribe(channel, () => undefined);
        })();
        subscribing.catch(() => undefined);
        await withDeadline(
          subscribing,
          this.#o.connectTimeout ?? 3_000,
          'subscribing',
          this.#clock,
        );
        this.#presenceSubscribed = true;
      }
      const reply = await this.#client.sendCommand<unknown[]>(['PUBSUB', 'NUMSUB', channel]);
      this.#presenceCounted = Number(reply[1]) >= 1;
    } catch {
      this.#presenceCounted = false;
    }
  }

  #leaseValue(): string {
    return this.#presenceCounted ? `presence:${process.pid}` : String(process.pid);
  }

  /** Takes (or takes again, after Redis came back empty) this worker's lease. */
  async acquireLease(): Promise<void> {
    const c = this.#client;
    await c.sAdd(this.#key('owners'), this.#o.owner);
    await c.set(this.#key('lease', this.#o.owner), this.#leaseValue(), {
      PX: this.#o.leaseTtl,
    });
    this.#held = true;
  }

  async #renew(): Promise<void> {
    if (!this.#held || !this.#client.isReady) return;
    // A subscription that failed at the start is tried again: until then only the lease counts.
    if (!this.#presenceCounted) await this.#announcePresence();
    try {
      const ok = await this.#client.set(this.#key('lease', this.#o.owner), this.#leaseValue(), {
        PX: this.#o.leaseTtl,
        XX: true,
      });
      // The key lapsed: others may have claimed our jobs (we were frozen or cut off).
      if (ok === null) this.#held = false;
    } catch {
      // Unreachable: reported by the connection events; the lease is renewed when it is back.
    }
  }

  leaseHeld(): boolean {
    return this.#held;
  }

  async put(entry: JournalEntry): Promise<void> {
    await this.#client.hSet(this.#key('jobs', this.#o.owner), entry.jobId, JSON.stringify(entry));
  }

  async remove(jobId: string): Promise<void> {
    await this.#client.hDel(this.#key('jobs', this.#o.owner), jobId);
  }

  async owns(jobId: string): Promise<boolean> {
    return (await this.#client.hExists(this.#key('jobs', this.#o.owner), jobId)) === 1;
  }

  async claimOrphans(): Promise<{ entries: JournalEntry[]; problems: JournalProblem[] }> {
    const c = this.#client;
    const entries: JournalEntry[] = [];
    const problems: JournalProblem[] = [];
    for (const owner of await c.sMembers(this.#key('owners'))) {
      if (owner === this.#o.owner) continue;
      const lease = this.#key('lease', owner);
      if ((await c.exists(lease)) === 1 && !(await this.#diedBeforeItsLease(owner))) continue;
      const jobs = this.#key('jobs', owner);
      const ids = await c.hKeys(jobs);
      for (const id of ids) {
        const v = await c.eval(CLAIM, { keys: [jobs, lease], arguments: [id] });
        if (typeof v !== 'string') continue;
        try {
          entries.push(checkEntry(JSON.parse(v)));
        } catch (err) {
          problems.push({ where: `${jobs} ${id}`, error: String(err) });
        }
      }
      // A dead worker with nothing left is forgotten; one that came back re-adds itself.
      if ((await c.hLen(jobs)) === 0 && (await c.exists(lease)) === 0) {
        await c.sRem(this.#key('owners'), owner);
      }
    }
    return { entries, problems };
  }

  /**
   * Whether `owner`, whose lease has not lapsed, is dead all the same: its lease is marked and
   * its subscription has been absent for PRESENCE_GRACE (its lease is then deleted, atomically
   * with a last look at the count). Only while this worker's own subscription is counted, and
   * PRESENCE_SETTLE after its own (re)connection.
   */
  async #diedBeforeItsLease(owner: string): Promise<boolean> {
    if (!this.#presenceCounted || this.#now() - this.#reconnectedAt < PRESENCE_SETTLE) return false;
    const lease = this.#key('lease', owner);
    const channel = this.#key('alive', owner);
    const since = this.#absentSince.get(owner);
    const confirm = since !== undefined && this.#now() - since >= PRESENCE_GRACE;
    const n = Number(
      await this.#client.eval(PRESENCE, {
        keys: [lease],
        arguments: [channel, confirm ? '1' : '0'],
      }),
    );
    if (n !== 0) {
      this.#absentSince.delete(owner);
      return n === -1;
    }
    if (confirm) {
      this.#absentSince.delete(owner);
      return true;
    }
    if (since === undefined) this.#absentSince.set(owner, this.#now());
    return false;
  }

  #pendingKey(roomName: string, agentName: string, metadata: string): string {
    return this.#key('pending', roomName, agentName, hash(metadata));
  }

  async putPending(p: PendingRecovery): Promise<void> {
    const { roomName, agentName, metadata } = p.entry;
    const ttl = Math.max(1, p.expiresAt - this.#now());
    await this.#client.set(this.#pendingKey(roomName, agentName, metadata), JSON.stringify(p), {
      PX: ttl,
    });
  }

  async takePending(
    roomName: string,
    agentName: string,
    metadata: string,
  ): Promise<PendingRecovery | undefined> {
    const key = this.#pendingKey(roomName, agentName, metadata);
    const v = await this.#client.eval(TAKE, { keys: [key], arguments: [] });
    if (typeof v !== 'string') return undefined;
    const p = checkPending(JSON.parse(v));
    return p.entry.metadata === metadata ? p : undefined;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopRenewing?.();
    // A Redis that takes the connection but never answers must not hold the worker's stop: each
    // step has CLOSE_TIMEOUT, and a connection that does not close in it is dropped.
    const bounded = (step: Promise<unknown>, what: string) =>
      withDeadline(step, CLOSE_TIMEOUT, what, this.#clock);
    if (this.#client.isReady && this.#held) {
      // A clean stop: nothing of ours is left to claim.
      await bounded(
        this.#client
          .multi()
          .del(this.#key('lease', this.#o.owner))
          .sRem(this.#key('owners'), this.#o.owner)
          .exec(),
        'releasing the lease',
      ).catch(() => undefined);
    }
    this.#held = false;
    if (this.#presence.isOpen) {
      await bounded(this.#presence.close(), 'closing').catch(() => this.#presence.destroy());
    }
    if (this.#client.isOpen) {
      await bounded(this.#client.close(), 'closing').catch(() => this.#client.destroy());
    } else {
      this.#client.destroy();
    }
  }
}

/** A short, stable name for a metadata string (FNV-1a, 32 bits; a collision is re-checked). */
function hash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16);
}

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
 */
import { errorMessage } from '../errors.ts';
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
}

// Takes one job out of a dead worker's hash, only while its lease is absent.
const CLAIM = `
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then redis.call('HDEL', KEYS[1], ARGV[1]) end
return v`;
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
  readonly #now: () => number;
  #renewal: NodeJS.Timeout | undefined;
  #held = false;
  #closed = false;

  constructor(o: RedisStoreOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
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
    this.#client.on('ready', () => o.onConnectionChange?.(true));
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
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new JournalError(`Redis not reachable within ${timeout} ms`)),
          timeout,
        );
      });
      // The client keeps reconnecting after a failed first attempt; the recoverer retries open().
      const connecting = this.#client.isOpen
        ? new Promise<void>((resolve) => this.#client.once('ready', () => resolve()))
        : this.#client.connect().then(() => undefined);
      connecting.catch(() => undefined);
      try {
        await Promise.race([connecting, deadline]);
      } finally {
        clearTimeout(timer);
      }
    }
    await this.acquireLease();
    this.#renewal ??= setInterval(
      () => void this.#renew(),
      Math.max(100, Math.floor(this.#o.leaseTtl / 3)),
    );
    this.#renewal.unref();
  }

  /** Takes (or takes again, after Redis came back empty) this worker's lease. */
  async acquireLease(): Promise<void> {
    const c = this.#client;
    await c.sAdd(this.#key('owners'), this.#o.owner);
    await c.set(this.#key('lease', this.#o.owner), String(process.pid), {
      PX: this.#o.leaseTtl,
    });
    this.#held = true;
  }

  async #renew(): Promise<void> {
    if (!this.#held || !this.#client.isReady) return;
    try {
      const ok = await this.#client.set(this.#key('lease', this.#o.owner), String(process.pid), {
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
      if ((await c.exists(lease)) === 1) continue;
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
    clearInterval(this.#renewal);
    if (this.#client.isReady && this.#held) {
      // A clean stop: nothing of ours is left to claim.
      await this.#client
        .multi()
        .del(this.#key('lease', this.#o.owner))
        .sRem(this.#key('owners'), this.#o.owner)
        .exec()
        .catch(() => undefined);
    }
    this.#held = false;
    if (this.#client.isOpen) {
      await this.#client.close().catch(() => this.#client.destroy());
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

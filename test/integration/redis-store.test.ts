/**
 * The Redis job journal (src/recovery/redis-store.ts) against a real redis-server, the other
 * worker a real process (test/fixtures/recovery/redis-lease-holder.ts) holding a 60 s lease:
 * - killed (SIGKILL), its job is claimed by a survivor within seconds, not when its lease
 *   lapses: its kernel closed its connections, and its presence subscription went with them;
 * - its connections cut by Redis (`CLIENT KILL`) while it lives, it reconnects within the grace
 *   and keeps its job and its lease;
 * - frozen (SIGSTOP), its connections stay open: its lease alone decides, and it keeps its job.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JournalEntry } from '../../src/recovery/journal.ts';
import { RedisStore } from '../../src/recovery/redis-store.ts';
import { startManagedProcess, type ManagedProcess } from '../support/managed-process.ts';
import { startRedisServer, type RedisServer } from '../support/redis-server.ts';

const FIXTURE = join(import.meta.dirname, '../fixtures/recovery/redis-lease-holder.ts');
const AGENT = 'holder-test';

let redis: RedisServer;
let admin: ReturnType<typeof createClient>;
const holders: ManagedProcess[] = [];
const stores: RedisStore[] = [];
beforeAll(async () => {
  redis = await startRedisServer({ name: 'redis-store-test' });
  admin = createClient({ url: `redis://${redis.address}` });
  admin.on('error', () => undefined);
  await admin.connect();
}, 30_000);
afterEach(async () => {
  for (const h of holders.splice(0)) {
    if (!h.hasExited()) process.kill(h.pid, 'SIGCONT');
    await h.kill();
  }
  for (const s of stores.splice(0)) await s.close();
  // A killed holder leaves its job and lease behind: the next test starts from an empty store.
  await admin.flushAll();
});
afterAll(async () => {
  await admin?.close();
  await redis?.stop();
});

function startHolder(owner: string): ManagedProcess {
  const h = startManagedProcess(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), FIXTURE, `redis://${redis.address}`, owner],
    { logFile: join(process.cwd(), 'test-artifacts', 'redis-store', `${owner}.log`) },
  );
  holders.push(h);
  return h;
}

async function until(pred: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function ready(h: ManagedProcess): Promise<void> {
  await until(
    () => h.hasExited() || readFileSync(h.logFile, 'utf8').includes('ready'),
    'the holder to be ready',
    20_000,
  );
  if (h.hasExited()) throw new Error(`the holder exited: ${readFileSync(h.logFile, 'utf8')}`);
}

async function survivor(): Promise<RedisStore> {
  const s = new RedisStore({
    url: `redis://${redis.address}`,
    agentName: AGENT,
    owner: `survivor-${stores.length}`,
    leaseTtl: 60_000,
  });
  stores.push(s);
  await s.open();
  return s;
}

/** Claims as the recoverer's tick does, every `everyMs`, for `forMs` or until it gets a job. */
async function scan(s: RedisStore, everyMs: number, forMs: number): Promise<JournalEntry[]> {
  const t0 = Date.now();
  while (Date.now() - t0 < forMs) {
    const { entries } = await s.claimOrphans();
    if (entries.length > 0) return entries;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return [];
}

const leaseOf = (owner: string) => admin.get(`agentstate:${AGENT}:lease:${owner}`);

describe('the Redis job journal', () => {
  it("claims a SIGKILLed worker's job within seconds, long before its 60 s lease lapses", async () => {
    const h = startHolder('killed');
    await ready(h);
    expect(await leaseOf('killed')).toMatch(/^presence:\d+$/);
    const s = await survivor();
    expect(await scan(s, 250, 1_500)).toEqual([]);
    const killedAt = Date.now();
    await h.kill();
    const claimed = await scan(s, 250, 10_000);
    expect(claimed.map((e) => e.jobId)).toEqual(['AJ_held']);
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    // Its lease went with it, and the job is claimed once.
    expect(await leaseOf('killed')).toBeNull();
    expect(await scan(s, 100, 500)).toEqual([]);
  }, 60_000);

  it('leaves its job to a live worker whose connections Redis cut: it reconnects within the grace', async () => {
    const h = startHolder('cut');
    await ready(h);
    const own = await admin.clientId();
    const theirs = (await admin.clientList()).filter((c) => Number(c.id) !== own);
    // Its journal connection and its presence subscription.
    expect(theirs.length).toBe(2);
    for (const c of theirs) await admin.sendCommand(['CLIENT', 'KILL', 'ID', String(c.id)]);
    // Looking at once and every 100 ms: its subscription is absent for a moment, then back.
    const s = await survivor();
    expect(await scan(s, 100, 3_000)).toEqual([]);
    expect(await leaseOf('cut')).toMatch(/^presence:\d+$/);
    const back = await admin.sendCommand(['PUBSUB', 'NUMSUB', `agentstate:${AGENT}:alive:cut`]);
    expect(back).toEqual([`agentstate:${AGENT}:alive:cut`, 1]);
  }, 60_000);

  it('leaves its job to a frozen worker: its connections stay open and its lease holds', async () => {
    const h = startHolder('frozen');
    await ready(h);
    const s = await survivor();
    process.kill(h.pid, 'SIGSTOP');
    expect(await scan(s, 250, 3_000)).toEqual([]);
    expect(await leaseOf('frozen')).toMatch(/^presence:\d+$/);
  }, 60_000);
});

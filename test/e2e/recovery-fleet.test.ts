/**
 * Job recovery for a fleet, with Redis (src/recovery/redis-store.ts): two livekit-server nodes
 * sharing a redis-server (test/support/livekit-cluster.ts), one worker on each, real users. The
 * workers' journal is in a Redis of its own, so that it can be stopped without stopping the
 * nodes. A worker's lease is short here (1.5 s), so a dead worker is seen as dead quickly.
 *
 * - A worker SIGKILLed: the other recovers each of its jobs, exactly once, same identity.
 * - A worker frozen (SIGSTOP, itself and its job processes) past its lease, recovered by the
 *   other, then thawed (SIGCONT): never two agents of one job in a room; its stale job ends with
 *   a reason.
 * - Redis stopped mid-run: jobs run on, the worker stays ready, the log says recovery is
 *   degraded, and it resumes when Redis is back.
 */
import { ParticipantInfo_Kind } from '@livekit/protocol';
import { RoomServiceClient } from 'livekit-server-sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAllAgents } from '../support/agent-process.ts';
import { keepLogOf, readyWorker, saveWorkerLogs } from '../support/cluster-workers.ts';
import type { FixtureWorker } from '../support/e2e-workers.ts';
import { startLiveKitCluster, type LiveKitCluster } from '../support/livekit-cluster.ts';
import type { LiveKitServer } from '../support/livekit-server.ts';
import { descendants } from '../support/process-table.ts';
import { joinRoom, leaveAllRooms } from '../support/participants.ts';
import { recoveryReport, ticks, untilTicks as until } from '../support/recovery-reports.ts';
import { startRedisServer, type RedisServer } from '../support/redis-server.ts';

const AGENT = 'test/fixtures/e2e/recovery-agent.ts';

let cluster: LiveKitCluster;
let a: LiveKitServer;
let b: LiveKitServer;
let store: RedisServer;

beforeAll(async () => {
  cluster = await startLiveKitCluster({ name: 'e2e-recovery-fleet' });
  [a, b] = cluster.nodes as [LiveKitServer, LiveKitServer];
  store = await startRedisServer({ name: 'recovery-store' });
}, 60_000);
afterEach(async () => {
  await leaveAllRooms();
  await killAllAgents();
  saveWorkerLogs();
});
afterAll(async () => {
  await killAllAgents();
  await store?.stop();
  await cluster?.stop();
});

async function fleetWorker(
  node: LiveKitServer,
  label: string,
  agentName: string,
  env: Record<string, string> = {},
): Promise<FixtureWorker> {
  const w = await readyWorker(node, label, agentName, {
    agentFile: AGENT,
    args: ['--port', '0'],
    env: {
      LIVEKIT_AGENT_NAME: agentName,
      AGENTSTATE_REDIS_URL: `redis://${store.address}`,
      E2E_LEASE_TTL_MS: '1500',
      ...env,
    },
  });
  keepLogOf(w);
  return w;
}

/** The reports here wait longer: a dead worker is found by the other, on another node. */
const report: typeof recoveryReport = (w, room, pred, timeoutMs = 30_000) =>
  recoveryReport(w, room, pred, timeoutMs);

/** A room on `node` with a dispatch of `agentName`, and a user in it. */
async function userIn(node: LiveKitServer, room: string, agentName: string) {
  const rooms = new RoomServiceClient(node.httpUrl, node.apiKey, node.apiSecret);
  await rooms.createRoom({ name: room, nodeId: node.nodeId });
  const user = await joinRoom(node, { room, identity: `user-${room}` });
  const { AgentDispatchClient } = await import('livekit-server-sdk');
  await new AgentDispatchClient(node.httpUrl, node.apiKey, node.apiSecret).createDispatch(
    room,
    agentName,
  );
  return user;
}

/** Polls every room's participants until stopped; the most agents seen at once per room. */
function watchAgents(node: LiveKitServer, rooms: string[]) {
  const client = new RoomServiceClient(node.httpUrl, node.apiKey, node.apiSecret);
  const most = new Map<string, number>(rooms.map((r) => [r, 0]));
  let on = true;
  const loop = (async () => {
    while (on) {
      for (const room of rooms) {
        const ps = await client.listParticipants(room).catch(() => []);
        const agents = ps.filter(
          (p) => (p.kind as number) === (ParticipantInfo_Kind.AGENT as number),
        ).length;
        most.set(room, Math.max(most.get(room) ?? 0, agents));
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    most,
    stop: async () => {
      on = false;
      await loop;
    },
  };
}

const dispatchedAgain = (ws: FixtureWorker[], jobId: string) =>
  ws
    .flatMap((w) => w.records)
    .filter((r) => r.message === 'job dispatched again' && r.jobId === jobId);

describe('job recovery across a fleet, with Redis', () => {
  it('recovers every job of a SIGKILLed worker on the other worker, exactly once, with the same identity', async () => {
    const agentName = 'rec-kill';
    const wa = await fleetWorker(a, 'fleet-a', agentName);
    const rooms = ['fleet-kill-1', 'fleet-kill-2'];
    const users = [];
    for (const room of rooms) users.push(await userIn(a, room, agentName));
    const got = users.map((u) => ticks(u.room));
    const firsts = await Promise.all(rooms.map((room) => report(wa, room)));
    const wb = await fleetWorker(b, 'fleet-b', agentName);
    await until(() => got.every((g) => g.length >= 3), 'ticks from every first attempt');
    const watch = watchAgents(a, rooms);
    const killedAt = Date.now();
    for (const p of descendants(wa.child.pid!)) process.kill(p.pid, 'SIGKILL');
    wa.child.kill('SIGKILL');
    const seconds = await Promise.all(
      rooms.map((room, i) => report(wb, room, (r) => r.jobId !== firsts[i]!.jobId)),
    );
    const backAfter = Date.now() - killedAt;
    for (const [i, second] of seconds.entries()) {
      expect(second.identity).toBe(firsts[i]!.identity);
      expect(second.recovery?.previousJobId).toBe(firsts[i]!.jobId);
      expect(second.recovery?.attempt).toBe(2);
      expect(dispatchedAgain([wa, wb], firsts[i]!.jobId)).toHaveLength(1);
    }
    await until(() => got.every((g) => g.some((t) => t.attempt === 2)), 'ticks again');
    await new Promise((r) => setTimeout(r, 1_000));
    await watch.stop();
    for (const room of rooms) expect(watch.most.get(room)).toBeLessThanOrEqual(1);
    // Each room has exactly one recovery report: nothing was dispatched twice.
    for (const room of rooms) {
      expect(
        wb.records.filter((r) => r.message === 'recovery job report' && r.room === room),
      ).toHaveLength(1);
    }
    console.log(`agents back ${backAfter} ms after the kill`);
  }, 120_000);

  it('never leaves two agents of one job in a room when a frozen worker thaws after another recovered its job', async () => {
    const agentName = 'rec-frozen';
    const wa = await fleetWorker(a, 'frozen-a', agentName);
    const room = 'fleet-frozen';
    const user = await userIn(a, room, agentName);
    const got = ticks(user.room);
    const first = await report(wa, room);
    const wb = await fleetWorker(b, 'frozen-b', agentName);
    await until(() => got.length >= 3, 'ticks from the first attempt');
    // The server picks a node by the load its workers last reported: frozen with a load of 0,
    // worker A would tie with the idle B and take about half of the recovery's dispatches.
    await wa.waitForLog(
      (r) => r.message === 'status reported' && Number(r.jobCount) >= 1 && Number(r.load) > 0,
      'worker A reporting its job in its load',
      10_000,
    );
    const watch = watchAgents(a, [room]);
    const tree = [wa.child.pid!, ...descendants(wa.child.pid!).map((p) => p.pid)];
    for (const pid of tree) process.kill(pid, 'SIGSTOP');
    let thawed = false;
    try {
      const second = await report(wb, room, (r) => r.jobId !== first.jobId);
      expect(second.identity).toBe(first.identity);
      await until(() => got.some((t) => t.attempt === 2), 'ticks from the recovered job');
    } finally {
      for (const pid of tree) process.kill(pid, 'SIGCONT');
      thawed = true;
    }
    expect(thawed).toBe(true);
    // The stale job ends, with a reason: its participant was removed by the recovering worker
    // (its room says PARTICIPANT_REMOVED, the server terminates the job), or this worker found
    // its job claimed by another, whichever it hears first after the thaw.
    const ended = await wa.waitForLog(
      (r) => r.message === 'job ended' && r.jobId === first.jobId,
      'the stale job ended',
      20_000,
    );
    const ending = wa.records.find((r) => r.message === 'job ending' && r.jobId === first.jobId);
    expect(String(ending?.reason ?? ended.reason)).toMatch(
      /terminated by the server|recovered by another worker|PARTICIPANT_REMOVED/,
    );
    // The thawed worker does not dispatch the job again: the other one owns it now.
    expect(dispatchedAgain([wa, wb], first.jobId)).toHaveLength(1);
    // The recovered agent keeps talking after the thaw.
    const before = got.filter((t) => t.attempt === 2).length;
    await until(
      () => got.filter((t) => t.attempt === 2).length >= before + 5,
      'ticks after the thaw',
    );
    await watch.stop();
    expect(watch.most.get(room)).toBeLessThanOrEqual(1);
    console.log(`stale job: ${String(ending?.reason ?? ended.reason)}`);
  }, 120_000);

  it('keeps jobs running and stays ready while Redis is down, says recovery is degraded, and resumes when it is back', async () => {
    const own = await startRedisServer({ name: 'recovery-outage' });
    const agentName = 'rec-outage';
    const w = await fleetWorker(a, 'outage-a', agentName, {
      AGENTSTATE_REDIS_URL: `redis://${own.address}`,
    });
    const user = await userIn(a, 'fleet-outage', agentName);
    const got = ticks(user.room);
    const first = await report(w, 'fleet-outage');
    await own.stop();
    await w.waitForLog(
      (r) => r.message.startsWith('recovery degraded'),
      'the degradation logged',
      15_000,
    );
    const during = got.length;
    await until(() => got.length >= during + 5, 'ticks while Redis is down');
    const port = Number(w.records.find((r) => r.message === 'health server listening')?.port ?? 0);
    const ready = await fetch(`http://127.0.0.1:${port}/ready`);
    expect(ready.status).toBe(200);
    const again = await startRedisServer({ name: 'recovery-outage-again', port: own.port });
    try {
      await w.waitForLog(
        (r) => r.message === 'recovery store is back: recovery resumed',
        'recovery resumed',
        15_000,
      );
      // The running job was journaled again into the empty Redis: a crash now is recovered.
      await new Promise((r) => setTimeout(r, 500));
      process.kill(first.pid, 'SIGKILL');
      const second = await report(w, 'fleet-outage', (r) => r.jobId !== first.jobId);
      expect(second.identity).toBe(first.identity);
      expect(second.recovery?.attempt).toBe(2);
    } finally {
      await again.stop();
    }
  }, 120_000);

  // Last in the file: it kills node A.
  it('recovers the jobs of a machine lost with its livekit-server node on the worker of the other node', async () => {
    const agentName = 'rec-machine';
    const wa = await fleetWorker(a, 'machine-a', agentName);
    const rooms = ['fleet-machine-1', 'fleet-machine-2'];
    const users = [];
    // The rooms live on node B; worker A, registered on node A, is the only one of its name yet.
    for (const room of rooms) users.push(await userIn(b, room, agentName));
    const got = users.map((u) => ticks(u.room));
    const firsts = await Promise.all(rooms.map((room) => report(wa, room)));
    const wb = await fleetWorker(b, 'machine-b', agentName);
    await until(() => got.every((g) => g.length >= 3), 'ticks from every first attempt');
    const watch = watchAgents(b, rooms);
    for (const p of descendants(wa.child.pid!)) process.kill(p.pid, 'SIGKILL');
    wa.child.kill('SIGKILL');
    await a.kill();
    const seconds = await Promise.all(
      rooms.map((room, i) => report(wb, room, (r) => r.jobId !== firsts[i]!.jobId)),
    );
    for (const [i, second] of seconds.entries()) {
      expect(second.identity).toBe(firsts[i]!.identity);
      expect(second.recovery?.attempt).toBe(2);
      expect(dispatchedAgain([wa, wb], firsts[i]!.jobId)).toHaveLength(1);
    }
    await until(() => got.every((g) => g.some((t) => t.attempt === 2)), 'ticks again');
    await watch.stop();
    for (const room of rooms) expect(watch.most.get(room)).toBeLessThanOrEqual(1);
  }, 120_000);
});

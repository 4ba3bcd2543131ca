/**
 * agentstate on a multi-node LiveKit deployment: two livekit-server nodes sharing a redis-server
 * (test/support/livekit-cluster.ts), real worker processes (the `agent` bin running
 * test/fixtures/e2e/agent.ts) registered on one node or the other, and real @livekit/rtc-node
 * participants.
 *
 * How the nodes route a job (livekit-server's agent service, over Redis): the room's node sends
 * the job to the node with the highest claim, the sum over its available workers of
 * max(0, 0.7 − load); that node picks one of its own workers. A room is pinned to a node with
 * `CreateRoom{nodeId}` where a test needs to know where it lives.
 *
 * Each test uses its own agent name, so its workers are the only candidates for its jobs, and
 * stops its workers at its end. The node-loss test, which crashes a node, has its own cluster.
 * The job split and the re-registration time are printed and written to
 * test-artifacts/multi-node.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAllAgents, type LogRecord } from '../support/agent-process.ts';
import {
  accepted,
  accepts,
  keepLogOf,
  readyWorker,
  roomOn,
  saveWorkerLogs,
  seesAgent,
  servedBy,
} from '../support/cluster-workers.ts';
import {
  answers,
  jobEnded,
  jobReport,
  startFixtureWorker,
  stopWorkers,
  type FixtureWorker,
} from '../support/e2e-workers.ts';
import { startLiveKitCluster, type LiveKitCluster } from '../support/livekit-cluster.ts';
import type { LiveKitServer } from '../support/livekit-server.ts';
import { descendants, isRunning, waitUntilGone } from '../support/process-table.ts';
import { leaveAllRooms, withDeadline } from '../support/participants.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

const ARTIFACT = 'test-artifacts/multi-node.json';
const measured: Record<string, unknown> = {};

let cluster: LiveKitCluster;
let a: LiveKitServer;
let b: LiveKitServer;

beforeAll(async () => {
  cluster = await startLiveKitCluster({ name: 'e2e-multi-node' });
  [a, b] = cluster.nodes as [LiveKitServer, LiveKitServer];
}, 30_000);
afterEach(async () => {
  await leaveAllRooms();
  await killAllAgents();
  saveWorkerLogs();
});
afterAll(async () => {
  try {
    await killAllAgents();
  } finally {
    await cluster?.stop();
    mkdirSync('test-artifacts', { recursive: true });
    writeFileSync(ARTIFACT, `${JSON.stringify(measured, null, 2)}\n`);
  }
});

function percentiles(values: number[]): { p50: number; max: number } {
  const sorted = [...values].sort((x, y) => x - y);
  return { p50: sorted[Math.floor(sorted.length / 2)] ?? 0, max: sorted.at(-1) ?? 0 };
}

describe('jobs routed between two livekit-server nodes', () => {
  it('runs an explicitly dispatched job of a room on node A on the only worker of that name, registered on node B', async () => {
    const worker = await readyWorker(b, 'cross-b', 'cross');
    const user = await roomOn(a, 'cross-explicit', 'cross');
    const report = await jobReport(worker, 'cross-explicit');
    expect(report.agentName).toBe('cross');
    const agent = await seesAgent(user, `cross-b-${report.jobId}`);
    expect(agent.attributes).toMatchObject({ 'lk.agent_name': 'cross', worker: 'cross-b' });
    await user.leave();
    expect(await jobEnded(worker, report.jobId)).toMatchObject({ outcome: 'success' });
    expect(await stopWorkers([worker])).toEqual([0]);
  });

  it('runs the automatic job of a room on node A on an unnamed worker registered only on node B', async () => {
    const worker = await readyWorker(b, 'auto-b', '');
    const user = await roomOn(a, 'cross-automatic', '');
    const report = await jobReport(worker, 'cross-automatic');
    expect(report.agentName).toBe('');
    await seesAgent(user, `auto-b-${report.jobId}`);
    // Stopped at once: an unnamed worker would be offered every later room's automatic job.
    await leaveAllRooms();
    expect(await stopWorkers([worker])).toEqual([0]);
  });

  it('serves every one of 20 dispatches with workers on both nodes, and both nodes take some', async () => {
    // Every job's process is replaced by a fresh one, which prewarms while the next jobs come.
    // On two shared cores a prewarm can outlast the default 10 s budget and fail its job; this
    // test is about routing, so it gives the processes more time.
    const fleet = { idleProcesses: 3, env: { E2E_INIT_TIMEOUT_MS: '30000' } };
    const [onA, onB] = await Promise.all([
      readyWorker(a, 'fleet-a', 'fleet', fleet),
      readyWorker(b, 'fleet-b', 'fleet', fleet),
    ]);
    const workerOf = (label: string): FixtureWorker => (label === 'fleet-a' ? onA : onB);
    const served: {
      room: string;
      roomNode: 'A' | 'B';
      workerNode: 'A' | 'B';
      toReportMs: number;
      toSeenMs: number;
    }[] = [];
    const startedAt = Date.now();
    const serve = async (i: number): Promise<void> => {
      // Rooms alternate between the nodes; each user joins through its room's node.
      const roomNode = i % 2 === 0 ? 'A' : 'B';
      const node = roomNode === 'A' ? a : b;
      const room = `fleet-${i}`;
      const t0 = Date.now();
      const user = await roomOn(node, room, 'fleet');
      const report = await servedBy([onA, onB], room, 40_000);
      const toReportMs = Date.now() - t0;
      const label = onA.records.includes(report) ? 'fleet-a' : 'fleet-b';
      await seesAgent(user, `${label}-${report.jobId}`);
      served.push({
        room,
        roomNode,
        workerNode: label === 'fleet-a' ? 'A' : 'B',
        toReportMs,
        toSeenMs: Date.now() - t0,
      });
      await user.leave();
      expect(await jobEnded(workerOf(label), report.jobId)).toMatchObject({ outcome: 'success' });
    };
    // Four rooms in flight at a time: several jobs running on each worker, few enough for two
    // shared cores (each job's process is replaced by a fresh one, which prewarms meanwhile).
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < 20) await serve(next++);
    };
    await Promise.all([lane(), lane(), lane(), lane()]);

    const count = (f: (s: (typeof served)[number]) => boolean) => served.filter(f).length;
    const split = {
      dispatches: 20,
      nodeA: count((s) => s.workerNode === 'A'),
      nodeB: count((s) => s.workerNode === 'B'),
      sameNodeAsRoom: count((s) => s.workerNode === s.roomNode),
      wallMs: Date.now() - startedAt,
      dispatchToJobConnectedMs: percentiles(served.map((s) => s.toReportMs)),
      dispatchToAgentSeenMs: percentiles(served.map((s) => s.toSeenMs)),
    };
    measured.split = split;
    console.log(`multi-node split of 20 dispatches: ${JSON.stringify(split)}`);
    expect(split.nodeA + split.nodeB).toBe(20);
    expect(split.nodeA).toBeGreaterThan(0);
    expect(split.nodeB).toBeGreaterThan(0);
    // Every job was offered once, to one worker: none answered on both nodes.
    const offeredA = new Set(answers(onA).map((r) => r.jobId));
    expect(answers(onB).filter((r) => offeredA.has(r.jobId))).toEqual([]);
    expect(await stopWorkers([onA, onB])).toEqual([0, 0]);
  }, 120_000);

  it("sends the jobs of a room on node A to node B's worker while node A's worker reports itself full", async () => {
    const full = await startFixtureWorker(a, 'full-a', {
      env: { E2E_AGENT_NAME: 'overflow', E2E_LOAD: '0.9' },
      idleProcesses: 0,
      args: ['--log-level', 'DEBUG'],
    });
    keepLogOf(full);
    await full.waitForLog(
      (r) => r.message === 'status reported' && r.status === 'full' && r.load === 0.9,
      'full-a reporting full at load 0.9',
    );
    const open = await readyWorker(b, 'open-b', 'overflow');
    for (const room of ['overflow-1', 'overflow-2']) {
      const user = await roomOn(a, room, 'overflow');
      const report = await jobReport(open, room);
      await seesAgent(user, `open-b-${report.jobId}`);
    }
    expect(answers(full)).toEqual([]);
    await leaveAllRooms();
    expect(await stopWorkers([full, open])).toEqual([0, 0]);
  });
});

describe('workers ending on a multi-node deployment', () => {
  it("on SIGTERM of node A's worker lets its running jobs finish, sends new jobs to node B's worker, and exits 0", async () => {
    const draining = await readyWorker(a, 'drain-a', 'drain', { idleProcesses: 2 });
    // Only node A has a worker named `drain` while both rooms are dispatched: both jobs can only
    // go to it. Node B's worker starts once they are accepted.
    const rooms = ['drain-1', 'drain-2'];
    const users = await Promise.all(rooms.map((room) => roomOn(a, room, 'drain')));
    await Promise.all(rooms.map((room) => accepts(draining, room)));
    const [spare, ...reports] = await Promise.all([
      readyWorker(b, 'drain-b', 'drain'),
      ...rooms.map((room) => jobReport(draining, room)),
    ]);
    const running = reports.map((r) => r.jobId);
    await Promise.all(reports.map((r, i) => seesAgent(users[i]!, `drain-a-${r.jobId}`)));

    const signalledAt = draining.records.length;
    draining.child.kill('SIGTERM');
    await draining.waitForLog(
      (r) =>
        draining.records.indexOf(r) >= signalledAt &&
        r.message === 'status reported' &&
        r.status === 'full',
      'a full status report after SIGTERM',
    );
    // A new job, from a room on node A itself, goes to node B's worker.
    const late = await roomOn(a, 'drain-3', 'drain');
    const next = await jobReport(spare, 'drain-3');
    await seesAgent(late, `drain-b-${next.jobId}`);
    expect(accepted(draining).sort()).toEqual([...running].sort());
    expect(answers(draining).map((r) => r.jobId)).not.toContain(next.jobId);

    // The draining worker's jobs run on until their users leave, then end cleanly.
    expect(draining.child.exitCode).toBeNull();
    await Promise.all(users.map((u) => u.leave()));
    for (const jobId of running) {
      expect(await jobEnded(draining, jobId)).toMatchObject({ outcome: 'success' });
    }
    expect(await withDeadline(draining.exited, 15_000, 'the drained worker exiting')).toBe(0);
    await late.leave();
    expect(await stopWorkers([spare])).toEqual([0]);
  }, 60_000);

  it('leaves no job process behind when a worker with a running job is SIGKILLed, and the next job goes to the surviving worker on the other node', async () => {
    const doomed = await readyWorker(a, 'crash-a', 'crash');
    const user = await roomOn(a, 'crash-1', 'crash');
    await accepts(doomed, 'crash-1');
    // Node B's worker starts only once node A's has taken the job.
    const [survivor, report] = await Promise.all([
      readyWorker(b, 'crash-b', 'crash'),
      jobReport(doomed, 'crash-1'),
    ]);
    await seesAgent(user, `crash-a-${report.jobId}`);

    // Everything the worker started: its job process, its warm spare, their helpers.
    const tree = descendants(doomed.child.pid!);
    expect(tree.map((p) => p.pid)).toContain(report.pid);
    // Two at least: the job's process and the warm spare that replaced it.
    expect(tree.length).toBeGreaterThanOrEqual(2);
    const killedAt = Date.now();
    doomed.child.kill('SIGKILL');
    expect(await withDeadline(doomed.exited, 5_000, 'the killed worker exiting')).toBe('SIGKILL');
    await waitUntilGone(
      tree.map((p) => p.pid),
      10_000,
    );
    expect(isRunning(report.pid)).toBe(false);
    measured.sigkill = { processesBelowWorker: tree.length, allGoneAfterMs: Date.now() - killedAt };

    const other = await roomOn(a, 'crash-2', 'crash');
    const next = await jobReport(survivor, 'crash-2');
    await seesAgent(other, `crash-b-${next.jobId}`);
    // The crashed worker's job was not handed to the survivor: the server re-dispatches nothing.
    expect(answers(survivor).map((r) => r.jobId)).toEqual([next.jobId]);
    await leaveAllRooms();
    expect(await stopWorkers([survivor])).toEqual([0]);
  }, 60_000);
});

describe('losing a livekit-server node', () => {
  let lost: LiveKitCluster;
  let proxy: TcpProxy;
  beforeAll(async () => {
    lost = await startLiveKitCluster({ name: 'e2e-node-loss' });
    const [first, second] = lost.nodes as [LiveKitServer, LiveKitServer];
    proxy = await startTcpProxy([{ port: first.ports.http }, { port: second.ports.http }]);
  }, 30_000);
  afterAll(async () => {
    await proxy?.close();
    await lost?.stop();
  });

  it('reconnects the worker whose node died through its URL, re-registers it on the other node, and sends it new jobs there', async () => {
    const [first, second] = lost.nodes as [LiveKitServer, LiveKitServer];
    // The worker knows only the load balancer's URL; the balancer sends it to the first node.
    const roamer = await readyWorker(
      { url: proxy.url, apiKey: first.apiKey, apiSecret: first.apiSecret },
      'roam',
      'roam',
    );
    expect(proxy.connections.map((c) => c.upstream)).toEqual([0]);
    const firstId = roamer.workerId;

    const reachedSecond = proxy.waitForConnection(1, 30_000);
    const killedAt = Date.now();
    await first.kill();
    const registeredAgain = await roamer.waitForLog(
      (r: LogRecord) => r.message === 'registered with the server' && r.workerId !== firstId,
      're-registration after the node loss',
      30_000,
    );
    const reRegistrationMs = Date.now() - killedAt;
    const reconnectedAfterMs = (await reachedSecond).openedAt - killedAt;
    measured.nodeLoss = { reRegistrationMs, reconnectedAfterMs };
    console.log(
      `multi-node node loss: worker reconnected after ${reconnectedAfterMs} ms, re-registered after ${reRegistrationMs} ms`,
    );
    expect(roamer.records).toContainEqual(
      expect.objectContaining({ message: 'server connection lost; will retry' }),
    );
    expect(proxy.connections.at(-1)?.upstream).toBe(1);

    // A new job, from a room on the surviving node, reaches the worker there.
    const user = await roomOn(second, 'roam-1', 'roam');
    const report = await jobReport(roamer, 'roam-1');
    await seesAgent(user, `roam-${report.jobId}`);
    expect(registeredAgain.workerId).not.toBe(firstId);
    await leaveAllRooms();
    expect(await stopWorkers([roamer])).toEqual([0]);
  }, 60_000);
});

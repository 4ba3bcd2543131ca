/**
 * Stopping a worker the way process managers and terminals do, on a real livekit-server with real
 * worker processes (the `agent` bin running test/fixtures/e2e/agent.ts, each in its own process
 * group) and real @livekit/rtc-node participants: a signal sent to the whole group (systemd's
 * `KillMode=control-group`, `kill -- -PGID`, `timeout`, a terminal's Ctrl-C or hang-up) drains
 * the worker and leaves its jobs running; a second one stops at once; the worker process exits
 * only once none of its job processes runs. And `agent dispatch` puts exactly one agent in a room.
 */
import { AgentDispatchClient, RoomAgentDispatch, RoomServiceClient } from 'livekit-server-sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAllAgents, startAgent } from '../support/agent-process.ts';
import { until } from '../support/cli-agent.ts';
import {
  jobEnded,
  jobReport,
  startFixtureWorker,
  stopWorkers,
  type FixtureWorker,
  type JobReport,
} from '../support/e2e-workers.ts';
import { startLiveKitServer, type LiveKitServer } from '../support/livekit-server.ts';
import { sleep } from '../support/managed-process.ts';
import { joinRoom, leaveAllRooms, withDeadline } from '../support/participants.ts';
import { descendants, isRunning, processEntry } from '../support/process-table.ts';

let server: LiveKitServer;
let dispatches: AgentDispatchClient;
let rooms: RoomServiceClient;
const workers: FixtureWorker[] = [];

beforeAll(async () => {
  // Rooms whose users left must not close under a job still starting (the burst has no users).
  server = await startLiveKitServer({ name: 'e2e-stop-signals', emptyTimeoutSeconds: 120 });
  dispatches = new AgentDispatchClient(server.httpUrl, server.apiKey, server.apiSecret);
  rooms = new RoomServiceClient(server.httpUrl, server.apiKey, server.apiSecret);
}, 60_000);
afterEach(() => leaveAllRooms());
afterAll(async () => {
  try {
    if (server) await stopWorkers(workers);
  } finally {
    await killAllAgents();
    await server?.stop();
  }
});

async function worker(label: string, args: string[] = [], idleProcesses = 1) {
  const w = await startFixtureWorker(server, label, {
    env: { E2E_AGENT_NAME: label },
    idleProcesses,
    detached: true,
    args,
  });
  workers.push(w);
  return w;
}

/** Signals the worker's whole process group, as systemd, `timeout` or a terminal does. */
const signalGroup = (w: FixtureWorker, signal: NodeJS.Signals) =>
  process.kill(-w.child.pid!, signal);

/**
 * Under the sources, a job process whose tsx cache is cold has esbuild's transform service as
 * a child (`esbuild --service`), which lives as long as that process: not a job process.
 */
const jobProcesses = (pid: number) =>
  descendants(pid).filter((p) => !p.command.includes('esbuild --service'));

/**
 * Follows a worker's job processes while it runs (every pid seen below it, polled every 25 ms),
 * and lists which of them are still in the process table at the moment the worker's own process
 * exits: read from /proc inside its `exit` listener, before anything else runs. A zombie counts
 * too: a child the worker did not wait for (reap) before it exited.
 */
function watchJobProcesses(w: FixtureWorker) {
  const seen = new Set<number>();
  const poll = () => {
    for (const p of jobProcesses(w.child.pid!)) seen.add(p.pid);
  };
  poll();
  const timer = setInterval(poll, 25);
  const aliveAtExit = new Promise<string[]>((done) => {
    w.child.once('exit', () => {
      clearInterval(timer);
      done(
        [...seen]
          .map((pid) => processEntry(pid))
          .filter((e) => e !== undefined)
          .map((e) => `${e.pid} (${e.state}) ${e.command}`),
      );
    });
  });
  return { seen, aliveAtExit, add: (pid: number) => seen.add(pid) };
}

/** Two users in two rooms, each with its job of `w` running. */
async function twoRunningJobs(w: FixtureWorker, prefix: string) {
  const names = [`${prefix}-1`, `${prefix}-2`];
  const users = await Promise.all(
    names.map((room) => joinRoom(server, { room, identity: `user-${room}` })),
  );
  await Promise.all(names.map((room) => dispatches.createDispatch(room, w.label)));
  const reports: JobReport[] = await Promise.all(names.map((room) => jobReport(w, room)));
  return { users, reports };
}

const drainingLog = (signal: string) => (r: { message: string }) =>
  r.message === `${signal} received: draining (send it again to stop at once)`;

describe('stop signals on a real server', () => {
  it.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)(
    'a group %s drains: both running jobs go on until their users leave, then the worker exits 0 after its job processes',
    async (signal) => {
      const w = await worker(`group-${signal.toLowerCase()}`, ['--drain-timeout', '60000']);
      const watch = watchJobProcesses(w);
      const { users, reports } = await twoRunningJobs(w, `group-${signal.toLowerCase()}`);
      for (const r of reports) watch.add(r.procPid);

      signalGroup(w, signal);
      await w.waitForLog(drainingLog(signal), `draining on ${signal}`);
      // The job processes got the signal too, and ignored it: both jobs still run.
      await sleep(1_000);
      for (const r of reports) expect(isRunning(r.procPid), `job process ${r.procPid}`).toBe(true);
      expect(w.records.filter((r) => r.message === 'job ended')).toEqual([]);
      expect(w.child.exitCode).toBeNull();

      await Promise.all(users.map((u) => u.leave()));
      for (const r of reports) {
        expect(await jobEnded(w, r.jobId)).toMatchObject({ outcome: 'success' });
      }
      expect(await withDeadline(w.exited, 20_000, 'the drained worker exiting')).toBe(0);
      expect(await watch.aliveAtExit).toEqual([]);
      expect(w.records).toContainEqual(
        expect.objectContaining({ message: 'worker stopped', reason: signal }),
      );
    },
    60_000,
  );

  it('a group SIGTERM sent twice stops at once: the jobs are killed, the worker exits after their processes', async () => {
    const w = await worker('group-twice', ['--drain-timeout', '60000']);
    const watch = watchJobProcesses(w);
    const { reports } = await twoRunningJobs(w, 'group-twice');
    for (const r of reports) watch.add(r.procPid);

    signalGroup(w, 'SIGTERM');
    await w.waitForLog(drainingLog('SIGTERM'), 'draining');
    signalGroup(w, 'SIGTERM');
    await w.waitForLog(
      (r) => r.message === 'SIGTERM received again: stopping now',
      'the second SIGTERM',
    );
    for (const r of reports) {
      expect(await jobEnded(w, r.jobId)).toMatchObject({
        outcome: 'failed',
        reason: 'worker stopped: SIGTERM',
      });
    }
    expect(await withDeadline(w.exited, 10_000, 'the stopped worker exiting')).toBe(0);
    expect(await watch.aliveAtExit).toEqual([]);
  }, 60_000);

  it('a group SIGTERM during a queued burst: every job runs, and no job process outlives the worker', async () => {
    const w = await worker('burst-drain', ['--load-threshold', 'Infinity', '--max-jobs', '10']);
    const watch = watchJobProcesses(w);
    const names = Array.from({ length: 6 }, (_, i) => `burst-drain-${i}`);
    await Promise.all(names.map((room) => dispatches.createDispatch(room, w.label)));
    // Every offer taken (an offer still to come once draining would be declined, rightly), and
    // most of the burst still waiting for processes to start: then the signal.
    // (A fresh worker: every offer it has seen is one of the burst's.)
    const accepted = () => w.records.filter((r) => r.message === 'job accepted').length;
    await until(() => accepted() === names.length, 'the six offers accepted', 20_000);
    const startedBefore = w.records.filter((r) => r.message === 'e2e job report').length;
    expect(startedBefore).toBeLessThan(names.length);
    signalGroup(w, 'SIGTERM');
    const reports = await Promise.all(names.map((room) => jobReport(w, room, 40_000)));
    for (const r of reports) watch.add(r.procPid);
    await Promise.all(names.map((room) => rooms.deleteRoom(room)));
    for (const r of reports) {
      expect(await jobEnded(w, r.jobId, 30_000)).toMatchObject({ outcome: 'success' });
    }
    expect(await withDeadline(w.exited, 30_000, 'the drained worker exiting')).toBe(0);
    expect(await watch.aliveAtExit).toEqual([]);
    // Six job processes and the warm one at least were watched.
    expect(watch.seen.size).toBeGreaterThanOrEqual(7);
  }, 90_000);
});

describe('agent dispatch on a real server', () => {
  /**
   * Who the server lists in `room` (no user joins these rooms: only agents), 4 s after the first
   * one joined.
   */
  async function agentsIn(room: string): Promise<string[]> {
    const list = async () => (await rooms.listParticipants(room)).map((p) => p.identity);
    await until(async () => (await list()).length > 0, `an agent in ${room}`, 20_000);
    // A second agent would join within a few hundred ms of the first: give it ample time.
    await sleep(4_000);
    return list();
  }

  async function dispatchCommand(room: string, metadata: string) {
    const cmd = startAgent(['dispatch', '--room', room, '--metadata', metadata], {
      LIVEKIT_URL: server.url,
      LIVEKIT_API_KEY: server.apiKey,
      LIVEKIT_API_SECRET: server.apiSecret,
    });
    expect(await withDeadline(cmd.exited, 20_000, 'agent dispatch exiting')).toBe(0);
    return cmd;
  }

  it('for the automatic agent: exactly one agent in the room, whether the room existed or not', async () => {
    const auto = await startFixtureWorker(server, 'auto', { env: { E2E_AGENT_NAME: '' } });
    workers.push(auto);

    // A room that does not exist yet: created with the agent as its only dispatch.
    const fresh = await dispatchCommand('dispatch-fresh', 'meta-fresh');
    expect(fresh.output()).toContain(
      'room dispatch-fresh created with the automatic agent as its only dispatch',
    );
    const freshJob = await jobReport(auto, 'dispatch-fresh');
    expect(freshJob.metadata).toBe('meta-fresh');
    expect(await agentsIn('dispatch-fresh')).toEqual([`auto-${freshJob.jobId}`]);

    // A room that exists without an agent (created for a name no worker has): one dispatch.
    await rooms.createRoom({
      name: 'dispatch-existing',
      agents: [new RoomAgentDispatch({ agentName: 'nobody-serves-this' })],
    });
    const existing = await dispatchCommand('dispatch-existing', 'meta-existing');
    expect(existing.output()).toContain(
      'dispatch of the automatic agent created in the existing room dispatch-existing',
    );
    const existingJob = await jobReport(auto, 'dispatch-existing');
    expect(existingJob.metadata).toBe('meta-existing');
    expect(await agentsIn('dispatch-existing')).toEqual([`auto-${existingJob.jobId}`]);
    // One job per room, and no other.
    const reportsFor = (room: string) =>
      auto.records.filter((r) => r.message === 'e2e job report' && r.room === room);
    expect(reportsFor('dispatch-fresh')).toHaveLength(1);
    expect(reportsFor('dispatch-existing')).toHaveLength(1);
  }, 90_000);
});

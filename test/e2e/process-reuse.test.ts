/**
 * Opt-in process reuse on a real livekit-server (the `agent` bin running
 * test/fixtures/e2e/agent.ts with `--jobs-per-process 3`): one job process joins three rooms in
 * turn through @livekit/rtc-node, each job ending cleanly when its user leaves; the fourth job
 * gets a fresh process, and the one that ran three is gone.
 */
import { AgentDispatchClient } from 'livekit-server-sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAllAgents } from '../support/agent-process.ts';
import {
  jobEnded,
  jobReport,
  startFixtureWorker,
  stopWorkers,
  type FixtureWorker,
} from '../support/e2e-workers.ts';
import { startLiveKitServer, type LiveKitServer } from '../support/livekit-server.ts';
import { joinRoom, leaveAllRooms } from '../support/participants.ts';
import { waitUntilGone } from '../support/process-table.ts';

let server: LiveKitServer;
let worker: FixtureWorker;

beforeAll(async () => {
  server = await startLiveKitServer({ name: 'e2e-reuse' });
  worker = await startFixtureWorker(server, 'reuse', {
    env: { E2E_AGENT_NAME: 'reuse' },
    idleProcesses: 1,
    // DEBUG: the worker logs each job's teardown (clean, RSS growth) and each reuse.
    args: ['--jobs-per-process', '3', '--log-level', 'DEBUG'],
  });
}, 60_000);
afterEach(() => leaveAllRooms());
afterAll(async () => {
  try {
    if (worker) await stopWorkers([worker]);
  } finally {
    await killAllAgents();
    await server?.stop();
  }
});

describe('process reuse on a real server', () => {
  it('runs three jobs in one process, each joining its room, then starts a fresh one', async () => {
    const dispatches = new AgentDispatchClient(server.httpUrl, server.apiKey, server.apiSecret);
    const pids: number[] = [];
    for (let i = 1; i <= 4; i++) {
      const room = `reuse-${i}`;
      const alice = await joinRoom(server, { room, identity: 'alice' });
      await dispatches.createDispatch(room, 'reuse');
      // Logged by the job once `ctx.connect()` resolved in its room.
      const report = await jobReport(worker, room, 30_000);
      pids.push(report.procPid);
      await alice.leave();
      expect(await jobEnded(worker, report.jobId, 30_000)).toMatchObject({ outcome: 'success' });
    }
    expect(pids.slice(0, 3)).toEqual([pids[0], pids[0], pids[0]]);
    expect(pids[3]).not.toBe(pids[0]);
    await waitUntilGone([pids[0]!], 15_000);
    // Each of the first two ends was clean and kept the process.
    const teardowns = worker.records.filter(
      (r) => r.message === 'job torn down' && r.pid === pids[0],
    );
    expect(teardowns.map((r) => r.clean)).toEqual([true, true, true]);
    const procId = teardowns[0]?.procId;
    expect(
      worker.records.filter(
        (r) => r.message === 'job process kept for another job' && r.procId === procId,
      ),
    ).toHaveLength(2);
    // How much a real room job grew the process (for the README's default bound).
    console.log('RSS growth after each job (MB):', teardowns.map((r) => r.rssGrowthMb).join(', '));
  }, 120_000);
});

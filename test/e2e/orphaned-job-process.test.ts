/**
 * A job process whose worker dies (SIGKILL: nothing of the worker's runs any more) while its
 * server is going away too ends itself: leaving a room with no server can wait forever, so an
 * orphan has a deadline of its own (the shutdown-callback budget plus a little), after which it
 * exits whatever it is waiting for. No job process outlives its job.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAllAgents } from '../support/agent-process.ts';
import { jobReport, startFixtureWorker } from '../support/e2e-workers.ts';
import { startLiveKitServer, type LiveKitServer } from '../support/livekit-server.ts';
import { joinRoom, leaveAllRooms } from '../support/participants.ts';

let server: LiveKitServer | undefined;
beforeAll(async () => {
  server = await startLiveKitServer({ name: 'orphans', targetLoad: 2 });
}, 60_000);
afterEach(async () => {
  await leaveAllRooms();
  await killAllAgents();
});
afterAll(() => server?.stop());

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('a job process whose worker and server are gone', () => {
  it('exits within its shutdown budget instead of waiting forever', async () => {
    const s = server!;
    // shutdownProcessTimeout 2 s → callbacks 1.6 s → the orphan's own deadline 6.6 s.
    const worker = await startFixtureWorker(s, 'orphan', {
      env: { E2E_SHUTDOWN_TIMEOUT_MS: '2000' },
    });
    await joinRoom(s, { room: 'orphan-room', identity: 'alice' });
    const report = await jobReport(worker, 'orphan-room');
    expect(alive(report.procPid)).toBe(true);

    worker.child.kill('SIGKILL');
    await s.stop(); // the room's server goes too: leaving the room can no longer complete
    server = undefined;
    const t0 = Date.now();
    while (alive(report.procPid) && Date.now() - t0 < 20_000) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(alive(report.procPid)).toBe(false);
    expect(Date.now() - t0).toBeLessThan(12_000);
  });
});

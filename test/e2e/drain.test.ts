/**
 * Draining on SIGTERM, on a real livekit-server with real worker processes (the `agent` bin running
 * test/fixtures/e2e/agent.ts) and real @livekit/rtc-node participants: a draining worker takes no
 * new job, lets its running job finish and exits 0; past `--drain-timeout` it ends the job itself.
 *
 * Jobs are dispatched explicitly (agent names `drain` and `drain-timeout`) so each test decides
 * which workers can be offered them.
 */
import { ParticipantKind, RoomEvent } from '@livekit/rtc-node';
import { AgentDispatchClient } from 'livekit-server-sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAllAgents } from '../support/agent-process.ts';
import {
  answers,
  jobEnded,
  jobReport,
  startFixtureWorker,
  stopWorkers,
  type FixtureWorker,
} from '../support/e2e-workers.ts';
import { startLiveKitServer, type LiveKitServer } from '../support/livekit-server.ts';
import {
  joinRoom,
  leaveAllRooms,
  waitForParticipant,
  withDeadline,
} from '../support/participants.ts';

let server: LiveKitServer;
let dispatches: AgentDispatchClient;
const workers: FixtureWorker[] = [];

beforeAll(async () => {
  server = await startLiveKitServer({ name: 'e2e-drain' });
  dispatches = new AgentDispatchClient(server.httpUrl, server.apiKey, server.apiSecret);
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

async function worker(label: string, agentName: string, args: string[] = []) {
  const w = await startFixtureWorker(server, label, { env: { E2E_AGENT_NAME: agentName }, args });
  workers.push(w);
  return w;
}

describe('draining on a real server', () => {
  it('on SIGTERM takes no new job, lets the running job finish, then exits 0', async () => {
    // DEBUG shows the status it reports to the server.
    const draining = await worker('draining', 'drain', ['--log-level', 'DEBUG']);
    const alice = await joinRoom(server, { room: 'drain-1', identity: 'alice' });
    await dispatches.createDispatch('drain-1', 'drain');
    const running = await jobReport(draining, 'drain-1');
    // Only now a second worker of the same name: the first job could only go to `draining`.
    const spare = await worker('spare', 'drain');

    draining.child.kill('SIGTERM');
    const drainAt = draining.records.length;
    await draining.waitForLog(
      (r) => String(r.message).startsWith('SIGTERM received: draining'),
      'drain',
    );
    // It tells the server at once that it is full…
    await draining.waitForLog(
      (r) =>
        draining.records.indexOf(r) >= drainAt &&
        r.message === 'status reported' &&
        r.status === 'full',
      'a full status report after SIGTERM',
    );

    await joinRoom(server, { room: 'drain-2', identity: 'bob' });
    await dispatches.createDispatch('drain-2', 'drain');
    const next = await jobReport(spare, 'drain-2');
    // …so the new job went elsewhere: the draining worker was not even offered it.
    expect(
      answers(draining)
        .filter((r) => r.message === 'job accepted')
        .map((r) => r.jobId),
    ).toEqual([running.jobId]);
    expect(answers(draining).map((r) => r.jobId)).not.toContain(next.jobId);

    // Its running job is untouched until its participant leaves.
    expect(draining.child.exitCode).toBeNull();
    expect(draining.records).not.toContainEqual(
      expect.objectContaining({ message: 'job ended', jobId: running.jobId }),
    );
    await alice.leave();
    const ended = await jobEnded(draining, running.jobId);
    // Three signals race: the agent sees alice go, the now agent-only room closes, or the server
    // terminates the job as the room closes. Each is a clean end.
    expect(ended).toMatchObject({ outcome: 'success' });
    expect(ended.reason).toMatch(
      /^(every participant left|room disconnected \(ROOM_CLOSED\)|terminated by the server)$/,
    );
    expect(await withDeadline(draining.exited, 15_000, 'the drained worker exiting')).toBe(0);
    expect(draining.records).toContainEqual(expect.objectContaining({ message: 'worker stopped' }));
  });

  it('past --drain-timeout ends the running job, reports it, and exits 0', async () => {
    const impatient = await worker('impatient', 'drain-timeout', ['--drain-timeout', '1000']);
    const alice = await joinRoom(server, { room: 'drain-timeout-1', identity: 'alice' });
    await dispatches.createDispatch('drain-timeout-1', 'drain-timeout');
    const running = await jobReport(impatient, 'drain-timeout-1');
    const agentIdentity = `impatient-${running.jobId}`;
    await waitForParticipant(alice.room, {
      identity: agentIdentity,
      kind: ParticipantKind.AGENT,
      timeoutMs: 20_000,
    });
    const agentLeft = new Promise<void>((done) => {
      alice.room.on(RoomEvent.ParticipantDisconnected, (p) => {
        if (p.identity === agentIdentity) done();
      });
    });

    const signalledAt = Date.now();
    impatient.child.kill('SIGTERM');
    const ended = await jobEnded(impatient, running.jobId);
    expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(1_000);
    expect(ended).toMatchObject({ outcome: 'success', reason: 'drain timeout' });
    // The job itself saw that reason (its shutdown callbacks ran) and its agent left the room,
    // while alice stayed.
    expect(impatient.records).toContainEqual(
      expect.objectContaining({
        message: 'e2e job shutdown',
        jobId: running.jobId,
        reason: 'drain timeout',
      }),
    );
    await withDeadline(agentLeft, 15_000, 'the agent leaving the room');
    expect(await withDeadline(impatient.exited, 15_000, 'the worker exiting')).toBe(0);
  });
});

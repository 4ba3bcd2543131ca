/**
 * Who gets a job, on a real livekit-server with real worker processes (the `agent` bin running
 * test/fixtures/e2e/agent.ts) and real @livekit/rtc-node participants: explicit dispatch by agent
 * name, a `requestFnc` that rejects, a worker reporting load at its threshold, and the prewarmed
 * `userdata` a job sees.
 *
 * Four workers share the server: `support` (agentName `support`), `reject` (rejects every job,
 * load 0), `accept` (accepts, load 0.6: below the threshold, but less attractive than `reject` to
 * the server's load-weighted choice) and `loaded` (load 0.9, at or above every threshold).
 */
import { ParticipantKind } from '@livekit/rtc-node';
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
import { joinRoom, leaveAllRooms, waitForParticipant } from '../support/participants.ts';

let server: LiveKitServer;
let support: FixtureWorker;
let rejecter: FixtureWorker;
let accepter: FixtureWorker;
let loaded: FixtureWorker;

beforeAll(async () => {
  server = await startLiveKitServer({ name: 'e2e-dispatch' });
  [support, rejecter, accepter, loaded] = await Promise.all([
    startFixtureWorker(server, 'support', { env: { E2E_AGENT_NAME: 'support' } }),
    startFixtureWorker(server, 'reject', { env: { E2E_REQUEST: 'reject' }, idleProcesses: 0 }),
    startFixtureWorker(server, 'accept', { env: { E2E_LOAD: '0.6' } }),
    // DEBUG shows the status it reports to the server.
    startFixtureWorker(server, 'loaded', {
      env: { E2E_LOAD: '0.9' },
      idleProcesses: 0,
      args: ['--log-level', 'DEBUG'],
    }),
  ]);
}, 60_000);
afterEach(() => leaveAllRooms());
afterAll(async () => {
  try {
    if (server) await stopWorkers([support, rejecter, accepter, loaded].filter(Boolean));
  } finally {
    await killAllAgents();
    await server?.stop();
  }
});

describe('dispatch on a real server', () => {
  it('runs an explicitly dispatched job on the worker registered with that agent name, and ends it when the dispatch is deleted', async () => {
    const room = 'explicit-1';
    const alice = await joinRoom(server, { room, identity: 'alice' });
    const client = new AgentDispatchClient(server.httpUrl, server.apiKey, server.apiSecret);
    const dispatch = await client.createDispatch(room, 'support', { metadata: '{"ticket":42}' });

    const report = await jobReport(support, room);
    expect(report).toMatchObject({ agentName: 'support', metadata: '{"ticket":42}' });
    const agent = await waitForParticipant(alice.room, {
      identity: `support-${report.jobId}`,
      timeoutMs: 20_000,
    });
    expect(agent.kind).toBe(ParticipantKind.AGENT);
    expect(agent.attributes).toMatchObject({ 'lk.agent_name': 'support', worker: 'support' });
    // The named job was offered to the named worker only.
    for (const other of [rejecter, accepter, loaded]) {
      expect(answers(other).map((r) => r.jobId)).not.toContain(report.jobId);
    }
    expect((await client.listDispatch(room)).map((d) => d.id)).toContain(dispatch.id);

    // Deleting the dispatch ends its job through the server, while alice is still there. (The
    // server sends the termination only once the room has linked the job, up to ~5 s after the
    // assignment: SERVER-FACTS.md.)
    await client.deleteDispatch(dispatch.id, room);
    expect(await jobEnded(support, report.jobId)).toMatchObject({
      outcome: 'success',
      reason: 'terminated by the server',
    });
  });

  it('gives a worker with an agent name no automatic job when a participant joins a new room', async () => {
    const room = 'automatic-1';
    const offeredBefore = answers(support).length;
    const alice = await joinRoom(server, { room, identity: 'alice' });

    // The room's automatic (unnamed) job goes to an unnamed worker…
    const report = await jobReport(accepter, room);
    expect(report.agentName).toBe('');
    // …and by the time alice sees that agent (~3 s after it joined), the named worker has still
    // been offered nothing: the server creates a room's jobs when the room is created.
    await waitForParticipant(alice.room, { identity: `accept-${report.jobId}`, timeoutMs: 20_000 });
    expect(answers(support)).toHaveLength(offeredBefore);
    expect(support.records.filter((r) => r.room === room)).toEqual([]);
  });

  it('offers a job the first worker rejects to a second worker, which runs it', async () => {
    // The server asks workers in a random order weighted by 1 − load (livekit-server's worker selection), so
    // `reject` (load 0) comes first about 3 times in 4 against `accept` (load 0.6): try rooms
    // until it did.
    for (let attempt = 1; attempt <= 6; attempt++) {
      const room = `reject-${attempt}`;
      const alice = await joinRoom(server, { room, identity: 'alice' });
      const report = await jobReport(accepter, room);
      const declined = rejecter.records.find(
        (r) => r.message === 'job declined' && r.jobId === report.jobId,
      );
      if (declined === undefined) {
        await alice.leave();
        continue;
      }
      expect(declined.reason).toBe('reject rejects every job');
      expect(accepter.records).toContainEqual(
        expect.objectContaining({ message: 'job accepted', jobId: report.jobId }),
      );
      const agent = await waitForParticipant(alice.room, {
        kind: ParticipantKind.AGENT,
        timeoutMs: 20_000,
      });
      expect(agent.identity).toBe(`accept-${report.jobId}`);
      return;
    }
    expect.fail('in 6 rooms the server never asked the rejecting worker first');
  });

  it('dispatches nothing to a worker whose load is at its threshold, and everything to one below', async () => {
    // The loaded worker tells the server it is full, at load 0.9. (Entering `registered` it
    // first reports `available` and then `full` in the same step; the server's own 0.7 gate
    // covers that instant.)
    await loaded.waitForLog(
      (r) => r.message === 'status reported' && r.status === 'full' && r.load === 0.9,
      'a full status report at load 0.9',
    );

    const rooms = ['load-1', 'load-2'];
    for (const room of rooms) await joinRoom(server, { room, identity: 'alice' });
    for (const room of rooms) await jobReport(accepter, room);
    // Not one offer reached it, in this test or any earlier one in this file.
    expect(answers(loaded)).toEqual([]);
  });

  it("hands the job the userdata its process's prewarmFnc set", async () => {
    const room = 'prewarm-1';
    await joinRoom(server, { room, identity: 'alice' });
    const report = await jobReport(accepter, room);
    expect(report.userdata).toEqual({ prewarmedBy: 'accept', prewarmedInPid: report.pid });
    expect(report.procPid).toBe(report.pid);
  });

  it("connects without the native side's log records flooding the job's JavaScript", async () => {
    // rtc-node on its own has every native record down to TRACE sent to JavaScript as an event
    // (~1,450 per connect); a job process starts the native runtime with that capture off.
    const room = 'native-logs-1';
    await joinRoom(server, { room, identity: 'alice' });
    const report = await jobReport(accepter, room);
    expect(report.nativeLogEvents).toBe(0);
  });
});

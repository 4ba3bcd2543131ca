/**
 * PARTICIPANT jobs (`WorkerType.PARTICIPANT`, the protocol's `JT_PARTICIPANT`) on a real
 * livekit-server, with real worker processes (the `agent` bin running test/fixtures/e2e/agent.ts)
 * and real @livekit/rtc-node participants.
 *
 * Two workers share the server: `part` (automatic dispatch) and `concierge` (agentName
 * `concierge`), both PARTICIPANT workers.
 */
import { ParticipantKind } from '@livekit/rtc-node';
import { AgentDispatchClient } from 'livekit-server-sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAllAgents } from '../support/agent-process.ts';
import {
  jobEnded,
  startFixtureWorker,
  stopWorkers,
  type FixtureWorker,
  type JobReport,
} from '../support/e2e-workers.ts';
import { startLiveKitServer, type LiveKitServer } from '../support/livekit-server.ts';
import { joinRoom, leaveAllRooms, waitForParticipant } from '../support/participants.ts';

/** `JobType.JT_PARTICIPANT` in @livekit/protocol. */
const JT_PARTICIPANT = 2;

let server: LiveKitServer;
let part: FixtureWorker;
let concierge: FixtureWorker;

beforeAll(async () => {
  server = await startLiveKitServer({ name: 'e2e-participant' });
  [part, concierge] = await Promise.all([
    startFixtureWorker(server, 'part', { env: { E2E_WORKER_TYPE: 'participant' } }),
    startFixtureWorker(server, 'concierge', {
      env: { E2E_WORKER_TYPE: 'participant', E2E_AGENT_NAME: 'concierge' },
    }),
  ]);
}, 60_000);
afterEach(() => leaveAllRooms());
afterAll(async () => {
  try {
    if (server) await stopWorkers([part, concierge].filter(Boolean));
  } finally {
    await killAllAgents();
    await server?.stop();
  }
});

function reportFor(worker: FixtureWorker, room: string, participant: string): Promise<JobReport> {
  return worker.waitForLog(
    (r) => r.message === 'e2e job report' && r.room === room && r.participant === participant,
    `a job report for participant ${participant} in ${room}`,
  ) as Promise<JobReport>;
}

describe('PARTICIPANT workers on a real server', () => {
  it('starts one job per joining non-agent participant, with ctx.participant the live participant', async () => {
    const room = 'participants-1';
    const alice = await joinRoom(server, { room, identity: 'alice', attributes: { tier: 'gold' } });
    const bob = await joinRoom(server, { room, identity: 'bob' });

    const [forAlice, forBob] = await Promise.all([
      reportFor(part, room, 'alice'),
      reportFor(part, room, 'bob'),
    ]);
    expect(forAlice.jobId).not.toBe(forBob.jobId);
    expect(forAlice).toMatchObject({
      jobType: JT_PARTICIPANT,
      participantLive: true,
      participantAttributes: { tier: 'gold' },
    });
    expect(forBob).toMatchObject({ jobType: JT_PARTICIPANT, participantLive: true });

    // Alice sees both agents join (~3 s after they did, so by now the server has offered every
    // job their joins could have started): agents are not participants that get a job.
    for (const report of [forAlice, forBob]) {
      const agent = await waitForParticipant(alice.room, {
        identity: `part-${report.jobId}`,
        timeoutMs: 20_000,
      });
      expect(agent.kind).toBe(ParticipantKind.AGENT);
    }
    const inRoom = part.records.filter((r) => r.message === 'e2e job report' && r.room === room);
    expect(inRoom.map((r) => r.participant).sort()).toEqual(['alice', 'bob']);
    const accepted = part.records.filter(
      (r) => r.message === 'job accepted' && r.roomName === room,
    );
    expect(accepted).toHaveLength(2);

    // A job ends when its participant leaves; the other participant's job keeps running.
    await alice.leave();
    expect(await jobEnded(part, forAlice.jobId)).toMatchObject({
      outcome: 'success',
      reason: 'participant left',
    });
    expect(part.records).not.toContainEqual(
      expect.objectContaining({ message: 'job ended', jobId: forBob.jobId }),
    );
    // Bob is the last one out: his leaving races the room closing and the server's termination
    // (test/e2e/SERVER-FACTS.md), and each of them ends the job successfully.
    await bob.leave();
    const bobEnd = await jobEnded(part, forBob.jobId);
    expect(bobEnd.outcome).toBe('success');
    expect(bobEnd.reason).toMatch(/^(participant left|terminated by the server|room disconnected)/);
  });

  it('starts a job for each participant already in the room when a named agent is dispatched to it', async () => {
    const room = 'participants-dispatch-1';
    await joinRoom(server, { room, identity: 'carol' });
    await joinRoom(server, { room, identity: 'dave' });
    // The automatic worker takes their joins; the named one only runs its dispatches.
    await reportFor(part, room, 'carol');
    await reportFor(part, room, 'dave');
    expect(
      concierge.records.filter((r) => r.message === 'e2e job report' && r.room === room),
    ).toEqual([]);

    const dispatches = new AgentDispatchClient(server.httpUrl, server.apiKey, server.apiSecret);
    await dispatches.createDispatch(room, 'concierge', { metadata: 'vip' });
    const report = await reportFor(concierge, room, 'carol');
    expect(report).toMatchObject({
      jobType: JT_PARTICIPANT,
      agentName: 'concierge',
      metadata: 'vip',
      participantLive: true,
    });
    // One dispatch, a job for every participant: it cannot re-create the job of one of them alone
    // (why job recovery declines PARTICIPANT jobs, test/e2e/SERVER-FACTS.md).
    expect(await reportFor(concierge, room, 'dave')).toMatchObject({ jobType: JT_PARTICIPANT });
  });
});

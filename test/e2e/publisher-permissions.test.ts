/**
 * PUBLISHER jobs and the agent permissions a worker registers with, on a real livekit-server with
 * real worker processes (the `agent` bin running test/fixtures/e2e/agent.ts) and real
 * @livekit/rtc-node participants. The server is what enforces permissions (through the job
 * token), so what it reports about the agents (`RoomService.listParticipants`) and what the other
 * participants see are the evidence.
 *
 * Three workers share the server: `pub` (PUBLISHER, automatic; its agents publish an audio track),
 * `hidden` (agentName `hidden`, `hidden: true`) and `muted` (agentName `muted`,
 * `canPublish: false`; its agents try to publish an audio track).
 */
import { ParticipantKind, RoomEvent } from '@livekit/rtc-node';
import { AgentDispatchClient, RoomServiceClient } from 'livekit-server-sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAllAgents, type LogRecord } from '../support/agent-process.ts';
import {
  answers,
  jobEnded,
  jobReport,
  startFixtureWorker,
  stopWorkers,
  type FixtureWorker,
  type JobReport,
} from '../support/e2e-workers.ts';
import { startLiveKitServer, type LiveKitServer } from '../support/livekit-server.ts';
import {
  joinRoom,
  leaveAllRooms,
  publishSilentAudio,
  waitForParticipant,
} from '../support/participants.ts';

let server: LiveKitServer;
let pub: FixtureWorker;
let hidden: FixtureWorker;
let muted: FixtureWorker;
let dispatches: AgentDispatchClient;
let rooms: RoomServiceClient;

beforeAll(async () => {
  server = await startLiveKitServer({ name: 'e2e-publisher-permissions' });
  dispatches = new AgentDispatchClient(server.httpUrl, server.apiKey, server.apiSecret);
  rooms = new RoomServiceClient(server.httpUrl, server.apiKey, server.apiSecret);
  [pub, hidden, muted] = await Promise.all([
    startFixtureWorker(server, 'pub', {
      env: { E2E_WORKER_TYPE: 'publisher', E2E_TRY_PUBLISH: '1' },
    }),
    startFixtureWorker(server, 'hidden', { env: { E2E_AGENT_NAME: 'hidden', E2E_HIDDEN: '1' } }),
    startFixtureWorker(server, 'muted', {
      env: { E2E_AGENT_NAME: 'muted', E2E_CAN_PUBLISH: '0', E2E_TRY_PUBLISH: '1' },
    }),
  ]);
}, 60_000);
afterEach(() => leaveAllRooms());
afterAll(async () => {
  try {
    if (server) await stopWorkers([pub, hidden, muted].filter(Boolean));
  } finally {
    await killAllAgents();
    await server?.stop();
  }
});

function reportFor(worker: FixtureWorker, room: string, publisher: string): Promise<JobReport> {
  return worker.waitForLog(
    (r) => r.message === 'e2e job report' && r.room === room && r.publisher === publisher,
    `a job report for publisher ${publisher} in ${room}`,
  ) as Promise<JobReport>;
}

function publishAttempt(worker: FixtureWorker, jobId: string): Promise<LogRecord> {
  return worker.waitForLog(
    (r) => r.message === 'e2e publish attempt' && r.jobId === jobId,
    `the publish attempt of job ${jobId}`,
  );
}

describe('PUBLISHER workers on a real server', () => {
  it('starts one job per publishing participant, with ctx.publisher set to that participant', async () => {
    const room = 'publishers-1';
    const alice = await joinRoom(server, { room, identity: 'alice' });
    const bob = await joinRoom(server, { room, identity: 'bob' });
    const carol = await joinRoom(server, { room, identity: 'carol' }); // never publishes
    await publishSilentAudio(alice);
    await publishSilentAudio(bob);

    const [forAlice, forBob] = await Promise.all([
      reportFor(pub, room, 'alice'),
      reportFor(pub, room, 'bob'),
    ]);
    expect(forAlice.jobId).not.toBe(forBob.jobId);
    // Only a participant's first publication starts a job.
    await publishSilentAudio(alice);
    // Carol sees both agents (~3 s after they joined, so by now every job the participants'
    // joins and publications triggered has been offered), and there are exactly two: joining
    // without publishing starts nothing, and neither does a second publication.
    for (const report of [forAlice, forBob]) {
      const agent = await waitForParticipant(carol.room, {
        identity: `pub-${report.jobId}`,
        timeoutMs: 20_000,
      });
      expect(agent.kind).toBe(ParticipantKind.AGENT);
    }
    const inRoom = pub.records.filter((r) => r.message === 'e2e job report' && r.room === room);
    expect(inRoom.map((r) => r.publisher).sort()).toEqual(['alice', 'bob']);
    expect(answers(pub)).toHaveLength(2);

    // The job ends with its publisher; the other publisher's job keeps running.
    await alice.leave();
    expect(await jobEnded(pub, forAlice.jobId)).toMatchObject({
      outcome: 'success',
      reason: 'publisher left',
    });
    expect(pub.records).not.toContainEqual(
      expect.objectContaining({ message: 'job ended', jobId: forBob.jobId }),
    );
    await bob.leave();
    expect(await jobEnded(pub, forBob.jobId)).toMatchObject({
      outcome: 'success',
      reason: 'publisher left',
    });
  });
});

describe('agent permissions on a real server', () => {
  it('keeps an agent registered with hidden: true invisible to the other participants', async () => {
    const room = 'hidden-1';
    const alice = await joinRoom(server, { room, identity: 'alice' });
    const seen: string[] = [];
    alice.room.on(RoomEvent.ParticipantConnected, (p) => seen.push(p.identity));

    await dispatches.createDispatch(room, 'hidden');
    const hiddenJob = await jobReport(hidden, room);
    const hiddenIdentity = `hidden-${hiddenJob.jobId}`;
    // The server has it in the room, as hidden…
    const listed = await rooms.listParticipants(room);
    expect(listed.find((p) => p.identity === hiddenIdentity)?.permission?.hidden).toBe(true);

    // …and a visible agent that joins after it reaches alice, while the hidden one never does.
    await dispatches.createDispatch(room, 'muted');
    const visibleJob = await jobReport(muted, room);
    await waitForParticipant(alice.room, {
      identity: `muted-${visibleJob.jobId}`,
      timeoutMs: 20_000,
    });
    expect(seen).not.toContain(hiddenIdentity);
    expect(alice.room.remoteParticipants.has(hiddenIdentity)).toBe(false);
  });

  it('refuses a track from an agent registered with canPublish: false, and takes one from an agent with default permissions', async () => {
    const room = 'no-publish-1';
    const alice = await joinRoom(server, { room, identity: 'alice' });
    // Alice publishing starts a `pub` job (default permissions) in the same room: the control.
    await publishSilentAudio(alice);
    await dispatches.createDispatch(room, 'muted');
    const [mutedJob, pubJob] = await Promise.all([
      jobReport(muted, room),
      reportFor(pub, room, 'alice'),
    ]);
    const [refused, accepted] = await Promise.all([
      publishAttempt(muted, mutedJob.jobId),
      publishAttempt(pub, pubJob.jobId),
    ]);
    expect(accepted).toMatchObject({ published: true });
    expect(refused).toMatchObject({ published: false });

    const listed = await rooms.listParticipants(room);
    const mutedAgent = listed.find((p) => p.identity === `muted-${mutedJob.jobId}`);
    expect(mutedAgent?.permission?.canPublish).toBe(false);
    expect(mutedAgent?.tracks).toEqual([]);
    const pubAgent = listed.find((p) => p.identity === `pub-${pubJob.jobId}`);
    expect(pubAgent?.tracks.map((t) => t.name)).toEqual(['e2e-tone']);
  });
});

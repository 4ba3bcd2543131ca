/**
 * The example echo agent, run by the real `agent` bin against a real livekit-server, talking to a
 * real @livekit/rtc-node participant: automatic dispatch end to end.
 */
import { readFileSync } from 'node:fs';
import { ParticipantKind, RoomEvent } from '@livekit/rtc-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAllAgents, startAgent, type AgentProcess } from '../support/agent-process.ts';
import { startLiveKitServer, type LiveKitServer } from '../support/livekit-server.ts';
import {
  joinRoom,
  leaveAllRooms,
  waitForParticipant,
  withDeadline,
} from '../support/participants.ts';

let server: LiveKitServer;
let agent: AgentProcess;

beforeAll(async () => {
  // The echo agent reports real CPU load; on a busy 2-core machine it can reach 1.0. The worker
  // threshold is lifted (Infinity) and the server's gate raised above any load (affinity is
  // targetLoad − load), so this test measures dispatch, not the machine's business; the server's
  // pick among workers still weighs by 1 − load (`roomWithEchoAgent` below).
  server = await startLiveKitServer({ name: 'echo-agent', targetLoad: 2 });
  agent = startAgent(
    [
      'start',
      'examples/echo-agent.ts',
      '--num-idle-processes',
      '1',
      '--load-threshold',
      'Infinity',
    ],
    {
      LIVEKIT_URL: server.url,
      LIVEKIT_API_KEY: server.apiKey,
      LIVEKIT_API_SECRET: server.apiSecret,
    },
  );
  await agent.waitForLog((r) => r.message === 'registered with the server', 'registration');
}, 60_000);
afterEach(() => leaveAllRooms());
afterAll(async () => {
  await killAllAgents();
  await server?.stop();
});

/**
 * Alice in a new room, with the echo agent the server dispatched to it. The example reports the
 * machine's real CPU load, and the server hands a job to no worker whose load is 1.0 (its
 * selection weighs workers by 1 − load, whatever `targetLoad` says). When the whole suite keeps
 * both cores busy, the room's one dispatch can find the worker at 1.0 ("no workers with
 * sufficient capacity" in the server log) and no agent ever comes: then a new room is tried,
 * since each new room is dispatched afresh (at most three). Any other missing agent fails the
 * test at once.
 */
async function roomWithEchoAgent() {
  for (let attempt = 1; ; attempt++) {
    const alice = await joinRoom(server, { room: `echo-${attempt}`, identity: 'alice' });
    const greeting = new Promise<string>((resolve) => {
      alice.room.on(RoomEvent.DataReceived, (payload, _from, _kind, topic) => {
        if (topic === 'greeting') resolve(new TextDecoder().decode(payload));
      });
    });
    try {
      const echoAgent = await waitForParticipant(alice.room, {
        kind: ParticipantKind.AGENT,
        timeoutMs: 15_000,
      });
      return { alice, greeting, echoAgent };
    } catch (error) {
      await alice.leave();
      if (attempt >= 3 || !noCapacityFor(`echo-${attempt}`)) throw error;
    }
  }
}

/** Whether the server's log says it found no worker with capacity for `room`'s job. */
function noCapacityFor(room: string): boolean {
  return readFileSync(server.logFile, 'utf8')
    .split('\n')
    .some(
      (line) =>
        line.includes('no worker available to handle job') && line.includes(`"room": "${room}"`),
    );
}

describe('echo agent on a real server', () => {
  it('joins a new room, echoes data, and ends with success when the participant leaves', async () => {
    const { alice, greeting, echoAgent } = await roomWithEchoAgent();
    expect(echoAgent.identity).toMatch(/^echo-AJ_/);
    expect(echoAgent.name).toBe('Echo');
    expect(echoAgent.attributes).toMatchObject({ role: 'echo' });

    expect(await withDeadline(greeting, 10_000, 'greeting')).toMatch(
      /^hello from warm process \d+$/,
    );

    const echoed = new Promise<string>((resolve) => {
      alice.room.on(RoomEvent.DataReceived, (payload, _from, _kind, topic) => {
        if (topic === 'echo') resolve(new TextDecoder().decode(payload));
      });
    });
    await alice.room.localParticipant!.publishData(new TextEncoder().encode('ping'), {
      reliable: true,
    });
    expect(await withDeadline(echoed, 10_000, 'echo')).toBe('echo: ping');

    const jobId = echoAgent.identity.slice('echo-'.length);
    await alice.leave();
    const ended = await agent.waitForLog(
      (r) => r.message === 'job ended' && r.jobId === jobId,
      'job end',
    );
    // Three signals race: the agent sees alice leave, the room (now agent-only) closes, or the
    // server terminates the job as its room closes. Each is a clean end.
    expect(ended).toMatchObject({ outcome: 'success' });
    expect(ended.reason).toMatch(
      /^(alice left|room disconnected \(ROOM_CLOSED\)|terminated by the server)$/,
    );
  }, 90_000);

  it('never prints the API secret or a token', () => {
    expect(agent.output()).not.toContain(
      server.apiSecret === 'secret' ? '"secret"' : server.apiSecret,
    );
    expect(agent.output()).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
  });

  it("prints rtc-node's own log lines only as our records, never as raw pino JSON", () => {
    expect(agent.output()).not.toContain('"name":"lk-rtc"');
  });
});

/**
 * The test and bench server keeps its clients' ICE on this machine. livekit-server hands every
 * client STUN servers, public ones unless configured; each rtc-node peer connection then looks
 * them up, and where DNS answers nothing (this sandbox) each lookup holds a libwebrtc
 * `AsyncResolver` thread for seconds. The bench's users join rooms in a loop in one process and
 * gathered thousands of them (test/support/livekit-server.ts gives a loopback STUN address).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLiveKitServer, type LiveKitServer } from '../support/livekit-server.ts';
import { joinRoom, leaveAllRooms } from '../support/participants.ts';

let server: LiveKitServer;

beforeAll(async () => {
  server = await startLiveKitServer({ name: 'e2e-test-server-ice' });
});
afterAll(async () => {
  await leaveAllRooms();
  await server?.stop();
});

/** This process's threads named `name` (Linux: /proc/self/task/<tid>/comm). */
function threadsNamed(name: string): number {
  let count = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === name) count++;
    } catch {
      // the thread ended meanwhile
    }
  }
  return count;
}

describe('the test server (real livekit-server, rtc-node participants)', () => {
  it('gives its clients no STUN server to look up by name, so joining rooms leaves no resolver thread behind', async () => {
    for (let i = 0; i < 3; i++) {
      const user = await joinRoom(server, { room: `ice-${i}`, identity: `user-${i}` });
      await user.leave();
    }
    expect(threadsNamed('AsyncResolver')).toBe(0);
  });
});

/**
 * Job recovery on one node with the disk journal (src/recovery/): a job whose process is killed
 * while its worker lives, and the jobs of a worker that is killed and started again over its
 * own state directory, come back to their rooms with the same identity and their checkpoint; a
 * job that ended cleanly, whose user left, or that died at every attempt is not dispatched again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RoomEvent, type Room } from '@livekit/rtc-node';
import { RoomServiceClient } from 'livekit-server-sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAllAgents, type LogRecord } from '../support/agent-process.ts';
import { startFixtureWorker, type FixtureWorker } from '../support/e2e-workers.ts';
import { startLiveKitServer, type LiveKitServer } from '../support/livekit-server.ts';
import { joinRoom, leaveAllRooms } from '../support/participants.ts';

const AGENT = 'test/fixtures/e2e/recovery-agent.ts';

let server: LiveKitServer | undefined;
const dirs: string[] = [];
const workers: FixtureWorker[] = [];
beforeAll(async () => {
  server = await startLiveKitServer({ name: 'recovery', targetLoad: 2 });
}, 60_000);
afterEach(async (t) => {
  if (t.task.result?.state === 'fail') for (const w of workers) console.log(w.label, w.output());
  workers.length = 0;
  await leaveAllRooms();
  await killAllAgents();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
afterAll(() => server?.stop());

function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'agentstate-recovery-'));
  dirs.push(d);
  return d;
}

async function startWorker(
  label: string,
  dir: string,
  env: Record<string, string> = {},
): Promise<FixtureWorker> {
  const w = await startFixtureWorker(server!, label, {
    env: { AGENTSTATE_STATE_DIR: dir, ...env },
    agentFile: AGENT,
  });
  workers.push(w);
  return w;
}

interface Report extends LogRecord {
  jobId: string;
  room: string;
  identity: string;
  pid: number;
  recovery: {
    previousJobId: string;
    attempt: number;
    firstStartedAt: number;
    checkpoint: { tick: number } | null;
  } | null;
}

function report(
  w: FixtureWorker,
  room: string,
  pred: (r: Report) => boolean = () => true,
  timeoutMs = 20_000,
) {
  return w.waitForLog(
    (r) => r.message === 'recovery job report' && r.room === room && pred(r as Report),
    `a recovery job report from ${room}`,
    timeoutMs,
  ) as Promise<Report>;
}

/** The data messages the user gets from the agent (topic `tick`). */
function ticks(room: Room): { tick: number; attempt: number; identity: string }[] {
  const got: { tick: number; attempt: number; identity: string }[] = [];
  room.on(RoomEvent.DataReceived, (payload, _p, _kind, topic) => {
    if (topic === 'tick') got.push(JSON.parse(new TextDecoder().decode(payload)) as never);
  });
  return got;
}

async function until(pred: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('job recovery with the disk journal', () => {
  it('recovers a job whose process was SIGKILLed, in another process, with the same identity and its checkpoint', async () => {
    const w = await startWorker('r1', stateDir());
    const user = await joinRoom(server!, { room: 'rec-proc', identity: 'alice' });
    const got = ticks(user.room);
    const first = await report(w, 'rec-proc');
    expect(first.recovery).toBeNull();
    await until(() => got.length >= 3, 'ticks from the first attempt');
    const killedAt = Date.now();
    process.kill(first.pid, 'SIGKILL');
    const second = await report(w, 'rec-proc', (r) => r.jobId !== first.jobId);
    expect(second.identity).toBe(first.identity);
    expect(second.pid).not.toBe(first.pid);
    expect(second.recovery?.previousJobId).toBe(first.jobId);
    expect(second.recovery?.attempt).toBe(2);
    expect(second.recovery?.checkpoint?.tick).toBeGreaterThanOrEqual(3);
    await until(() => got.some((t) => t.attempt === 2), 'ticks from the recovered job');
    const resumed = got.find((t) => t.attempt === 2)!;
    expect(resumed.identity).toBe(first.identity);
    expect(resumed.tick).toBeGreaterThan(second.recovery!.checkpoint!.tick);
    const rec = w.records.find((r) => r.message === 'job recovered');
    expect(rec?.previousJobId).toBe(first.jobId);
    console.log(`recovered ${Date.now() - killedAt} ms after the kill`);
  }, 60_000);
});

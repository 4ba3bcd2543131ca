/**
 * Job recovery on one node with the disk journal (src/recovery/): a job whose process is killed
 * while its worker lives, and the jobs of a worker that is killed and started again over its
 * own state directory, come back to their rooms with the same identity and their checkpoint; a
 * job that ended cleanly, whose user left, or that died at every attempt is not dispatched again.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAllAgents } from '../support/agent-process.ts';
import { startFixtureWorker, type FixtureWorker } from '../support/e2e-workers.ts';
import { startLiveKitServer, type LiveKitServer } from '../support/livekit-server.ts';
import { joinRoom, leaveAllRooms } from '../support/participants.ts';
import {
  recoveryReport as report,
  ticks,
  untilTicks as until,
} from '../support/recovery-reports.ts';

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
    args: ['--port', '0'],
  });
  workers.push(w);
  return w;
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
    // `/worker` shows the job as recovered, and the metrics count it.
    const port = Number(w.records.find((r) => r.message === 'health server listening')?.port);
    const info = (await (await fetch(`http://127.0.0.1:${port}/worker`)).json()) as {
      jobs: { id: string; recovered: { attempt: number; previous_job_id: string } | null }[];
      recovery: { store: string; up: boolean };
    };
    expect(info.recovery).toMatchObject({ store: 'disk', up: true });
    expect(info.jobs.find((j) => j.id === second.jobId)?.recovered).toEqual({
      attempt: 2,
      previous_job_id: first.jobId,
    });
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/^agentstate_recovery_recovered_total 1$/m);
    expect(metrics).toMatch(/^agentstate_recovery_journaled_total 2$/m);
    expect(metrics).toMatch(/^agentstate_recovery_latency_seconds_count 1$/m);
    expect(metrics).toMatch(/^agentstate_recovery_store_up 1$/m);
    console.log(`recovered ${Date.now() - killedAt} ms after the kill`);
  }, 60_000);

  it('recovers each of the 3 jobs of a worker that was SIGKILLed, once it is started again over its state directory', async () => {
    const dir = stateDir();
    const w = await startWorker('r2', dir);
    const rooms = ['rec-w-1', 'rec-w-2', 'rec-w-3'];
    const users = await Promise.all(
      rooms.map((room, i) => joinRoom(server!, { room, identity: `user-${i}` })),
    );
    const got = users.map((u) => ticks(u.room));
    const firsts = await Promise.all(rooms.map((room) => report(w, room)));
    await until(() => got.every((g) => g.length >= 3), 'ticks from every first attempt');
    w.child.kill('SIGKILL');
    await w.exited;
    const w2 = await startWorker('r2b', dir);
    const seconds = await Promise.all(
      rooms.map((room, i) => report(w2, room, (r) => r.jobId !== firsts[i]!.jobId)),
    );
    for (const [i, second] of seconds.entries()) {
      expect(second.identity).toBe(firsts[i]!.identity);
      expect(second.recovery?.previousJobId).toBe(firsts[i]!.jobId);
      expect(second.recovery?.attempt).toBe(2);
      // The journal lags the ticks by a write or two (each write is flushed to disk).
      expect(second.recovery?.checkpoint?.tick).toBeGreaterThanOrEqual(1);
    }
    await until(
      () => got.every((g) => g.some((t) => t.attempt === 2)),
      'ticks from every recovered job',
    );
    for (const [i, g] of got.entries()) {
      const resumed = g.find((t) => t.attempt === 2)!;
      expect(resumed.identity).toBe(firsts[i]!.identity);
      expect(resumed.tick).toBeGreaterThan(seconds[i]!.recovery!.checkpoint!.tick);
    }
  }, 90_000);

  it('does not recover a job that called ctx.shutdown(), nor one whose user left', async () => {
    const w = await startWorker('r3', stateDir(), { E2E_SHUTDOWN_AFTER_MS: '600' });
    await joinRoom(server!, { room: 'rec-clean', identity: 'bob' });
    const first = await report(w, 'rec-clean');
    await w.waitForLog(
      (r) => r.message === 'job ended' && r.jobId === first.jobId,
      'the clean end',
      10_000,
    );
    const leaving = await joinRoom(server!, { room: 'rec-left', identity: 'carol' });
    const other = await report(w, 'rec-left');
    await leaving.leave();
    process.kill(other.pid, 'SIGKILL');
    const declined = await w.waitForLog(
      (r) => r.message === 'job not recovered' && r.jobId === other.jobId,
      'the decline',
      15_000,
    );
    expect(['userLeft', 'roomGone']).toContain(declined.why);
    // Nothing was dispatched again for either job.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(w.records.filter((r) => r.message === 'job dispatched again')).toEqual([]);
    expect(w.records.filter((r) => r.message === 'recovery job report')).toHaveLength(2);
  }, 60_000);

  it('gives up on a job whose process dies at every attempt, after maxAttempts', async () => {
    const w = await startWorker('r4', stateDir(), {
      E2E_CRASH_AFTER_MS: '400',
      E2E_MAX_ATTEMPTS: '2',
    });
    await joinRoom(server!, { room: 'rec-loop', identity: 'dave' });
    const first = await report(w, 'rec-loop');
    const second = await report(w, 'rec-loop', (r) => r.jobId !== first.jobId);
    expect(second.recovery?.attempt).toBe(2);
    const gaveUp = await w.waitForLog(
      (r) => r.message === 'job recovery given up: no attempts left',
      'giving up',
      15_000,
    );
    expect(gaveUp.jobId).toBe(second.jobId);
    expect(gaveUp.attempts).toBe(2);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(w.records.filter((r) => r.message === 'recovery job report')).toHaveLength(2);
  }, 60_000);

  it('reports a corrupt journal file, a journal entry for a room that is gone and a checkpoint over the limit, and runs its jobs', async () => {
    const dir = stateDir();
    const jobs = join(dir, 'journal', '_automatic', 'jobs');
    mkdirSync(jobs, { recursive: true });
    writeFileSync(join(jobs, 'AJ_truncated.json'), '{"jobId":"AJ_trunc');
    const gone = {
      jobId: 'AJ_gone',
      dispatchId: 'AD_gone',
      roomName: 'rec-no-such-room',
      agentName: '',
      jobType: 'JT_ROOM',
      agentIdentity: 'agent-AJ_gone',
      agentParticipantName: '',
      agentParticipantMetadata: '',
      agentAttributes: {},
      metadata: '',
      workerId: 'AW_dead',
      owner: 'a-dead-worker',
      attempt: 1,
      firstStartedAt: Date.now(),
    };
    writeFileSync(join(jobs, 'AJ_gone.json'), JSON.stringify(gone));
    const w = await startWorker('r5', dir, { E2E_BIG_CHECKPOINT: '1' });
    const corrupt = await w.waitForLog(
      (r) => r.message.startsWith('job journal record unreadable'),
      'the corrupt file reported',
      10_000,
    );
    expect(String(corrupt.where)).toContain('AJ_truncated.json');
    const declined = await w.waitForLog(
      (r) => r.message === 'job not recovered' && r.jobId === 'AJ_gone',
      'the entry for a room that is gone',
      10_000,
    );
    expect(declined.why).toBe('roomGone');
    expect(readdirSync(jobs).some((f) => f.endsWith('.corrupt'))).toBe(true);
    // And the worker runs jobs as ever.
    const user = await joinRoom(server!, { room: 'rec-after-corrupt', identity: 'erin' });
    const got = ticks(user.room);
    await report(w, 'rec-after-corrupt');
    const refused = await w.waitForLog(
      (r) => r.message === 'checkpoint refused',
      'the big checkpoint refused',
    );
    expect(String(refused.error)).toMatch(/over the limit of 65536/);
    await until(() => got.length >= 2, 'ticks from the job');
  }, 60_000);

  it('runs its jobs with recovery degraded when the Redis at recovery.redisUrl is unreachable at start', async () => {
    const w = await startWorker('r6', stateDir(), { AGENTSTATE_REDIS_URL: 'redis://127.0.0.1:1' });
    await w.waitForLog(
      (r) => r.message.startsWith('recovery degraded'),
      'the degradation logged',
      10_000,
    );
    const user = await joinRoom(server!, { room: 'rec-no-redis', identity: 'frank' });
    const got = ticks(user.room);
    await report(w, 'rec-no-redis');
    await until(() => got.length >= 3, 'ticks from the job');
  }, 60_000);
});

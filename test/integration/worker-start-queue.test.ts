/**
 * The user's load policy decides how many jobs a worker takes; starting their processes is
 * queued (bounded concurrent starts), never a reason by itself to refuse. Real `Worker`s with
 * real job processes against the emulator.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/testing/index.ts';
import { eventually, workerFactory } from '../support/emulated-worker.ts';

const diesAtHandoff = fileURLToPath(
  new URL('../fixtures/worker/dies-at-handoff.ts', import.meta.url),
);

let emulator: Emulator | undefined;
const emu = (): Emulator => emulator!;
const workers = workerFactory(emu);

beforeAll(async () => {
  // The seed's example allows load up to 0.9, so the server's own gate (`agents.target_load`)
  // is raised with it, as the README says to.
  emulator = await startEmulator({ defaultWaitMs: 30_000, targetLoad: 0.95 });
});
afterEach(() => workers.stopAll());
afterAll(() => emulator?.close());

const running = (prefix: string) =>
  emu().jobs.filter((j) => j.room.startsWith(prefix) && j.status === 'running');

describe('job starts are queued, the load policy decides (emulator, real job processes)', () => {
  it("takes the 9 jobs the seed's example allows offered back to back, and refuses the 10th", async () => {
    const worker = workers.start({
      agentName: 'seed',
      // The seed's example: "limits the worker to 9 concurrent jobs". CPU plays no part.
      loadFnc: (w) => Math.min(w.activeJobs.length / 10, 1),
      loadThreshold: 0.9,
      numIdleProcesses: 1,
      // The machine is shared with other suites; how long a start takes is not under test here.
      jobStartBudget: 60_000,
    });
    const id = await workers.ready(worker);
    const answers = () =>
      emu().events.filter((e) => e.type === 'availability-answered' && e.workerId === id);
    for (let i = 1; i <= 9; i++) {
      emu().createDispatch({ room: `seed-${i}`, agentName: 'seed' });
      // One after another: each offer once the previous is answered and counted in the load,
      // without waiting for its process to start.
      await eventually(() => answers().length === i, `the answer to offer ${i}`);
      await eventually(() => worker.load >= i / 10 - 1e-9, `load ${i / 10}`, 5_000);
    }
    expect(answers().every((e) => e.type === 'availability-answered' && e.available)).toBe(true);
    await eventually(() => worker.status === 'full', 'the worker to be full at load 0.9');
    const since = emu().lastSeq;
    emu().createDispatch({ room: 'seed-10', agentName: 'seed' });
    // Refused: the server hears the worker is full and offers it nothing, or the worker says no.
    const refusal = await emu().waitFor(() =>
      emu().events.find(
        (e) =>
          e.seq > since &&
          ((e.type === 'job-not-dispatched' && e.room === 'seed-10') ||
            (e.type === 'availability-answered' && e.workerId === id && !e.available)),
      ),
    );
    expect(refusal).toBeDefined();
    await eventually(
      () => worker.activeJobs.filter((j) => j.phase === 'running').length === 9,
      '9 entrypoints started',
      60_000,
    );
    expect(running('seed-')).toHaveLength(9);
    expect(running('seed-').map((j) => j.room)).not.toContain('seed-10');
    expect(emu().jobs.filter((j) => j.status === 'failed' && j.room.startsWith('seed-'))).toEqual(
      [],
    );
  }, 90_000);

  it('serves a burst bigger than its warm pool in full, then refills the pool', async () => {
    const worker = workers.start({ agentName: 'burst', numIdleProcesses: 1 });
    await workers.ready(worker);
    for (let i = 0; i < 5; i++) emu().createDispatch({ room: `burst-${i}`, agentName: 'burst' });
    await eventually(() => running('burst-').length === 5, 'all 5 burst jobs running', 60_000);
    expect(emu().jobs.filter((j) => j.room.startsWith('burst-') && j.status !== 'running')).toEqual(
      [],
    );
    // Every job gets a process: none is failed while the processes start two at a time.
    await eventually(
      () => worker.activeJobs.filter((j) => j.phase === 'running').length === 5,
      'all 5 entrypoints started',
      60_000,
    );
    expect(worker.activeJobs).toHaveLength(5);
    expect(emu().jobs.filter((j) => j.status === 'failed' && j.room.startsWith('burst-'))).toEqual(
      [],
    );
    // The warm pool is back to numIdleProcesses, and no start deadline is left armed.
    const idle = () =>
      Object.values(worker.actor!.getSnapshot().context.procs).filter((p) => p.phase === 'idle');
    await eventually(() => idle().length === 1, 'one idle process again', 30_000);
    const scheduled = Object.values(worker.actor!.system.getSnapshot()._scheduledEvents);
    expect(scheduled.filter((e) => String(e.id).startsWith('start-deadline-'))).toEqual([]);
  }, 90_000);

  it('runs a job on another process when the first one dies in the hand-off', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentstate-handoff-'));
    const marker = join(dir, 'died');
    process.env.HANDOFF_CRASH_MARKER = marker;
    try {
      const worker = workers.start({
        agentName: 'handoff',
        agentModule: diesAtHandoff,
        numIdleProcesses: 2,
      });
      const retried: string[] = [];
      worker.on('jobRetried', (e) => retried.push(e.jobId));
      await workers.ready(worker);
      emu().createDispatch({ room: 'handoff-1', agentName: 'handoff' });
      await eventually(() => running('handoff-').length === 1, 'the job running', 60_000);
      await eventually(
        () => worker.activeJobs.find((j) => j.phase === 'running'),
        'its entrypoint started',
        60_000,
      );
      // The first process did die with the job in hand, and the job was not failed for it.
      expect(existsSync(marker)).toBe(true);
      const diedPid = Number(readFileSync(marker, 'utf8'));
      expect(worker.activeJobs[0]?.pid).not.toBe(diedPid);
      expect(retried).toHaveLength(1);
      expect(emu().jobs.filter((j) => j.room === 'handoff-1' && j.status === 'failed')).toEqual([]);
    } finally {
      delete process.env.HANDOFF_CRASH_MARKER;
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});

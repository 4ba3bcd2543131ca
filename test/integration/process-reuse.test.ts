/**
 * Opt-in process reuse (`jobsPerProcess`), with real job processes against the emulator: a
 * process whose job ended cleanly runs the next job, up to the limit; a failed job or one that
 * left the process grown past `reuseMemoryGrowthMb` ends its process; a kept process beyond the
 * spares wanted is let go, and the pool is back to `numIdleProcesses`.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Worker } from '../../src/index.ts';
import { startEmulator, type Emulator } from '../../src/testing/index.ts';
import { eventually, isAlive, workerFactory } from '../support/emulated-worker.ts';

let emulator: Emulator | undefined;
const emu = (): Emulator => emulator!;
const workers = workerFactory(emu);

beforeAll(async () => {
  emulator = await startEmulator({ defaultWaitMs: 30_000 });
});
afterEach(() => workers.stopAll());
afterAll(() => emulator?.close());

/** Runs one scripted job to its end and says which process (id and pid) ran it. */
async function runJob(worker: Worker, agentName: string, room: string, metadata: string) {
  let launched: { procId: string; pid: number | undefined } | undefined;
  const off = worker.on('jobLaunched', (e) => {
    const proc = worker.processes.find((p) => p.procId === e.procId);
    launched ??= { procId: e.procId, pid: proc?.pid };
  });
  try {
    emu().createDispatch({ room, agentName, metadata });
    const job = await emu().waitFor(() =>
      emu().jobs.find((j) => j.room === room && (j.status === 'success' || j.status === 'failed')),
    );
    return { status: job.status, ...(await eventually(() => launched, `${room} launched`)) };
  } finally {
    off();
  }
}

const idleProcs = (w: Worker) => w.processes.filter((p) => p.phase === 'idle');

describe('process reuse (emulator, real job processes)', () => {
  it('runs jobs one after another in the same process, up to jobsPerProcess', async () => {
    const worker = workers.start({ agentName: 'reuse', numIdleProcesses: 1, jobsPerProcess: 3 });
    await workers.ready(worker);
    const runs: Awaited<ReturnType<typeof runJob>>[] = [];
    for (let i = 1; i <= 4; i++) runs.push(await runJob(worker, 'reuse', `reuse-${i}`, 'return'));
    expect(runs.map((r) => r.status)).toEqual(['success', 'success', 'success', 'success']);
    // Jobs 1–3 in one OS process; it had then run its 3 and ended, so job 4 got another.
    expect(new Set(runs.slice(0, 3).map((r) => r.pid)).size).toBe(1);
    expect(runs[3]!.pid).not.toBe(runs[0]!.pid);
    await eventually(() => !isAlive(runs[0]!.pid!), 'the process that ran 3 jobs to exit');
  }, 60_000);

  it('ends the process of a job that failed, and of one that grew past reuseMemoryGrowthMb', async () => {
    const worker = workers.start({
      agentName: 'reuse-no',
      numIdleProcesses: 1,
      jobsPerProcess: 10,
      reuseMemoryGrowthMb: 40,
    });
    await workers.ready(worker);
    const threw = await runJob(worker, 'reuse-no', 'no-1', 'throw');
    const grew = await runJob(worker, 'reuse-no', 'no-2', 'grow:120');
    const next = await runJob(worker, 'reuse-no', 'no-3', 'return');
    expect([threw.status, grew.status, next.status]).toEqual(['failed', 'success', 'success']);
    expect(new Set([threw.pid, grew.pid, next.pid]).size).toBe(3);
    await eventually(() => !isAlive(threw.pid!) && !isAlive(grew.pid!), 'both to exit');
    // A small job stays within the bound: its process is kept.
    const again = await runJob(worker, 'reuse-no', 'no-4', 'return');
    expect(again.pid).toBe(next.pid);
  }, 60_000);

  it('lets a kept process beyond the spares go, and the pool is back to numIdleProcesses', async () => {
    const worker = workers.start(
      { agentName: 'reuse-surplus', numIdleProcesses: 1, jobsPerProcess: 5 },
      { chartTuning: { surplusIdleTimeout: 500 } },
    );
    await workers.ready(worker);
    // A job that runs until the server ends it, so the spare replacing its process is warm first.
    emu().createDispatch({ room: 'surplus-1', agentName: 'reuse-surplus', metadata: 'hold' });
    await eventually(
      () => idleProcs(worker).length === 1 && worker.activeJobs[0]?.phase === 'running',
      'a warm spare beside the running job',
      30_000,
    );
    const job = worker.activeJobs[0]!;
    const jobPid = job.pid!;
    expect(emu().terminateJob(job.id)).toBe(true);
    await eventually(() => worker.activeJobs.length === 0, 'the job to end', 30_000);
    expect(emu().jobs.find((j) => j.room === 'surplus-1')?.status).toBe('success');
    // For a moment two processes are idle: the spare and the kept one.
    await eventually(() => !isAlive(jobPid), 'the surplus kept process to exit', 10_000);
    expect(idleProcs(worker)).toHaveLength(1);
    expect(worker.processes).toHaveLength(1);
  }, 60_000);
});

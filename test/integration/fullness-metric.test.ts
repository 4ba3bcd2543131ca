/**
 * `agentstate_worker_fullness_ratio`, the metric an autoscaler averages over the fleet
 * (deploy/kubernetes/hpa.yaml), read from `createWorkerMetrics` of real workers with real job
 * processes against the emulator: used slots over `maxJobs`, load over `loadThreshold` when
 * there is no cap, and 1 while full or draining.
 */
import { describe, expect, it } from 'vitest';
import { createWorkerMetrics } from '../../src/http/metrics.ts';
import type { Worker } from '../../src/index.ts';
import { eventually, useEmulatedWorkers } from '../support/emulated-worker.ts';

const { emu, workers } = useEmulatedWorkers();

async function fullness(worker: Worker): Promise<number> {
  const metrics = createWorkerMetrics(worker);
  try {
    const line = (await metrics.text())
      .split('\n')
      .find((l) => l.startsWith('agentstate_worker_fullness_ratio '));
    if (line === undefined) throw new Error('agentstate_worker_fullness_ratio is not exported');
    return Number(line.split(' ')[1]);
  } finally {
    metrics.dispose();
  }
}

async function runningJobs(worker: Worker, n: number): Promise<void> {
  await eventually(
    () => worker.activeJobs.filter((j) => j.phase === 'running').length === n,
    `${n} running job(s)`,
  );
}

describe('the fleet-fullness metric', () => {
  it('is used slots over maxJobs, and 1 once every slot is taken', async () => {
    const worker = workers.start({ agentName: 'slots', maxJobs: 4, numIdleProcesses: 2 });
    await workers.ready(worker);
    expect(await fullness(worker)).toBe(0);
    emu().createDispatch({ room: 'slots-1', agentName: 'slots' });
    await runningJobs(worker, 1);
    expect(await fullness(worker)).toBe(0.25);
    for (const room of ['slots-2', 'slots-3', 'slots-4']) {
      emu().createDispatch({ room, agentName: 'slots' });
    }
    await runningJobs(worker, 4);
    expect(worker.status).toBe('full');
    expect(await fullness(worker)).toBe(1);
  });

  it('is load over loadThreshold when maxJobs is unset', async () => {
    const worker = workers.start({ agentName: 'load', loadFnc: () => 0.35, loadThreshold: 0.7 });
    await workers.ready(worker);
    await eventually(() => worker.load === 0.35, 'the load sample');
    expect(await fullness(worker)).toBeCloseTo(0.5, 10);
  });

  it('counts no load with loadThreshold Infinity, only the slots', async () => {
    const worker = workers.start({
      agentName: 'unbounded',
      // Below the server's own 0.7 gate, which would dispatch nothing.
      loadFnc: () => 0.6,
      loadThreshold: Infinity,
      maxJobs: 10,
    });
    await workers.ready(worker);
    emu().createDispatch({ room: 'unbounded-1', agentName: 'unbounded' });
    await runningJobs(worker, 1);
    expect(await fullness(worker)).toBeCloseTo(0.1, 10);
  });

  it('is 1 while the worker drains, whatever it still runs', async () => {
    const worker = workers.start({ agentName: 'drain', maxJobs: 4 });
    await workers.ready(worker);
    emu().createDispatch({ room: 'drain-1', agentName: 'drain' });
    await runningJobs(worker, 1);
    void worker.drain('test drain');
    await eventually(() => worker.status === 'draining', 'draining');
    expect(await fullness(worker)).toBe(1);
  });
});

import { describe, expect, it } from 'vitest';
import { useEmulatedWorkers } from '../support/emulated-worker.ts';

const { emu, workers } = useEmulatedWorkers();

describe('worker capacity (emulator, real job processes)', () => {
  it('reports full while loadFnc is at or above the threshold, and available again below it', async () => {
    let load = 0.1;
    const worker = workers.start({ agentName: 'loaded', loadFnc: () => load, loadThreshold: 0.5 });
    const id = await workers.ready(worker);
    await emu().waitForEvent(
      'worker-updated',
      (e) => e.workerId === id && e.status === 'available',
    );
    load = 0.5;
    await emu().waitForEvent(
      'worker-updated',
      (e) => e.workerId === id && e.status === 'full' && e.load === 0.5,
    );
    expect(worker.status).toBe('full');
    emu().createDispatch({ room: 'while-full', agentName: 'loaded' });
    const missed = await emu().waitForEvent(
      'job-not-dispatched',
      (e) => e.room === 'while-full' && e.agentName === 'loaded',
    );
    expect(missed.reason).toBe('no-capacity');
    expect(emu().jobs.filter((j) => j.room === 'while-full')).toEqual([]);
    load = 0.2;
    const since = emu().lastSeq;
    await emu().waitForEvent(
      'worker-updated',
      (e) => e.workerId === id && e.status === 'available',
      {
        after: since,
      },
    );
    emu().createDispatch({ room: 'after-full', agentName: 'loaded' });
    await emu().waitForJob(
      (j) => j.room === 'after-full' && j.status === 'running' && j.workerId === id,
    );
  });

  it('sends a job to the worker with spare capacity when the other reports high load', async () => {
    const busy = workers.start({ agentName: 'pair', loadFnc: () => 0.95 });
    const idle = workers.start({ agentName: 'pair', loadFnc: () => 0.1 });
    // The busy worker is never available: only its registration is awaited.
    const busyId = await emu().waitFor(() => busy.id);
    const idleId = await workers.ready(idle);
    await emu().waitForEvent('worker-updated', (e) => e.workerId === busyId && e.status === 'full');
    for (let i = 0; i < 3; i++) emu().createDispatch({ room: `pair-${i}`, agentName: 'pair' });
    const jobs = await emu().waitFor(() => {
      const js = emu().jobs.filter((j) => j.room.startsWith('pair-') && j.status === 'running');
      return js.length === 3 ? js : undefined;
    });
    expect(jobs.every((j) => j.workerId === idleId)).toBe(true);
  });

  it('never takes more than maxJobs, even under a burst of simultaneous requests', async () => {
    const worker = workers.start({ agentName: 'capped', maxJobs: 2, numIdleProcesses: 2 });
    const id = await workers.ready(worker);
    for (let i = 0; i < 8; i++) emu().createDispatch({ room: `burst-${i}`, agentName: 'capped' });
    await emu().waitFor(() => {
      const js = emu().jobs.filter((j) => j.room.startsWith('burst-'));
      return js.length === 8 && js.every((j) => j.status !== 'pending');
    });
    const accepted = emu().events.filter(
      (e) => e.type === 'availability-answered' && e.workerId === id && e.available,
    );
    expect(accepted).toHaveLength(2);
    expect(
      emu().jobs.filter((j) => j.room.startsWith('burst-') && j.status === 'running'),
    ).toHaveLength(2);
    expect(worker.activeJobs).toHaveLength(2);
    expect(worker.status).toBe('full');
  });
});

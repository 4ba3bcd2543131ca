import { describe, expect, it } from 'vitest';
import { ServerRefusedError, Worker, WorkerOptions } from '../../src/index.ts';
import {
  eventually,
  isAlive,
  scriptedAgent,
  useEmulatedWorkers,
} from '../support/emulated-worker.ts';

const { emu, workers } = useEmulatedWorkers();

describe('worker lifecycle (emulator, real job processes)', () => {
  it('drains: reports full at once, declines new jobs, and stops when the last job ends', async () => {
    const worker = workers.start({ agentName: 'drainer' });
    const id = await workers.ready(worker);
    emu().createDispatch({ room: 'drain-running', agentName: 'drainer' });
    const job = await emu().waitForJob((j) => j.room === 'drain-running' && j.status === 'running');
    await emu().waitFor(() => worker.activeJobs.find((j) => j.phase === 'running'));

    const since = emu().lastSeq;
    const drained = worker.drain('test drain');
    await emu().waitForEvent('worker-updated', (e) => e.workerId === id && e.status === 'full', {
      after: since,
    });
    expect(worker.status).toBe('draining');
    emu().createDispatch({ room: 'drain-new', agentName: 'drainer' });
    await emu().waitForEvent(
      'job-not-dispatched',
      (e) => e.room === 'drain-new' && e.agentName === 'drainer' && e.reason === 'no-capacity',
    );

    let stopped = false;
    void drained.then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 300));
    expect(stopped).toBe(false);
    emu().terminateJob(job.id);
    await drained;
    expect(worker.status).toBe('stopped');
    expect(emu().job(job.id)?.status).toBe('success');
  });

  it('tells its records to on(type, fn) listeners from before run() until they stop listening', async () => {
    const worker = workers.build({ agentName: 'listened' });
    const registered: string[] = [];
    const everything: string[] = [];
    const statuses: string[] = [];
    worker.on('registered', (e) => registered.push(e.workerId));
    const stopAll = worker.on('*', (e) => everything.push(e.type));
    worker.on('statusReported', () => statuses.push(worker.status));
    worker.on('registered', () => {
      throw new Error('a listener that throws');
    });
    expect(worker.status).toBe('connecting');
    const done = worker.run();
    const id = await eventually(() => registered[0], 'the registered record');
    expect(id).toBe(worker.id);
    await eventually(() => statuses.includes('available'), 'an available status');
    stopAll();
    const seen = everything.length;
    expect(everything).toContain('registered');
    await worker.stop('test over');
    await done;
    expect(everything).toHaveLength(seen);
    expect(worker.status).toBe('stopped');
  });

  it('ends running jobs when the drain timeout passes', async () => {
    const worker = workers.start({ agentName: 'drain-timeout', drainTimeout: 500 });
    await workers.ready(worker);
    emu().createDispatch({ room: 'drain-timeout-room', agentName: 'drain-timeout' });
    const job = await emu().waitForJob(
      (j) => j.room === 'drain-timeout-room' && j.status === 'running',
    );
    const pid = await emu().waitFor(
      () => worker.activeJobs.find((j) => j.phase === 'running')?.pid,
    );
    const started = Date.now();
    await worker.drain();
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(Date.now() - started).toBeLessThan(8_000);
    const ended = await emu().waitForJobStatus(job.id, ['success', 'failed']);
    expect(ended.status).toBe('success');
    await eventually(() => !isAlive(pid), `job process ${pid} to exit`);
  });

  it('reconnects after the connection drops and keeps its running job', async () => {
    const worker = workers.start({ agentName: 'reconnector' });
    const firstId = await workers.ready(worker);
    emu().createDispatch({ room: 'reconnect-room', agentName: 'reconnector' });
    await emu().waitForJob((j) => j.room === 'reconnect-room' && j.status === 'running');
    const pid = await emu().waitFor(
      () => worker.activeJobs.find((j) => j.phase === 'running')?.pid,
    );

    emu().dropWorker(firstId);
    await emu().waitFor(() =>
      worker.id !== firstId && worker.status === 'available' ? worker.id : undefined,
    );
    expect(worker.activeJobs.map((j) => j.pid)).toEqual([pid]);
    expect(isAlive(pid)).toBe(true);
    // And it still takes new jobs on the new connection.
    emu().createDispatch({ room: 'after-reconnect', agentName: 'reconnector', metadata: 'return' });
    const next = await emu().waitForJob((j) => j.room === 'after-reconnect');
    await emu().waitForJobStatus(next.id, 'success');
  });

  it('fails fast with a clear error when the server rejects its credentials', async () => {
    const worker = new Worker(
      new WorkerOptions({
        entrypointFnc: () => undefined,
        agentModule: scriptedAgent,
        numIdleProcesses: 0,
        wsUrl: emu().url,
        apiKey: emu().apiKey,
        apiSecret: 'wrong-secret',
      }),
      { handleSignals: false },
    );
    const started = Date.now();
    const err = await worker.run().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ServerRefusedError);
    expect((err as Error).message).toMatch(/API key\/secret.*HTTP 401/);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(worker.status).toBe('stopped');
  });

  it('survives malformed frames and keeps serving jobs', async () => {
    const worker = workers.start({ agentName: 'robust' });
    const id = await workers.ready(worker);
    emu().sendRaw(id, new Uint8Array([0xff, 0xff, 0xff, 0x01, 0x02]));
    emu().sendRaw(id, 'not protobuf at all');
    emu().sendRaw(id, new Uint8Array([]));
    emu().createDispatch({ room: 'after-garbage', agentName: 'robust', metadata: 'return' });
    const job = await emu().waitForJob((j) => j.room === 'after-garbage');
    await emu().waitForJobStatus(job.id, 'success');
    expect(worker.id).toBe(id);
  });
});

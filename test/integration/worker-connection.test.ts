import { describe, expect, it } from 'vitest';
import { ServerRefusedError, Worker, WorkerOptions } from '../../src/index.ts';
import {
  eventually,
  isAlive,
  scriptedAgent,
  useEmulatedWorkers,
} from '../support/emulated-worker.ts';

const { emu } = useEmulatedWorkers();

async function runError(wsUrl: string): Promise<{ err: unknown; ms: number }> {
  const worker = new Worker(
    new WorkerOptions({
      entrypointFnc: () => undefined,
      agentModule: scriptedAgent,
      numIdleProcesses: 0,
      wsUrl,
      apiKey: emu().apiKey,
      apiSecret: emu().apiSecret,
    }),
    { handleSignals: false },
  );
  const started = Date.now();
  const err = await worker.run().then(
    () => undefined,
    (e: unknown) => e,
  );
  return { err, ms: Date.now() - started };
}

describe('worker connection (emulator)', () => {
  it('fails fast when the URL is not an agent endpoint', async () => {
    const { err, ms } = await runError(`${emu().url}/not-livekit`);
    expect(err).toBeInstanceOf(ServerRefusedError);
    expect((err as Error).message).toMatch(/not a LiveKit agent endpoint.*HTTP 404/);
    expect(ms).toBeLessThan(3_000);
  });

  it('fails fast when the host does not exist', async () => {
    const { err, ms } = await runError('ws://no-such-host.invalid:7880');
    expect(err).toBeInstanceOf(ServerRefusedError);
    expect((err as Error).message).toMatch(/no-such-host\.invalid/);
    expect(ms).toBeLessThan(5_000);
  });

  it('notices a silent server by its heartbeat and reconnects, keeping the running job', async () => {
    const worker = new Worker(
      new WorkerOptions({
        entrypointFnc: () => undefined,
        agentModule: scriptedAgent,
        agentName: 'heartbeat',
        numIdleProcesses: 1,
        loadFnc: () => 0,
        wsUrl: emu().url,
        apiKey: emu().apiKey,
        apiSecret: emu().apiSecret,
      }),
      { handleSignals: false, serverLink: { heartbeatInterval: 200, heartbeatTimeout: 300 } },
    );
    const done = worker.run();
    try {
      const firstId = await emu().waitFor(() => worker.id);
      emu().createDispatch({ room: 'heartbeat-room', agentName: 'heartbeat' });
      await emu().waitForJob((j) => j.room === 'heartbeat-room' && j.status === 'running');
      const pid = await emu().waitFor(
        () => worker.activeJobs.find((j) => j.phase === 'running')?.pid,
      );
      emu().stallWorker(firstId, 3_000);
      // Client-side state: polled (the emulator's waits re-check on its own events only).
      await eventually(() => worker.status === 'reconnecting', 'the worker to notice the silence');
      const secondId = await eventually(
        () => (worker.id !== firstId && worker.status === 'available' ? worker.id : undefined),
        'the worker to re-register',
      );
      expect(secondId).toMatch(/^AW_/);
      expect(worker.activeJobs.map((j) => j.pid)).toEqual([pid]);
      expect(isAlive(pid)).toBe(true);
    } finally {
      await worker.stop();
      await done.catch(() => undefined);
    }
  });
});

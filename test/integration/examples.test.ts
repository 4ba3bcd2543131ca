/**
 * The examples' admission logic, run for real: the example module's own options drive a worker
 * against the emulator (the job itself would need a media server; test/e2e covers that).
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import supportAgent from '../../examples/support-agent.ts';
import { Worker } from '../../src/index.ts';
import { useEmulatedWorkers } from '../support/emulated-worker.ts';

const { emu } = useEmulatedWorkers();

describe('examples/support-agent.ts', () => {
  it('serves named dispatches only, rejects internal rooms, and tags the agent with the tier', async () => {
    const worker = new Worker(supportAgent, {
      handleSignals: false,
      overrides: {
        wsUrl: emu().url,
        apiKey: emu().apiKey,
        apiSecret: emu().apiSecret,
        agentModule: fileURLToPath(new URL('../../examples/support-agent.ts', import.meta.url)),
        numIdleProcesses: 1,
      },
    });
    const done = worker.run();
    try {
      const id = await emu()
        .waitForWorker((w) => w.agentName === 'support')
        .then((w) => w.id);
      await emu().waitForEvent(
        'worker-updated',
        (e) => e.workerId === id && e.status === 'available',
      );
      emu().createDispatch({ room: 'internal-ops', agentName: 'support' });
      const internal = await emu().waitForJob(
        (j) => j.room === 'internal-ops' && j.agentName === 'support',
      );
      const no = await emu().waitForEvent('availability-answered', (e) => e.jobId === internal.id);
      expect(no.available).toBe(false);

      emu().createDispatch({
        room: 'help-desk-1',
        agentName: 'support',
        metadata: '{"tier":"gold"}',
      });
      const job = await emu().waitForJob(
        (j) => j.room === 'help-desk-1' && j.agentName === 'support' && j.accept !== undefined,
      );
      expect(job.accept).toMatchObject({ name: 'Support', attributes: { tier: 'gold' } });
    } finally {
      await worker.stop();
      await done.catch(() => undefined);
    }
  });
});

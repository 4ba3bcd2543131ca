/**
 * `agentstate_availability_answers_total{decision}` follows the chart's typed decision: each
 * way an offer can end — accepted, rejected, past its budget, thrown, cut short by a forced
 * stop — is counted once under its own label.
 */
import { describe, expect, it } from 'vitest';
import { createWorkerMetrics } from '../../src/index.ts';
import { eventually, useEmulatedWorkers } from '../support/emulated-worker.ts';

const { emu, workers } = useEmulatedWorkers();

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('availability answer metrics', () => {
  it('counts every answer under its decision, a forced stop included', async () => {
    const worker = workers.start({
      agentName: 'decisions',
      requestTimeout: 500,
      requestFnc: async (req) => {
        const room = req.room?.name;
        if (room === 'say-no') return req.reject('not this one');
        if (room === 'throws') throw new Error('boom');
        if (room === 'slow' || room === 'pending') return new Promise<void>(() => undefined);
        return req.accept();
      },
    });
    await workers.ready(worker);
    const metrics = createWorkerMetrics(worker);
    try {
      for (const room of ['say-no', 'throws', 'slow', 'takes']) {
        emu().createDispatch({ room, agentName: 'decisions' });
        const job = await emu().waitForJob((j) => j.room === room);
        await emu().waitForEvent('availability-answered', (e) => e.jobId === job.id);
      }
      emu().createDispatch({ room: 'pending', agentName: 'decisions' });
      await eventually(
        () => worker.activeJobs.some((j) => j.roomName === 'pending' && j.phase === 'deciding'),
        'the pending request to be decided',
      );
      await worker.stop('test: forced stop');

      const text = await metrics.text();
      const answers = (decision: string) =>
        sample(text, `agentstate_availability_answers_total{decision="${decision}"}`);
      expect(answers('accepted')).toBe(1);
      expect(answers('rejected')).toBe(1);
      expect(answers('error')).toBe(1);
      expect(answers('timeout')).toBe(1);
      // The request still being decided when the worker stopped got its "no", and it counts.
      expect(answers('unavailable')).toBe(1);
    } finally {
      metrics.dispose();
    }
  });
});

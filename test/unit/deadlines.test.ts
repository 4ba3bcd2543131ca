import { SimulatedClock } from 'xstate';
import { describe, expect, it } from 'vitest';
import { withDeadline } from '../../src/clock.ts';
import { DeadlineExceededError } from '../../src/errors.ts';
import { startLoadSampling } from '../../src/load/load-sampler.ts';
import { createLogger } from '../../src/log/logger.ts';

const quiet = createLogger({ level: 'error' });

describe('withDeadline', () => {
  it('settles as the work does when it is in time, and leaves no timer behind', async () => {
    const clock = new SimulatedClock();
    await expect(withDeadline(Promise.resolve(7), 100, 'work', clock)).resolves.toBe(7);
    await expect(withDeadline(Promise.reject(new Error('no')), 100, 'work', clock)).rejects.toThrow(
      'no',
    );
    // Advancing past the deadline fires nothing: both timers were cleared.
    clock.increment(1_000);
  });

  it('rejects with a DeadlineExceededError naming the work once the clock passes the deadline', async () => {
    const clock = new SimulatedClock();
    const pending = withDeadline(new Promise<never>(() => undefined), 250, 'loadFnc', clock);
    clock.increment(249);
    clock.increment(1);
    const err: unknown = await pending.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeadlineExceededError);
    expect((err as DeadlineExceededError).ms).toBe(250);
    expect((err as Error).message).toBe('loadFnc did not settle within 250 ms');
  });
});

describe('load sampling on the injected clock', () => {
  it('samples once per interval of the given clock, and stops', async () => {
    const clock = new SimulatedClock();
    const samples: number[] = [];
    let calls = 0;
    const stop = startLoadSampling(
      {
        loadFnc: () => ++calls / 10,
        view: { activeJobs: [] },
        logger: quiet,
        intervalMs: 500,
        clock,
      },
      (load) => samples.push(load),
    );
    await new Promise((r) => setImmediate(r));
    expect(calls).toBe(1);
    for (let i = 0; i < 3; i++) {
      clock.increment(500);
      await new Promise((r) => setImmediate(r));
    }
    expect(calls).toBe(4);
    expect(samples).toEqual([0.1, 0.2, 0.3, 0.4]);
    stop();
    clock.increment(5_000);
    await new Promise((r) => setImmediate(r));
    expect(calls).toBe(4);
  });
});

import { describe, expect, it } from 'vitest';
import { WorkerOptions } from '../../src/options/worker-options.ts';
import { resolveOptions } from '../../src/options/resolve.ts';
import { chartOptionsFrom } from '../../src/options/chart-options.ts';
import { rehearseJobs } from '../../src/worker/rehearsal.ts';

const env = { LIVEKIT_URL: 'ws://127.0.0.1:7880', LIVEKIT_API_KEY: 'k', LIVEKIT_API_SECRET: 's' };
const options = (
  over: ConstructorParameters<typeof WorkerOptions>[0] = { entrypointFnc: () => {} },
) => chartOptionsFrom(resolveOptions(new WorkerOptions(over), { env, mode: 'production' }));

describe("the worker's rehearsal of the job path", () => {
  it('takes every rehearsed job from its offer to its reported end, with the worker’s own options', async () => {
    expect(await rehearseJobs(options(), { jobs: 25 })).toEqual({
      offered: 25,
      answered: 25,
      launched: 25,
      ended: 25,
    });
  });

  it('runs the same way for a worker with process reuse, a job limit and a single spare', async () => {
    const o = options({
      entrypointFnc: () => {},
      jobsPerProcess: 5,
      maxJobs: 1,
      numIdleProcesses: 1,
    });
    expect(await rehearseJobs(o, { jobs: 10 })).toEqual({
      offered: 10,
      answered: 10,
      launched: 10,
      ended: 10,
    });
  });

  it('stops after the job it is on once its signal aborts', async () => {
    const stop = new AbortController();
    const rehearsal = rehearseJobs(options(), { jobs: 1_000, signal: stop.signal });
    stop.abort();
    const report = await rehearsal;
    expect(report.offered).toBe(1);
    expect(report.ended).toBe(1);
  });
});

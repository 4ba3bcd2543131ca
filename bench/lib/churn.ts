/**
 * Churn: short jobs back to back (a closed loop of `concurrency` users, each joining a fresh room,
 * dispatching, waiting for the agent's data message and leaving) for a time slice; counts the
 * jobs completed inside the slice.
 */
import { runOneJob, type JobDeps } from './scenarios.ts';
import type { WorkerHandle } from './workers.ts';

export interface ChurnSlice {
  completed: number;
  failed: number;
  sliceMs: number;
  jobsPerMinute: number;
  errors: string[];
}

export async function runChurnSlice(
  deps: JobDeps,
  worker: WorkerHandle,
  sliceMs: number,
  concurrency: number,
): Promise<ChurnSlice> {
  const start = performance.now();
  const end = start + sliceMs;
  let completed = 0;
  let failed = 0;
  const errors: string[] = [];
  const loop = async () => {
    while (performance.now() < end) {
      const r = await runOneJob(deps, worker, 'churn', 15_000, false);
      if (performance.now() > end) break; // finished after the slice: not counted
      if (r.ok) completed++;
      else {
        failed++;
        if (errors.length < 3) errors.push(r.error ?? 'unknown');
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return {
    completed,
    failed,
    sliceMs,
    jobsPerMinute: Math.round((completed / sliceMs) * 60_000 * 10) / 10,
    errors,
  };
}

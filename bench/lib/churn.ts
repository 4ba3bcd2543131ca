/**
 * Churn: short jobs back to back (a closed loop of `concurrency` users, each joining a fresh room,
 * dispatching, waiting for the agent's data message and leaving) for a time slice; counts the
 * jobs completed inside the slice.
 */
import { runOneJob, type JobCycle, type JobDeps, type JobTiming } from './scenarios.ts';
import { summarize } from './stats.ts';
import { processCpuMs, treeCpuMs } from './procfs.ts';
import type { WorkerHandle } from './workers.ts';

/** CPU time (ms) spent during a slice, per part of the system. */
export interface ChurnCpu {
  /** The framework's worker and every process it started (job processes, helpers). */
  workerTree: number;
  /** Of `workerTree`, the worker process alone (offers, hand-offs, its server link). */
  worker: number;
  /** livekit-server. */
  server: number;
  /** The bench process itself: its rtc-node users (joins, leaves, data), dispatch calls. */
  bench: number;
}

export interface ChurnSlice {
  completed: number;
  failed: number;
  sliceMs: number;
  jobsPerMinute: number;
  errors: string[];
  /** CPU per completed job (ms), per part: what a job costs the machine, end to end. */
  cpuPerJobMs?: ChurnCpu;
  /** Median of each part of a user's loop over the slice's completed jobs (ms). */
  cycleMedianMs?: JobCycle;
  /**
   * Median of each phase of the slice's completed jobs (ms): where `toData` went, from the
   * dispatch to the user's receiving the agent's message (the latency jobs' phases, under load).
   */
  phaseMedianMs?: Partial<Record<JobPhase, number>>;
}

/** The phases of a job as `runOneJob` splits it (JobTiming's durations but the cycle). */
const PHASES = [
  'dispatchToEntryMs',
  'assignmentToEntryMs',
  'entryToConnectedMs',
  'connectedToUserMs',
  'userToPublishedMs',
  'publishedToReceivedMs',
  'dispatchToDataMs',
] as const satisfies readonly (keyof JobTiming)[];
type JobPhase = (typeof PHASES)[number];

export async function runChurnSlice(
  deps: JobDeps,
  worker: WorkerHandle,
  sliceMs: number,
  concurrency: number,
  serverPid?: number,
): Promise<ChurnSlice> {
  const cpuNow = (): ChurnCpu => {
    const own = process.cpuUsage();
    return {
      workerTree: treeCpuMs(worker.pid),
      worker: processCpuMs(worker.pid),
      server: serverPid === undefined ? 0 : treeCpuMs(serverPid),
      bench: (own.user + own.system) / 1000,
    };
  };
  const cpuBefore = cpuNow();
  const start = performance.now();
  const end = start + sliceMs;
  let completed = 0;
  let failed = 0;
  let ran = 0;
  const errors: string[] = [];
  const cycles: JobCycle[] = [];
  const timings: JobTiming[] = [];
  const loop = async () => {
    while (performance.now() < end) {
      const r = await runOneJob(deps, worker, 'churn', 15_000, false);
      if (r.ok) ran++; // CPU is read until every loop is back, so its jobs are all counted
      if (performance.now() > end) break; // finished after the slice: not counted
      if (r.ok) {
        completed++;
        if (r.cycle) cycles.push(r.cycle);
        timings.push(r);
      } else {
        failed++;
        if (errors.length < 3) errors.push(r.error ?? 'unknown');
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const cpuAfter = cpuNow();
  const perJob = (k: keyof ChurnCpu) =>
    ran === 0 ? 0 : Math.round((cpuAfter[k] - cpuBefore[k]) / ran);
  return {
    completed,
    failed,
    sliceMs,
    jobsPerMinute: Math.round((completed / sliceMs) * 60_000 * 10) / 10,
    errors,
    cpuPerJobMs: {
      workerTree: perJob('workerTree'),
      worker: perJob('worker'),
      server: perJob('server'),
      bench: perJob('bench'),
    },
    ...(cycles.length ? { cycleMedianMs: medianCycle(cycles) } : {}),
    ...(timings.length ? { phaseMedianMs: medianPhases(timings) } : {}),
  };
}

function medianPhases(timings: JobTiming[]): Partial<Record<JobPhase, number>> {
  const out: Partial<Record<JobPhase, number>> = {};
  for (const k of PHASES) {
    const values = timings.flatMap((t) => (t[k] === undefined ? [] : [t[k]]));
    const median = summarize(values)?.median;
    if (median !== undefined) out[k] = median;
  }
  return out;
}

function medianCycle(cycles: JobCycle[]): JobCycle {
  const of = (k: keyof JobCycle) => summarize(cycles.map((c) => c[k]))?.median ?? 0;
  return {
    join: of('join'),
    dispatchCall: of('dispatchCall'),
    toData: of('toData'),
    bookkeeping: of('bookkeeping'),
    leave: of('leave'),
  };
}

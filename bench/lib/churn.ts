/**
 * Churn: short jobs back to back (a closed loop of `concurrency` users, each joining a fresh room,
 * dispatching, waiting for the agent's data message and leaving) for a time slice; counts the
 * jobs completed inside the slice. The users run in a process of their own per slice
 * (`./churn-users.ts`).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { withDeadline } from '../../test/support/participants.ts';
import type { ChurnUsersMessage, ChurnUsersResult, ChurnUsersTask } from './churn-users.ts';
import type { JobCycle, JobDeps, JobTiming } from './scenarios.ts';
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
  const users = await startChurnUsers();
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
  const {
    timings: ended,
    ran,
    cpuMs: usersCpuMs,
  } = await users.run({
    server: deps.server,
    ...(deps.stampsFile === undefined ? {} : { stampsFile: deps.stampsFile }),
    framework: worker.framework,
    agentName: worker.agentName,
    sliceMs,
    concurrency,
  });
  const cpuAfter = cpuNow();
  cpuAfter.bench += usersCpuMs;
  const errors: string[] = [];
  const cycles: JobCycle[] = [];
  const timings: JobTiming[] = [];
  for (const r of ended) {
    if (!r.ok) {
      if (errors.length < 3) errors.push(r.error ?? 'unknown');
      continue;
    }
    // The worker printed the assignment line before the agent's message could reach the user.
    const assignedAt =
      r.jobId === undefined ? undefined : await worker.waitForAssignment(r.jobId, 2_000);
    if (assignedAt !== undefined && r.entryAt !== undefined) {
      r.assignmentToEntryMs = r.entryAt - assignedAt;
    }
    if (r.cycle) cycles.push(r.cycle);
    timings.push(r);
  }
  const completed = timings.length;
  const perJob = (k: keyof ChurnCpu) =>
    ran === 0 ? 0 : Math.round((cpuAfter[k] - cpuBefore[k]) / ran);
  return {
    completed,
    failed: ended.length - completed,
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

/** Slice users in a fresh process (`./churn-users.ts` says why), once it has loaded rtc-node. */
async function startChurnUsers(): Promise<{
  run: (task: ChurnUsersTask) => Promise<ChurnUsersResult>;
}> {
  const child = fork(fileURLToPath(new URL('./churn-users.ts', import.meta.url)), [], {
    execArgv: ['--import', import.meta.resolve('tsx')],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<never>((_, fail) =>
    child.once('exit', (code, signal) =>
      fail(new Error(`churn users exited early (code ${code}, signal ${signal})`)),
    ),
  );
  exited.catch(() => undefined);
  const next = () =>
    Promise.race([new Promise<ChurnUsersMessage>((done) => child.once('message', done)), exited]);
  try {
    const ready = await withDeadline(next(), 30_000, 'churn users ready');
    if (ready.type !== 'ready') throw new Error(`churn users: expected ready, got ${ready.type}`);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    run: async (task) => {
      const reply = next();
      child.send(task);
      try {
        const m = await withDeadline(reply, task.sliceMs + 60_000, 'churn users result');
        if (m.type === 'result') return m.result;
        throw new Error(`churn users failed: ${m.type === 'failed' ? m.error : m.type}`);
      } finally {
        child.kill('SIGKILL');
      }
    },
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

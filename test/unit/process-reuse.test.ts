/**
 * Opt-in process reuse (`jobsPerProcess` above 1), chart level: when a job process goes back to
 * idle (jobProcess chart) and what the worker does with a process that comes back (worker
 * chart). Fake hosts and a SimulatedClock; the real processes are in
 * test/integration/process-reuse.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { RunningJobInfo } from '../../machines/jobProcess.contract.ts';
import type { ProcessHostEvent } from '../../machines/processHost.contract.ts';
import { startJobProcessChart } from '../support/job-process-chart-harness.ts';
import { makeJob, startWorkerChart } from '../support/worker-chart-harness.ts';

const clean = (rssGrowthMb = 5): ProcessHostEvent => ({
  type: 'JOB_RETURNED',
  outcome: 'success',
  reason: 'room closed',
  clean: true,
  rssGrowthMb,
});

function info(id: string): RunningJobInfo {
  return {
    jobId: id,
    job: { id, room: { name: `room-${id}` } },
    acceptArguments: { name: '', identity: `agent-${id}`, metadata: '', attributes: {} },
    url: 'ws://127.0.0.1:1',
    token: 'not-a-token',
    workerId: 'W1',
  };
}

/** One jobProcess chart, warm and running job J1. */
function runningProcess(reuse?: { maxJobs: number; memoryGrowthMb: number }) {
  const chart = startJobProcessChart({
    procId: 'proc-1',
    initializeTimeout: 10_000,
    shutdownTimeout: 10_000,
    ...(reuse ? { reuse } : {}),
  });
  chart.host({ type: 'PROCESS_SPAWNED', pid: 42 });
  chart.host({ type: 'PREWARM_SUCCEEDED' });
  const launch = (id: string) => {
    chart.child.send({ type: 'LAUNCH_REQUESTED', job: info(id) });
    chart.host({ type: 'JOB_RUNNING' });
  };
  launch('J1');
  return {
    ...chart,
    launch,
    state: () => chart.child.getSnapshot().value,
    ended: () => chart.recorded.map((r) => r.report).filter((r) => r.type === 'JOB_ENDED'),
    terminated: () => chart.commands.some((c) => c.type === 'EXIT_REQUESTED'),
  };
}

describe('process reuse: the jobProcess chart', () => {
  it('goes back to idle after a clean job while it may run more, and says it stays', () => {
    const p = runningProcess({ maxJobs: 2, memoryGrowthMb: 50 });
    p.host(clean());
    expect(p.state()).toBe('idle');
    expect(p.terminated()).toBe(false);
    expect(p.ended()).toEqual([expect.objectContaining({ jobId: 'J1', processKept: true })]);

    p.launch('J2');
    expect(p.state()).toEqual({ running: 'active' });
    p.host(clean());
    // The second job was its last (maxJobs 2): it ends like a process without reuse.
    expect(p.state()).toEqual({ exiting: 'terminating' });
    expect(p.ended().at(-1)).toEqual(
      expect.objectContaining({ jobId: 'J2', outcome: 'success', processKept: false }),
    );
    p.host({ type: 'CHILD_EXITED', code: 0, signal: null });
    expect(p.state()).toBe('finished');
  });

  it.each([
    ['a failed job', { outcome: 'failed', clean: true, rssGrowthMb: 1 }],
    ['a callback that overran or threw, or a room not left in time', { clean: false }],
    ['RSS grown past reuseMemoryGrowthMb', { rssGrowthMb: 51 }],
    ['unknown teardown facts', { clean: undefined, rssGrowthMb: undefined }],
  ] as const)('ends the process after %s', (_, over) => {
    const p = runningProcess({ maxJobs: 5, memoryGrowthMb: 50 });
    p.host({ ...clean(), ...over });
    expect(p.state()).toEqual({ exiting: 'terminating' });
    expect(p.terminated()).toBe(true);
    expect(p.ended()).toEqual([expect.objectContaining({ processKept: false })]);
  });

  it('never goes back to idle without the option', () => {
    const p = runningProcess();
    p.host(clean(0));
    expect(p.state()).toEqual({ exiting: 'terminating' });
    expect(p.ended()).toEqual([expect.objectContaining({ processKept: false })]);
  });
});

const register = { type: 'REGISTERED', workerId: 'AW_test', serverVersion: '1.13.5' } as const;

async function worker(options: Parameters<typeof startWorkerChart>[0] = {}) {
  const w = startWorkerChart(options);
  w.server(register);
  await w.flush();
  const assign = async (id: string) => {
    const job = makeJob(id);
    w.server({ type: 'AVAILABILITY_REQUESTED', job });
    await w.flush();
    w.server({ type: 'JOB_ASSIGNED', job, token: 'tok', url: undefined });
    await w.flush();
  };
  const procOf = (jobId: string) => w.actor.getSnapshot().context.jobs[jobId]?.procId;
  const procs = () => w.actor.getSnapshot().context.procs;
  const launchesOn = (procId: string) =>
    w.hosts.get(procId)?.commands.filter((c) => c.type === 'JOB_LAUNCH_REQUESTED').length ?? 0;
  const terminated = (procId: string) =>
    w.hosts.get(procId)?.commands.some((c) => c.type === 'EXIT_REQUESTED') ?? true;
  return { ...w, assign, procOf, procs, launchesOn, terminated };
}

/** AJ_1 runs in the one warm process (`first`); AJ_2 is queued, its process still starting. */
async function oneJobRunningOneQueued() {
  const w = await worker({
    options: { numIdleProcesses: 1, jobsPerProcess: 2 },
    autoPrewarm: false,
  });
  const [first] = [...w.hosts.keys()];
  w.hosts.get(first!)!.send({ type: 'PREWARM_SUCCEEDED' });
  await w.flush();
  await w.assign('AJ_1');
  await w.assign('AJ_2');
  return { w, first: first! };
}

describe('process reuse: the worker chart', () => {
  it('gives the next job to the process that came back, starting no process for it', async () => {
    const w = await worker({
      options: { numIdleProcesses: 1, jobsPerProcess: 3, reusedSpareRefillDelay: 5_000 },
    });
    await w.assign('AJ_1');
    const first = w.procOf('AJ_1')!;
    // Its process may come back: no spare is started for it while the job is short.
    w.clock.increment(1_000);
    await w.flush();
    expect(w.hosts.size).toBe(1);
    w.hosts.get(first)!.send(clean());
    await w.flush();
    expect(w.procs()[first]).toMatchObject({ phase: 'idle', jobId: undefined });
    expect(w.jobStatuses().at(-1)).toMatchObject({ jobId: 'AJ_1', outcome: 'success' });
    expect(w.emitted).toContainEqual({ type: 'processReused', procId: first });

    await w.assign('AJ_2');
    expect(w.procOf('AJ_2')).toBe(first);
    expect(w.launchesOn(first)).toBe(2);
    expect(w.hosts.size).toBe(1);
  });

  it('replaces the spare a job in a reusable process took only if the job outlasts reusedSpareRefillDelay', async () => {
    const w = await worker({
      options: { numIdleProcesses: 1, jobsPerProcess: 3, reusedSpareRefillDelay: 5_000 },
    });
    await w.assign('AJ_1');
    w.clock.increment(4_999);
    await w.flush();
    expect(w.hosts.size).toBe(1);
    w.clock.increment(1);
    await w.flush();
    expect(w.hosts.size).toBe(2);
    // A job on its process's last turn gets its spare replaced as without reuse (0.5 s).
    const v = await worker({
      options: { numIdleProcesses: 1, jobsPerProcess: 1, reusedSpareRefillDelay: 5_000 },
    });
    await v.assign('AJ_1');
    v.clock.increment(500);
    await v.flush();
    expect(v.hosts.size).toBe(2);
  });

  it('replaces the last spare after spareRefillDelay when a job in a reusable process takes it while others run (a burst)', async () => {
    const w = await worker({
      options: { numIdleProcesses: 2, jobsPerProcess: 3, reusedSpareRefillDelay: 5_000 },
    });
    await w.assign('AJ_1');
    await w.assign('AJ_2');
    const busy = [w.procOf('AJ_1'), w.procOf('AJ_2')];
    // AJ_1 left a spare (AJ_2's process): its refill waits. AJ_2 took the last one: jobs come
    // faster than processes come back, so the pool is topped up after spareRefillDelay.
    w.clock.increment(499);
    await w.flush();
    expect(w.hosts.size).toBe(2);
    w.clock.increment(1);
    await w.flush();
    expect(w.hosts.size).toBe(4);
    const fresh = Object.keys(w.procs()).filter((id) => !busy.includes(id));
    expect(fresh).toHaveLength(2);
    for (const id of fresh) expect(w.procs()[id]?.jobId).toBeUndefined();
    // (A lone job that took the only spare is no burst: the test above.)
  });

  it('lets a process beyond the spares go after surplusIdleTimeout, unless a job takes it first', async () => {
    const w = await worker({
      options: { numIdleProcesses: 1, jobsPerProcess: 3, surplusIdleTimeout: 5_000 },
    });
    await w.assign('AJ_1');
    const first = w.procOf('AJ_1')!;
    w.hosts.get(first)!.send(clean());
    await w.flush();
    w.clock.increment(4_000);
    await w.assign('AJ_2'); // takes it in time: its idle timer is cancelled
    expect(w.procOf('AJ_2')).toBe(first);
    w.clock.increment(2_000);
    expect(w.terminated(first)).toBe(false);

    w.hosts.get(first)!.send(clean());
    await w.flush();
    w.clock.increment(4_999);
    expect(w.terminated(first)).toBe(false);
    w.clock.increment(1);
    await w.flush();
    // Let go: the pool is back to its one spare.
    expect(w.procs()[first]).toBeUndefined();
    const idle = Object.values(w.procs()).filter((p) => p.phase === 'idle');
    expect(idle).toHaveLength(1);
    expect(w.emitted).toContainEqual(
      expect.objectContaining({ type: 'processExited', procId: first, failed: false }),
    );
  });

  it('keeps a process that came back when it is one of the spares wanted', async () => {
    const w = await worker({
      options: { numIdleProcesses: 2, jobsPerProcess: 3, surplusIdleTimeout: 5_000 },
      autoPrewarm: false,
    });
    const [a, b] = [...w.hosts.keys()];
    w.hosts.get(a!)!.send({ type: 'PREWARM_SUCCEEDED' });
    await w.flush();
    await w.assign('AJ_1');
    expect(w.procOf('AJ_1')).toBe(a);
    // The other spare never gets warm, and the replacement is still starting.
    w.hosts.get(a!)!.send(clean());
    await w.flush();
    w.clock.increment(6_000);
    await w.flush();
    expect(w.procs()[a!]).toMatchObject({ phase: 'idle' });
    expect(w.procs()[b!]).toMatchObject({ phase: 'prewarming' });
  });

  it('hands a queued job to a process as it comes back', async () => {
    const { w, first } = await oneJobRunningOneQueued();
    expect(w.actor.getSnapshot().context.jobs['AJ_2']?.phase).toBe('queued');
    w.hosts.get(first)!.send(clean());
    await w.flush();
    expect(w.procOf('AJ_2')).toBe(first);
    expect(w.actor.getSnapshot().context.jobs['AJ_2']?.phase).toBe('running');
  });

  it('while draining, still gives a queued job to a process that comes back', async () => {
    const { w, first } = await oneJobRunningOneQueued();
    w.actor.send({ type: 'DRAIN_REQUESTED', reason: 'SIGTERM' });
    expect(w.actor.getSnapshot().context.jobs['AJ_2']?.phase).toBe('queued');
    w.hosts.get(first)!.send(clean());
    await w.flush();
    expect(w.procOf('AJ_2')).toBe(first);
    expect(w.lifecycle().lifecycle).toEqual({ draining: 'waitingForJobs' });
  });

  it('does not reuse a process that started before the code was replaced (dev reload)', async () => {
    const w = await worker({ options: { numIdleProcesses: 1, jobsPerProcess: 3 } });
    await w.assign('AJ_1');
    const first = w.procOf('AJ_1')!;
    w.actor.send({ type: 'PROCESSES_RECYCLE_REQUESTED', reason: 'code changed' });
    await w.flush();
    w.hosts.get(first)!.send(clean());
    await w.flush();
    expect(w.procs()[first]).toBeUndefined();
    expect(w.emitted).not.toContainEqual({ type: 'processReused', procId: first });
  });

  it('lets a process that came back go while draining', async () => {
    const w = await worker({ options: { numIdleProcesses: 1, jobsPerProcess: 3 } });
    await w.assign('AJ_1');
    await w.assign('AJ_2');
    const first = w.procOf('AJ_1')!;
    w.actor.send({ type: 'DRAIN_REQUESTED', reason: 'SIGTERM' });
    w.hosts.get(first)!.send(clean());
    await w.flush();
    // AJ_2 keeps the worker draining; AJ_1's process was not kept for a job that cannot come.
    expect(w.lifecycle().lifecycle).toEqual({ draining: 'waitingForJobs' });
    expect(w.procs()[first]).toBeUndefined();
    expect(w.jobStatuses()).toContainEqual(
      expect.objectContaining({ jobId: 'AJ_1', outcome: 'success' }),
    );
  });
});

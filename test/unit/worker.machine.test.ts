import { describe, expect, it } from 'vitest';
import { makeJob, startWorkerChart } from '../support/worker-chart-harness.ts';

const register = { type: 'REGISTERED', workerId: 'AW_test', serverVersion: '1.13.5' } as const;

async function registered(opts: Parameters<typeof startWorkerChart>[0] = {}) {
  const w = startWorkerChart(opts);
  w.server(register);
  await w.flush();
  return w;
}

async function acceptAndAssign(w: Awaited<ReturnType<typeof registered>>, id: string) {
  const job = makeJob(id);
  w.server({ type: 'AVAILABILITY_REQUESTED', job });
  await w.flush();
  w.server({ type: 'JOB_ASSIGNED', job, token: 'tok', url: undefined });
  await w.flush();
  return job;
}

describe('worker chart', () => {
  it('asks the link to connect, then is available once registered', async () => {
    const w = startWorkerChart();
    expect(w.link[0]).toEqual({ type: 'CONNECT_REQUESTED' });
    expect(w.lifecycle().lifecycle).toBe('connecting');
    w.server(register);
    expect(w.lifecycle().lifecycle).toEqual({ registered: 'available' });
    expect(w.statuses().at(-1)).toMatchObject({ status: 'available', jobCount: 0 });
  });

  it('prewarms numIdleProcesses processes at start', async () => {
    const w = startWorkerChart({ options: { numIdleProcesses: 3 } });
    expect(w.hosts.size).toBe(3);
    const procs = Object.values(w.actor.getSnapshot().context.procs);
    expect(procs.every((p) => p.phase === 'idle')).toBe(true);
  });

  it('accepts a request, launches the job in a warm process and replaces it', async () => {
    const w = await registered({ options: { numIdleProcesses: 1 } });
    const [firstProc] = [...w.hosts.keys()];
    await acceptAndAssign(w, 'AJ_1');
    expect(w.answers()).toEqual([
      expect.objectContaining({
        jobId: 'AJ_1',
        acceptArguments: expect.objectContaining({ identity: 'agent-AJ_1' }),
      }),
    ]);
    const launched = w.hosts.get(firstProc!)!.commands.find((c) => c.type === 'LAUNCH_JOB');
    expect(launched).toMatchObject({
      job: { jobId: 'AJ_1', token: 'tok', url: 'ws://server.test', workerId: 'AW_test' },
    });
    expect(w.hosts.size).toBe(2);
    expect(w.jobStatuses()).toContainEqual(
      expect.objectContaining({ jobId: 'AJ_1', outcome: 'running' }),
    );
  });

  it('reports the job end with its status and reason', async () => {
    const w = await registered({ options: { numIdleProcesses: 1 } });
    const [procId] = [...w.hosts.keys()];
    await acceptAndAssign(w, 'AJ_1');
    w.hosts
      .get(procId!)!
      .send({ type: 'JOB_RETURNED', outcome: 'failed', reason: 'entrypoint threw: boom' });
    w.hosts.get(procId!)?.send({ type: 'CHILD_EXITED', code: 0, signal: null });
    await w.flush();
    expect(w.jobStatuses().at(-1)).toEqual({
      type: 'JOB_STATUS_REPORTED',
      jobId: 'AJ_1',
      outcome: 'failed',
      error: 'entrypoint threw: boom',
    });
    expect(w.actor.getSnapshot().context.jobs).toEqual({});
  });

  it('goes full when load reaches the threshold and back when it drops', async () => {
    const w = await registered();
    w.server({ type: 'LOAD_SAMPLED', load: 0.7 } as never);
    expect(w.lifecycle().lifecycle).toEqual({ registered: 'full' });
    expect(w.statuses().at(-1)).toMatchObject({ status: 'full', load: 0.7 });
    w.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob('AJ_2') });
    expect(w.answers().at(-1)).toEqual({
      type: 'AVAILABILITY_ANSWERED',
      jobId: 'AJ_2',
      acceptArguments: undefined,
    });
    w.server({ type: 'LOAD_SAMPLED', load: 0.2 } as never);
    expect(w.lifecycle().lifecycle).toEqual({ registered: 'available' });
  });

  it('never lets two simultaneous requests take the last slot', async () => {
    const w = await registered({ options: { maxJobs: 1 } });
    w.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob('AJ_a') });
    w.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob('AJ_b') });
    await w.flush();
    const answers = w.answers();
    expect(
      answers.filter((a) => a.type === 'AVAILABILITY_ANSWERED' && a.acceptArguments),
    ).toHaveLength(1);
    expect(answers).toContainEqual({
      type: 'AVAILABILITY_ANSWERED',
      jobId: 'AJ_b',
      acceptArguments: undefined,
    });
    expect(w.lifecycle().lifecycle).toEqual({ registered: 'full' });
  });

  it('releases the slot when the assignment never comes', async () => {
    const w = await registered({ options: { maxJobs: 1 } });
    w.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob('AJ_a') });
    await w.flush();
    expect(w.lifecycle().lifecycle).toEqual({ registered: 'full' });
    w.clock.increment(7_500);
    await w.flush();
    expect(w.lifecycle().lifecycle).toEqual({ registered: 'available' });
  });

  it('declines when requestFnc rejects and when it outruns its budget', async () => {
    const w = await registered({
      decide: async (job) =>
        job.id === 'AJ_no' ? { accepted: false, reason: 'no' } : new Promise(() => undefined),
    });
    w.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob('AJ_no') });
    w.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob('AJ_slow') });
    await w.flush();
    expect(w.answers()).toEqual([
      { type: 'AVAILABILITY_ANSWERED', jobId: 'AJ_no', acceptArguments: undefined },
    ]);
    w.clock.increment(2_000);
    await w.flush();
    expect(w.answers().at(-1)).toEqual({
      type: 'AVAILABILITY_ANSWERED',
      jobId: 'AJ_slow',
      acceptArguments: undefined,
    });
    expect(w.emitted).toContainEqual(
      expect.objectContaining({
        type: 'requestAnswered',
        jobId: 'AJ_slow',
        reason: expect.stringContaining('2000 ms'),
      }),
    );
  });

  it('labels every answer with its decision, the reason beside it', async () => {
    const early = startWorkerChart();
    early.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob('AJ_early') });
    const w = await registered({
      options: { numIdleProcesses: 1 },
      decide: async (job) => {
        if (job.id === 'AJ_no') return { accepted: false, reason: 'rejected by requestFnc' };
        if (job.id === 'AJ_throws') throw new Error('boom');
        if (job.id === 'AJ_slow') return new Promise(() => undefined);
        return {
          accepted: true,
          acceptArguments: { name: '', identity: 'a', metadata: '', attributes: {} },
        };
      },
    });
    for (const id of ['AJ_yes', 'AJ_no', 'AJ_throws', 'AJ_slow']) {
      w.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob(id) });
    }
    await w.flush();
    w.clock.increment(2_000);
    w.server({ type: 'LOAD_SAMPLED', load: 0.9 } as never);
    w.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob('AJ_full') });
    w.actor.send({ type: 'DRAIN_REQUESTED', reason: 'SIGTERM' });
    w.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob('AJ_draining') });
    const answers = [...early.emitted, ...w.emitted].flatMap((e) =>
      e.type === 'requestAnswered' ? [[e.jobId, e.decision, e.reason]] : [],
    );
    expect(answers).toEqual([
      ['AJ_early', 'unavailable', 'not available'],
      ['AJ_yes', 'accepted', ''],
      ['AJ_no', 'rejected', 'rejected by requestFnc'],
      ['AJ_throws', 'error', 'requestFnc threw: boom'],
      ['AJ_slow', 'timeout', 'requestFnc did not answer within 2000 ms'],
      ['AJ_full', 'full', 'full'],
      // Draining reports the worker full to the server, and says no as `unavailable`.
      ['AJ_draining', 'unavailable', 'not available'],
    ]);
  });

  it('reports its status every status interval', async () => {
    const w = await registered();
    const before = w.statuses().length;
    w.clock.increment(2_500);
    w.clock.increment(2_500);
    expect(w.statuses().length).toBe(before + 2);
  });

  it('reconnects with backoff after losing the server, keeping jobs running', async () => {
    const w = await registered({ options: { numIdleProcesses: 1 } });
    await acceptAndAssign(w, 'AJ_1');
    w.server({ type: 'SERVER_LOST', reason: 'closed' });
    expect(w.lifecycle().lifecycle).toBe('reconnecting');
    const connects = () => w.link.filter((c) => c.type === 'CONNECT_REQUESTED').length;
    expect(connects()).toBe(1);
    w.clock.increment(499);
    expect(connects()).toBe(1);
    w.clock.increment(1);
    expect(connects()).toBe(2);
    w.server({ type: 'SERVER_LOST', reason: 'refused' });
    w.clock.increment(999);
    expect(connects()).toBe(2);
    w.clock.increment(1);
    expect(connects()).toBe(3);
    w.server(register);
    expect(w.lifecycle().lifecycle).toEqual({ registered: 'available' });
    expect(Object.keys(w.actor.getSnapshot().context.jobs)).toEqual(['AJ_1']);
  });

  it('stops when the server refuses the worker', async () => {
    const w = startWorkerChart();
    w.server({ type: 'SERVER_REFUSED', reason: 'HTTP 401' });
    expect(w.actor.getSnapshot().status).toBe('done');
    expect(w.emitted).toContainEqual({ type: 'stopped', reason: 'HTTP 401' });
  });

  it('drains: unavailable at once, declines new requests, stops when the last job ends', async () => {
    const w = await registered({ options: { numIdleProcesses: 1 } });
    const [procId] = [...w.hosts.keys()];
    await acceptAndAssign(w, 'AJ_1');
    w.actor.send({ type: 'DRAIN_REQUESTED', reason: 'SIGTERM' });
    expect(w.lifecycle().lifecycle).toEqual({ draining: 'waitingForJobs' });
    expect(w.statuses().at(-1)).toMatchObject({ status: 'full' });
    w.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob('AJ_2') });
    expect(w.answers().at(-1)).toEqual({
      type: 'AVAILABILITY_ANSWERED',
      jobId: 'AJ_2',
      acceptArguments: undefined,
    });
    w.hosts
      .get(procId!)!
      .send({ type: 'JOB_RETURNED', outcome: 'success', reason: 'room disconnected' });
    await w.flush();
    expect(w.actor.getSnapshot().status).toBe('done');
  });

  it('asks running jobs to shut down when the drain timeout passes', async () => {
    const w = await registered({ options: { numIdleProcesses: 1, drainTimeout: 1_000 } });
    const [procId] = [...w.hosts.keys()];
    await acceptAndAssign(w, 'AJ_1');
    w.actor.send({ type: 'DRAIN_REQUESTED', reason: 'SIGTERM' });
    w.clock.increment(1_000);
    expect(w.hosts.get(procId!)!.commands).toContainEqual({
      type: 'SHUTDOWN_JOB',
      reason: 'drain timeout',
    });
  });

  it('backs off instead of respawning failed prewarms in a loop, and reports full', async () => {
    const w = startWorkerChart({ options: { numIdleProcesses: 1 }, autoPrewarm: false });
    w.server(register);
    const first = [...w.hosts.values()][0]!;
    first.send({ type: 'PREWARM_FAILED', error: 'boom' });
    await w.flush();
    expect(w.lifecycle().processes).toBe('backingOff');
    expect(w.lifecycle().lifecycle).toEqual({ registered: 'full' });
    expect(w.hosts.size).toBe(0);
    w.clock.increment(1_000);
    expect(w.hosts.size).toBe(1);
  });

  it('recycles idle processes into fresh ones and leaves running jobs alone', async () => {
    const w = await registered({ options: { numIdleProcesses: 2 } });
    await acceptAndAssign(w, 'AJ_1');
    const before = Object.values(w.actor.getSnapshot().context.procs);
    const running = before.find((p) => p.jobId === 'AJ_1')!;
    const idle = before.filter((p) => !p.jobId).map((p) => p.procId);
    expect(idle).toHaveLength(2);
    w.actor.send({ type: 'PROCESSES_RECYCLE_REQUESTED', reason: 'code changed' });
    await w.flush();
    for (const id of idle) {
      expect(w.hosts.get(id)?.commands ?? [{ type: 'TERMINATE_PROCESS' }]).toContainEqual({
        type: 'TERMINATE_PROCESS',
      });
    }
    const after = Object.values(w.actor.getSnapshot().context.procs);
    expect(after.find((p) => p.procId === running.procId)?.phase).toBe('running');
    const fresh = after.filter((p) => !p.jobId && !idle.includes(p.procId));
    expect(fresh).toHaveLength(2);
    expect(fresh.every((p) => p.phase === 'idle')).toBe(true);
  });

  it('forwards a job simulation request to the server only when registered', async () => {
    const w = startWorkerChart();
    w.actor.send({ type: 'JOB_SIMULATION_REQUESTED', roomName: 'early' });
    w.server(register);
    w.actor.send({ type: 'JOB_SIMULATION_REQUESTED', roomName: 'r1' });
    const sims = w.link.filter((c) => c.type === 'JOB_SIMULATION_REQUESTED');
    expect(sims).toEqual([
      { type: 'JOB_SIMULATION_REQUESTED', roomName: 'r1', participantIdentity: undefined },
    ]);
  });

  it('never reports available on registration while load is at the threshold', async () => {
    const w = startWorkerChart();
    w.server({ type: 'LOAD_SAMPLED', load: 0.9 } as never);
    w.server(register);
    expect(w.lifecycle().lifecycle).toEqual({ registered: 'full' });
    expect(w.statuses().map((s) => s.type === 'WORKER_STATUS_REPORTED' && s.status)).toEqual([
      'full',
    ]);
  });

  it('reports jobs still running as failed when the worker is forced to stop', async () => {
    const w = await registered({ options: { numIdleProcesses: 1 } });
    await acceptAndAssign(w, 'AJ_1');
    w.actor.send({ type: 'FORCE_STOP_REQUESTED', reason: 'second SIGINT' });
    expect(w.actor.getSnapshot().status).toBe('done');
    expect(w.jobStatuses().at(-1)).toEqual({
      type: 'JOB_STATUS_REPORTED',
      jobId: 'AJ_1',
      outcome: 'failed',
      error: 'worker stopped: second SIGINT',
    });
    expect(w.link.at(-1)).toEqual({ type: 'DISCONNECT_REQUESTED' });
  });

  it('answers a request still being decided when forced to stop, in its records too', async () => {
    const w = await registered({ decide: () => new Promise(() => undefined) });
    w.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob('AJ_pending') });
    await w.flush();
    w.actor.send({ type: 'FORCE_STOP_REQUESTED', reason: 'second SIGINT' });
    expect(w.actor.getSnapshot().status).toBe('done');
    expect(w.answers()).toEqual([
      { type: 'AVAILABILITY_ANSWERED', jobId: 'AJ_pending', acceptArguments: undefined },
    ]);
    // Logs and metrics follow `requestAnswered`: every offer gets exactly one.
    const answered = w.emitted.filter((e) => e.type === 'requestAnswered');
    expect(answered).toEqual([
      expect.objectContaining({
        jobId: 'AJ_pending',
        decision: 'unavailable',
        reason: 'worker stopped: second SIGINT',
      }),
    ]);
  });

  it('backs off when a process started on demand for a job fails its prewarm', async () => {
    const w = startWorkerChart({ options: { numIdleProcesses: 0 }, autoPrewarm: false });
    w.server(register);
    await acceptAndAssign(w, 'AJ_1');
    const [host] = [...w.hosts.values()];
    host!.send({ type: 'PREWARM_FAILED', error: 'model missing' });
    await w.flush();
    expect(w.jobStatuses().at(-1)).toMatchObject({ jobId: 'AJ_1', outcome: 'failed' });
    expect(w.lifecycle().processes).toBe('backingOff');
    expect(w.lifecycle().lifecycle).toEqual({ registered: 'full' });
  });

  it('is full while as many processes are starting for jobs as it may start at once, and no idle one is left', async () => {
    const w = startWorkerChart({
      options: { numIdleProcesses: 1, maxConcurrentPrewarms: 2 },
      autoPrewarm: false,
    });
    w.server(register);
    [...w.hosts.values()][0]!.send({ type: 'PREWARM_SUCCEEDED' });
    // The warm spare takes the first job; its replacement warms in the background (not counted).
    await acceptAndAssign(w, 'AJ_1');
    expect(w.lifecycle().lifecycle).toEqual({ registered: 'available' });
    // Two more jobs need processes of their own: 2 of 2 starting for jobs, none idle.
    await acceptAndAssign(w, 'AJ_2');
    expect(w.lifecycle().lifecycle).toEqual({ registered: 'available' });
    await acceptAndAssign(w, 'AJ_3');
    expect(w.lifecycle().lifecycle).toEqual({ registered: 'full' });
    w.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob('AJ_4') });
    expect(w.answers().at(-1)).toEqual({
      type: 'AVAILABILITY_ANSWERED',
      jobId: 'AJ_4',
      acceptArguments: undefined,
    });
    // One of them gets warm and runs its job: a process can be started for a job again.
    const procs = Object.values(w.actor.getSnapshot().context.procs);
    const forJob2 = procs.find((p) => p.jobId === 'AJ_2')!;
    w.hosts.get(forJob2.procId)!.send({ type: 'PREWARM_SUCCEEDED' });
    await w.flush();
    expect(w.lifecycle().lifecycle).toEqual({ registered: 'available' });
  });
});

import { describe, expect, it } from 'vitest';
import {
  DEFAULT_KILL_TIMEOUT,
  DEFAULT_TERMINATE_TIMEOUT,
} from '../../machines/jobProcess.contract.ts';
import { SPARE_REFILL_DELAY } from '../../src/options/chart-options.ts';
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
    const launched = w.hosts
      .get(firstProc!)!
      .commands.find((c) => c.type === 'JOB_LAUNCH_REQUESTED');
    expect(launched).toMatchObject({
      job: { jobId: 'AJ_1', token: 'tok', url: 'ws://server.test', workerId: 'AW_test' },
    });
    // The replacement waits while the job joins its room, then starts.
    expect(w.hosts.size).toBe(1);
    w.clock.increment(SPARE_REFILL_DELAY - 1);
    await w.flush();
    expect(w.hosts.size).toBe(1);
    w.clock.increment(1);
    await w.flush();
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

  it('holds no actor for a finished process or request, however many jobs it has run', async () => {
    const w = await registered({
      options: { numIdleProcesses: 2, maxJobs: 3 },
      decide: async (job) =>
        job.id.startsWith('AJ_no')
          ? { accepted: false, reason: 'no' }
          : {
              accepted: true,
              acceptArguments: { name: '', identity: job.id, metadata: '', attributes: {} },
            },
    });
    for (let i = 0; i < 5; i++) {
      const job = await acceptAndAssign(w, `AJ_${i}`);
      const procId = w.actor.getSnapshot().context.jobs[job.id]!.procId!;
      w.hosts.get(procId)!.send({ type: 'JOB_RETURNED', outcome: 'success', reason: 'done' });
      w.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob(`AJ_no_${i}`) });
      // Accepted, never assigned: the slot is released at the assignment timeout.
      w.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob(`AJ_lost_${i}`) });
      await w.flush();
      w.clock.increment(10_000);
      await w.flush();
    }
    const { children, context } = w.actor.getSnapshot();
    const answered = (prefix: string) =>
      w
        .answers()
        .filter((a) => a.jobId.startsWith(prefix))
        .map((a) => a.acceptArguments !== undefined);
    expect(answered('AJ_lost')).toEqual([true, true, true, true, true]);
    expect(answered('AJ_no')).toEqual([false, false, false, false, false]);
    expect(w.jobStatuses().filter((s) => s.outcome === 'success')).toHaveLength(5);
    expect(context.jobs).toEqual({});
    expect(Object.keys(children).sort()).toEqual(
      ['link', 'load', ...Object.keys(context.procs)].sort(),
    );
    expect(Object.keys(context.procs)).toHaveLength(2);
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
      type: 'JOB_SHUTDOWN_REQUESTED',
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
    w.clock.increment(SPARE_REFILL_DELAY);
    await w.flush();
    const before = Object.values(w.actor.getSnapshot().context.procs);
    const running = before.find((p) => p.jobId === 'AJ_1')!;
    const idle = before.filter((p) => !p.jobId).map((p) => p.procId);
    expect(idle).toHaveLength(2);
    w.actor.send({ type: 'PROCESSES_RECYCLE_REQUESTED', reason: 'code changed' });
    await w.flush();
    for (const id of idle) {
      expect(w.hosts.get(id)?.commands.some((c) => c.type === 'EXIT_REQUESTED') ?? true).toBe(true);
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

  it('stops only once every process has exited, however it is asked again meanwhile', async () => {
    const w = await registered({ options: { numIdleProcesses: 1 }, exitOnSignal: false });
    await acceptAndAssign(w, 'AJ_1');
    w.clock.increment(SPARE_REFILL_DELAY);
    await w.flush();
    expect(w.hosts.size).toBe(2);
    w.actor.send({ type: 'FORCE_STOP_REQUESTED', reason: 'second SIGTERM' });
    await w.flush();
    // The job's process is killed, the spare told to exit; the job's end is reported at once,
    // and the worker waits.
    const lastCommands = [...w.hosts.values()].map((h) => h.commands.at(-1)?.type).sort();
    expect(lastCommands).toEqual(['EXIT_REQUESTED', 'SIGKILL_REQUESTED']);
    expect(w.jobStatuses().at(-1)).toMatchObject({ jobId: 'AJ_1', outcome: 'failed' });
    expect(w.lifecycle().lifecycle).toBe('stopping');
    expect(w.actor.getSnapshot().status).toBe('active');
    expect(w.emitted.some((e) => e.type === 'stopped')).toBe(false);
    w.actor.send({ type: 'FORCE_STOP_REQUESTED', reason: 'third SIGTERM' });
    await w.flush();
    expect(
      w.jobStatuses().filter((s) => s.jobId === 'AJ_1' && s.outcome === 'failed'),
    ).toHaveLength(1);

    const [first, second] = [...w.hosts.values()];
    first!.send({ type: 'CHILD_EXITED', code: null, signal: 'SIGKILL' });
    await w.flush();
    expect(w.lifecycle().lifecycle).toBe('stopping');
    second!.send({ type: 'CHILD_EXITED', code: null, signal: 'SIGKILL' });
    await w.flush();
    expect(w.actor.getSnapshot().status).toBe('done');
    expect(w.emitted.filter((e) => e.type === 'stopped')).toEqual([
      { type: 'stopped', reason: 'second SIGTERM' },
    ]);
  });

  it('gives a spare that exits neither when told nor on SIGKILL up after its timeouts, then stops', async () => {
    const w = await registered({ options: { numIdleProcesses: 1 }, exitOnSignal: false });
    w.actor.send({ type: 'DRAIN_REQUESTED', reason: 'SIGTERM' });
    await w.flush();
    expect(w.lifecycle().lifecycle).toBe('stopping');
    const [spare] = [...w.hosts.values()];
    expect(spare!.commands.at(-1)).toMatchObject({ type: 'EXIT_REQUESTED', captureStack: false });
    w.clock.increment(DEFAULT_TERMINATE_TIMEOUT);
    await w.flush();
    expect(spare!.commands.at(-1)).toEqual({ type: 'SIGKILL_REQUESTED' });
    w.clock.increment(DEFAULT_KILL_TIMEOUT - 1);
    await w.flush();
    expect(w.actor.getSnapshot().status).toBe('active');
    w.clock.increment(1);
    await w.flush();
    expect(w.actor.getSnapshot().status).toBe('done');
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

  it('queues an assigned job with no warm process and runs it on the next one to get warm', async () => {
    const w = startWorkerChart({ options: { numIdleProcesses: 0 }, autoPrewarm: false });
    w.server(register);
    await acceptAndAssign(w, 'AJ_1');
    expect(w.actor.getSnapshot().context.jobs['AJ_1']).toMatchObject({
      phase: 'queued',
      procId: undefined,
    });
    const [host] = [...w.hosts.values()];
    host!.send({ type: 'PREWARM_SUCCEEDED' });
    await w.flush();
    expect(host!.commands).toContainEqual(
      expect.objectContaining({
        type: 'JOB_LAUNCH_REQUESTED',
        job: expect.objectContaining({ jobId: 'AJ_1' }),
      }),
    );
    expect(w.jobStatuses().at(-1)).toMatchObject({ jobId: 'AJ_1', outcome: 'running' });
    expect(pendingStartDeadlines(w)).toEqual([]);
  });

  it('retries a queued job on another process when a start fails, after the backoff', async () => {
    const w = startWorkerChart({ options: { numIdleProcesses: 0 }, autoPrewarm: false });
    w.server(register);
    await acceptAndAssign(w, 'AJ_1');
    const [first] = [...w.hosts.values()];
    first!.send({ type: 'PREWARM_FAILED', error: 'model missing' });
    await w.flush();
    // The job is not failed by its process's failure: it waits for the next one.
    expect(w.jobStatuses()).toEqual([]);
    expect(w.actor.getSnapshot().context.jobs['AJ_1']?.phase).toBe('queued');
    expect(w.lifecycle().processes).toBe('backingOff');
    expect(w.lifecycle().lifecycle).toEqual({ registered: 'full' });
    w.clock.increment(1_000);
    const [second] = [...w.hosts.values()];
    expect(second?.procId).not.toBe(first!.procId);
    second!.send({ type: 'PREWARM_SUCCEEDED' });
    await w.flush();
    expect(w.jobStatuses()).toEqual([
      expect.objectContaining({ jobId: 'AJ_1', outcome: 'running' }),
    ]);
  });

  it('retries a job on another process when its process dies in the hand-off, once', async () => {
    const w = await registered({ options: { numIdleProcesses: 2 }, confirmLaunch: false });
    await acceptAndAssign(w, 'AJ_1');
    const launchedIn = () =>
      [...w.hosts.values()].filter((h) =>
        h.commands.some((c) => c.type === 'JOB_LAUNCH_REQUESTED' && c.job.jobId === 'AJ_1'),
      );
    const [first] = launchedIn();
    // Dies before the entrypoint ran (no JOB_RUNNING): the job is not failed, the other warm
    // process takes it at once.
    first!.send({ type: 'CHILD_EXITED', code: 1, signal: null });
    await w.flush();
    expect(w.jobStatuses()).toEqual([]);
    expect(w.emitted).toContainEqual(
      expect.objectContaining({ type: 'jobRetried', jobId: 'AJ_1', procId: first!.procId }),
    );
    const [second] = launchedIn().filter((h) => h !== first);
    expect(second).toBeDefined();
    expect(w.actor.getSnapshot().context.jobs['AJ_1']).toMatchObject({
      phase: 'launching',
      procId: second!.procId,
      launchAttempts: 2,
    });
    // A second death in the hand-off fails the job, reported with the reason.
    second!.send({ type: 'CHILD_EXITED', code: 1, signal: null });
    await w.flush();
    expect(w.jobStatuses()).toEqual([
      expect.objectContaining({ jobId: 'AJ_1', outcome: 'failed', error: 'crashed (code 1)' }),
    ]);
    expect(w.actor.getSnapshot().context.jobs).toEqual({});
    expect(pendingStartDeadlines(w)).toEqual([]);
  });

  it('does not retry a job the server terminated during its hand-off', async () => {
    const w = await registered({ options: { numIdleProcesses: 2 }, confirmLaunch: false });
    await acceptAndAssign(w, 'AJ_1');
    const [first] = [...w.hosts.values()].filter((h) =>
      h.commands.some((c) => c.type === 'JOB_LAUNCH_REQUESTED'),
    );
    w.server({ type: 'JOB_TERMINATED', jobId: 'AJ_1' });
    await w.flush();
    expect(first!.commands).toContainEqual(
      expect.objectContaining({ type: 'JOB_SHUTDOWN_REQUESTED' }),
    );
    first!.send({ type: 'CHILD_EXITED', code: 1, signal: null });
    await w.flush();
    // No other process is handed the job.
    const relaunched = [...w.hosts.values()].filter(
      (h) => h !== first && h.commands.some((c) => c.type === 'JOB_LAUNCH_REQUESTED'),
    );
    expect(relaunched).toEqual([]);
    expect(w.emitted.filter((e) => e.type === 'jobRetried')).toEqual([]);
    expect(w.jobStatuses()).toEqual([
      expect.objectContaining({ jobId: 'AJ_1', outcome: 'failed' }),
    ]);
    expect(w.actor.getSnapshot().context.jobs).toEqual({});
  });

  it('queues a job whose hand-off died when no process is warm, with its start deadline', async () => {
    const w = await registered({
      options: { numIdleProcesses: 1 },
      confirmLaunch: false,
      autoPrewarm: false,
    });
    const [first] = [...w.hosts.values()];
    first!.send({ type: 'PREWARM_SUCCEEDED' });
    await w.flush();
    await acceptAndAssign(w, 'AJ_1');
    first!.send({ type: 'CHILD_EXITED', code: null, signal: 'SIGSEGV' });
    await w.flush();
    expect(w.jobStatuses()).toEqual([]);
    expect(w.actor.getSnapshot().context.jobs['AJ_1']).toMatchObject({
      phase: 'queued',
      procId: undefined,
    });
    expect(pendingStartDeadlines(w)).toEqual(['start-deadline-AJ_1']);
    // The process started for it takes it once warm.
    const next = [...w.hosts.values()].find((h) => h !== first);
    next!.send({ type: 'PREWARM_SUCCEEDED' });
    await w.flush();
    expect(next!.commands).toContainEqual(
      expect.objectContaining({
        type: 'JOB_LAUNCH_REQUESTED',
        job: expect.objectContaining({ jobId: 'AJ_1' }),
      }),
    );
    expect(pendingStartDeadlines(w)).toEqual([]);
  });

  it('fails a queued job, with the reason, when no process gets warm before its deadline', async () => {
    const w = startWorkerChart({
      options: { numIdleProcesses: 0, jobStartBudget: 3_000, initializeProcessTimeout: 10_000 },
      autoPrewarm: false,
    });
    w.server(register);
    await acceptAndAssign(w, 'AJ_1');
    // Every start fails; the backoff doubles (1 s, 2 s, 4 s, …) and the job keeps waiting.
    for (const wait of [1_000, 2_000, 4_000]) {
      [...w.hosts.values()].at(-1)!.send({ type: 'PREWARM_FAILED', error: 'model missing' });
      await w.flush();
      expect(w.jobStatuses()).toEqual([]);
      w.clock.increment(wait);
    }
    w.clock.increment(13_000 - 7_000 - 1);
    expect(w.jobStatuses()).toEqual([]);
    w.clock.increment(1);
    expect(w.jobStatuses()).toEqual([
      {
        type: 'JOB_STATUS_REPORTED',
        jobId: 'AJ_1',
        outcome: 'failed',
        error:
          'no job process was ready within 13000 ms (last failed start: prewarm failed: model missing)',
      },
    ]);
    expect(w.emitted).toContainEqual(
      expect.objectContaining({ type: 'jobEnded', jobId: 'AJ_1', outcome: 'failed' }),
    );
    expect(w.actor.getSnapshot().context.jobs).toEqual({});
  });

  it('starts at most maxConcurrentStarts processes at once, serves a burst in order and refills the spares', async () => {
    const w = startWorkerChart({
      options: { numIdleProcesses: 1, maxConcurrentStarts: 2 },
      autoPrewarm: false,
    });
    w.server(register);
    const prewarming = () =>
      Object.values(w.actor.getSnapshot().context.procs).filter((p) => p.phase === 'prewarming');
    expect(prewarming()).toHaveLength(1);
    for (const id of ['AJ_1', 'AJ_2', 'AJ_3', 'AJ_4']) await acceptAndAssign(w, id);
    // Four jobs and a spare want five processes; two start, the rest wait for a start slot.
    expect(prewarming()).toHaveLength(2);
    const phases = () => Object.values(w.actor.getSnapshot().context.jobs).map((j) => j.phase);
    expect(phases()).toEqual(['queued', 'queued', 'queued', 'queued']);
    const launched: string[] = [];
    for (let i = 0; i < 5; i++) {
      expect(prewarming().length).toBeLessThanOrEqual(2);
      const next = prewarming()[0]!;
      w.hosts.get(next.procId)!.send({ type: 'PREWARM_SUCCEEDED' });
      await w.flush();
    }
    for (const e of w.emitted) if (e.type === 'jobLaunched') launched.push(e.jobId);
    expect(launched).toEqual(['AJ_1', 'AJ_2', 'AJ_3', 'AJ_4']);
    expect(phases()).toEqual(['running', 'running', 'running', 'running']);
    const procs = Object.values(w.actor.getSnapshot().context.procs);
    expect(procs.filter((p) => p.phase === 'idle')).toHaveLength(1);
    expect(procs).toHaveLength(5);
    expect(pendingStartDeadlines(w)).toEqual([]);
  });

  it('declines an offer its policy allows only when the expected start delay is over budget', async () => {
    const w = startWorkerChart({
      options: {
        numIdleProcesses: 0,
        maxConcurrentStarts: 1,
        initialStartEstimate: 1_000,
        jobStartBudget: 2_500,
      },
      autoPrewarm: false,
    });
    w.server(register);
    // One start at a time, 1 s each: the first two jobs start within 2.5 s, a third would not.
    await acceptAndAssign(w, 'AJ_1');
    expect(w.lifecycle().lifecycle).toEqual({ registered: 'available' });
    await acceptAndAssign(w, 'AJ_2');
    // The server still hears `available` (the policy would take more): each offer over the
    // start budget is answered, and counted, one by one.
    expect(w.lifecycle().lifecycle).toEqual({ registered: 'available' });
    const statusesBefore = w.statuses().length;
    w.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob('AJ_3') });
    expect(w.answers().at(-1)).toEqual({
      type: 'AVAILABILITY_ANSWERED',
      jobId: 'AJ_3',
      acceptArguments: undefined,
    });
    expect(w.emitted.filter((e) => e.type === 'requestAnswered').at(-1)).toEqual({
      type: 'requestAnswered',
      jobId: 'AJ_3',
      decision: 'startDelay',
      reason: 'expected start delay 3000 ms is over jobStartBudget (2500 ms)',
    });
    expect(
      w
        .statuses()
        .slice(statusesBefore)
        .map((s) => s.status),
    ).not.toContain('full');
    // Load at the threshold is the user's policy saying no: that stays `full`.
    w.server({ type: 'LOAD_SAMPLED', load: 0.8 } as never);
    w.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob('AJ_4') });
    expect(w.emitted.filter((e) => e.type === 'requestAnswered').at(-1)).toMatchObject({
      jobId: 'AJ_4',
      decision: 'full',
    });
    expect(w.lifecycle().lifecycle).toEqual({ registered: 'full' });
  });

  it('measures process starts with the chart clock and decides with the measurement', async () => {
    const w = startWorkerChart({
      options: { numIdleProcesses: 1, initialStartEstimate: 1_000 },
      autoPrewarm: false,
    });
    w.server(register);
    w.clock.increment(200);
    [...w.hosts.values()][0]!.send({ type: 'PREWARM_SUCCEEDED' });
    // A moving average: 0.7 × 1000 + 0.3 × 200.
    expect(w.actor.getSnapshot().context.startEstimate).toBe(760);
  });

  it('ends a queued job the server terminates, reported, with no deadline left behind', async () => {
    const w = startWorkerChart({ options: { numIdleProcesses: 0 }, autoPrewarm: false });
    w.server(register);
    await acceptAndAssign(w, 'AJ_1');
    expect(pendingStartDeadlines(w)).toHaveLength(1);
    w.server({ type: 'JOB_TERMINATED', jobId: 'AJ_1' });
    expect(w.jobStatuses()).toEqual([
      {
        type: 'JOB_STATUS_REPORTED',
        jobId: 'AJ_1',
        outcome: 'failed',
        error: 'terminated by the server while queued',
      },
    ]);
    expect(pendingStartDeadlines(w)).toEqual([]);
    // Its process, started for the queue, becomes an ordinary idle one.
    [...w.hosts.values()][0]!.send({ type: 'PREWARM_SUCCEEDED' });
    expect(Object.values(w.actor.getSnapshot().context.procs).map((p) => p.phase)).toEqual([
      'idle',
    ]);
  });

  it('still starts processes for jobs queued before a drain, but no spares', async () => {
    const w = startWorkerChart({
      options: { numIdleProcesses: 0, maxConcurrentStarts: 1 },
      autoPrewarm: false,
    });
    w.server(register);
    await acceptAndAssign(w, 'AJ_1');
    await acceptAndAssign(w, 'AJ_2');
    // One start slot: AJ_2's process waits for AJ_1's to finish starting.
    expect(w.hosts.size).toBe(1);
    w.actor.send({ type: 'DRAIN_REQUESTED', reason: 'SIGTERM' });
    [...w.hosts.values()][0]!.send({ type: 'PREWARM_SUCCEEDED' });
    await w.flush();
    expect(w.hosts.size).toBe(2);
    [...w.hosts.values()][1]!.send({ type: 'PREWARM_SUCCEEDED' });
    await w.flush();
    expect(w.jobStatuses().map((s) => s.type === 'JOB_STATUS_REPORTED' && s.jobId)).toEqual([
      'AJ_1',
      'AJ_2',
    ]);
    expect(w.hosts.size).toBe(2);
    expect(w.lifecycle()).toEqual({
      lifecycle: { draining: 'waitingForJobs' },
      processes: 'closed',
    });
  });

  it('fails jobs still queued when the drain deadline passes, and stops', async () => {
    const w = startWorkerChart({
      options: { numIdleProcesses: 0, drainTimeout: 1_000 },
      autoPrewarm: false,
    });
    w.server(register);
    await acceptAndAssign(w, 'AJ_1');
    w.actor.send({ type: 'DRAIN_REQUESTED', reason: 'SIGTERM' });
    w.clock.increment(1_000);
    expect(w.jobStatuses()).toEqual([
      { type: 'JOB_STATUS_REPORTED', jobId: 'AJ_1', outcome: 'failed', error: 'drain timeout' },
    ]);
    expect(w.actor.getSnapshot().status).toBe('done');
  });
});

/** Start deadlines still armed (delayed events the chart would have to cancel). */
function pendingStartDeadlines(w: ReturnType<typeof startWorkerChart>): string[] {
  const scheduled = w.actor.system.getSnapshot()._scheduledEvents;
  return Object.values(scheduled)
    .map((e) => e.id)
    .filter((id): id is string => typeof id === 'string' && id.startsWith('start-deadline-'));
}

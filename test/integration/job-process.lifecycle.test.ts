/**
 * Real job processes (tinypool child processes running tsx) driven through the jobProcess
 * chart: prewarm, launch, the ways a job ends, and that no process outlives its actor.
 */
import { describe, expect, it, vi } from 'vitest';
import { fixture, isAlive, jobInfo, useProcesses } from './job-process.harness.ts';

// Every process is stopped after its test, and none may outlive it.
const start = useProcesses();

describe('job process lifecycle', () => {
  it('prewarms once per process and hands userdata to the job', async () => {
    // At DEBUG, so a warm-up step that was skipped would be said.
    const env = { AGENTSTATE_TEST_MARKER: 'passed-through', AGENTSTATE_LOG_LEVEL: 'DEBUG' };
    const h = start({ agentModule: fixture('modes'), env });
    const warm = await h.waitFor('PROCESS_PREWARMED');
    expect(isAlive(warm.pid)).toBe(true);
    // It says its RSS once warm (the elastic pool's memory bound): a Node process with rtc-node.
    expect(warm.rssMb).toBeGreaterThan(20);
    expect(warm.rssMb).toBeLessThan(500);
    // The warm-up rehearsed the whole start, through the launch's own way in.
    expect(h.log('job runtime warm-up skipped a step')).toBeUndefined();
    h.child.send({ type: 'LAUNCH_REQUESTED', job: jobInfo({ mode: 'return' }) });
    const ended = await h.waitFor('JOB_ENDED');
    expect(ended).toMatchObject({
      outcome: 'success',
      reason: 'entrypoint returned without connecting',
      pid: warm.pid,
    });
    const entry = h.log('entrypoint');
    expect(entry?.fields).toMatchObject({
      model: `model@${warm.pid}`,
      prewarmCount: 1,
      pid: warm.pid,
    });
    // Child records reach the parent logger tagged with the job, room and pid.
    expect(entry?.fields).toMatchObject({ jobId: 'J1', roomName: 'room-1', procId: 'proc-1' });
    const exited = await h.waitFor('PROCESS_EXITED');
    expect(exited).toMatchObject({ reason: 'job finished', failed: false });
    expect(h.types()).toEqual(['PROCESS_PREWARMED', 'JOB_STARTED', 'JOB_ENDED', 'PROCESS_EXITED']);
    expect(isAlive(warm.pid)).toBe(false);
  });

  it('starts a job in an already warm process within a few milliseconds', async () => {
    const h = start({ agentModule: fixture('modes') });
    const warm = await h.waitFor('PROCESS_PREWARMED');
    const launchedAt = Date.now();
    h.child.send({ type: 'LAUNCH_REQUESTED', job: jobInfo({ mode: 'wait' }) });
    const startedJob = await h.waitFor('JOB_STARTED');
    expect(startedJob.pid).toBe(warm.pid);
    expect(startedJob.at - launchedAt).toBeLessThan(250);
    h.child.send({ type: 'SHUTDOWN_REQUESTED', reason: 'test over' });
    await h.waitFor('PROCESS_EXITED');
  });

  it('reports the job started before any record its entrypoint logs', async () => {
    const h = start({ agentModule: fixture('modes') });
    await h.waitFor('PROCESS_PREWARMED');
    // The fixture logs `entrypoint` in its first line, in the tick the job starts in.
    h.child.send({ type: 'LAUNCH_REQUESTED', job: jobInfo({ mode: 'wait' }) });
    const startedJob = await h.waitFor('JOB_STARTED');
    await vi.waitFor(() => expect(h.log('entrypoint')).toBeDefined(), { timeout: 5_000 });
    expect(startedJob.order).toBeLessThan(h.log('entrypoint')!.order);
    h.child.send({ type: 'SHUTDOWN_REQUESTED', reason: 'test over' });
    await h.waitFor('PROCESS_EXITED');
  });

  it('runs a job given in the input right after prewarm', async () => {
    const h = start({ agentModule: fixture('modes') }, { job: jobInfo({ mode: 'return' }, 'J7') });
    expect(await h.waitFor('JOB_ENDED')).toMatchObject({ jobId: 'J7', outcome: 'success' });
    await h.waitFor('PROCESS_EXITED');
  });

  it('reports a throwing entrypoint as failed after running the shutdown callbacks', async () => {
    const h = start({ agentModule: fixture('modes') }, { job: jobInfo({ mode: 'throw' }) });
    expect(await h.waitFor('JOB_ENDED')).toMatchObject({
      outcome: 'failed',
      reason: 'entrypoint threw: boom',
    });
    expect(h.log('shutdown callback ran')?.fields.reason).toBe('entrypoint threw: boom');
    expect(h.log('shutdown callback threw')).toBeDefined();
    expect(await h.waitFor('PROCESS_EXITED')).toMatchObject({
      failed: false,
      reason: 'job finished',
    });
  });

  it("ends the job on ctx.shutdown('x') with that reason", async () => {
    const h = start(
      { agentModule: fixture('modes') },
      { job: jobInfo({ mode: 'shutdown', reason: 'x' }) },
    );
    expect(await h.waitFor('JOB_ENDED')).toMatchObject({ outcome: 'success', reason: 'x' });
    expect(h.log('shutdown callback ran')?.fields.reason).toBe('x');
    await h.waitFor('PROCESS_EXITED');
  });

  it('runs the shutdown callbacks and exits on SHUTDOWN_REQUESTED', async () => {
    const h = start({ agentModule: fixture('modes') }, { job: jobInfo({ mode: 'wait' }) });
    const { pid } = await h.waitFor('JOB_STARTED');
    h.child.send({ type: 'SHUTDOWN_REQUESTED', reason: 'server terminated the job' });
    expect(await h.waitFor('JOB_ENDED')).toMatchObject({
      outcome: 'success',
      reason: 'server terminated the job',
    });
    expect(h.log('shutdown callback ran')?.fields.reason).toBe('server terminated the job');
    expect(await h.waitFor('PROCESS_EXITED')).toMatchObject({
      reason: 'job finished',
      failed: false,
    });
    expect(isAlive(pid)).toBe(false);
  });

  it('kills a job whose shutdown hangs, on the shutdown deadline', async () => {
    const h = start(
      { agentModule: fixture('modes'), shutdownCallbackTimeout: 30_000 },
      { job: jobInfo({ mode: 'hang-shutdown' }), shutdownTimeout: 600 },
    );
    await h.waitFor('JOB_STARTED');
    const askedAt = Date.now();
    h.child.send({ type: 'SHUTDOWN_REQUESTED', reason: 'drain' });
    const ended = await h.waitFor('JOB_ENDED');
    expect(ended).toMatchObject({
      outcome: 'failed',
      reason: expect.stringMatching(/^shutdown budget exceeded \(\d+ ms\)$/),
    });
    expect(ended.at - askedAt).toBeGreaterThanOrEqual(550);
    expect(await h.waitFor('PROCESS_EXITED')).toMatchObject({
      reason: expect.stringMatching(/^shutdown budget exceeded \(\d+ ms\)$/),
      failed: true,
    });
    expect(h.state()).toBe('killed');
  });

  it('hands options registered by the module (cli.runApp style) to the runtime', async () => {
    const h = start({ agentModule: fixture('registers') }, { job: jobInfo({}) });
    expect(await h.waitFor('JOB_ENDED')).toMatchObject({ outcome: 'success' });
    expect(h.log('registered entrypoint ran')).toBeDefined();
    await h.waitFor('PROCESS_EXITED');
  });

  it('stops an idle process on request without a failure', async () => {
    const h = start({ agentModule: fixture('modes') });
    const { pid } = await h.waitFor('PROCESS_PREWARMED');
    h.child.send({ type: 'SHUTDOWN_REQUESTED', reason: 'worker stopping' });
    expect(await h.waitFor('PROCESS_EXITED')).toMatchObject({
      failed: false,
      reason: 'shutdown requested: worker stopping',
    });
    expect(isAlive(pid)).toBe(false);
  });
});

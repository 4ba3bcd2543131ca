/**
 * Supervision of real job processes: prewarm deadlines and failures, crashes, memory, hangs,
 * signals, and each tinypool trap listed in docs/architecture.md §4 survived.
 */
import { describe, expect, it } from 'vitest';
import {
  childPids,
  fixture,
  isAlive,
  jobInfo,
  until,
  useProcesses,
} from './job-process.harness.ts';

// Every process is stopped after its test, and none may outlive it.
const start = useProcesses();

describe('job process supervision', () => {
  it('kills a process whose prewarm exceeds the deadline', async () => {
    const h = start(
      { agentModule: fixture('prewarm-hangs') },
      { initializeTimeout: 1500, job: jobInfo({}) },
    );
    expect(await h.waitFor('JOB_ENDED')).toMatchObject({
      outcome: 'failed',
      reason: 'prewarm timed out',
    });
    const exited = await h.waitFor('PROCESS_EXITED');
    expect(exited).toMatchObject({ reason: 'prewarm timed out', failed: true });
    expect(isAlive(exited.pid!)).toBe(false);
  });

  it('reports a failing prewarm at once and leaves nothing pending (trap: later run() hangs)', async () => {
    const h = start({ agentModule: fixture('prewarm-throws') }, { job: jobInfo({}) });
    expect(await h.waitFor('JOB_ENDED')).toMatchObject({ reason: 'prewarm failed: model missing' });
    const exited = await h.waitFor('PROCESS_EXITED', 5000);
    expect(exited).toMatchObject({ failed: true, reason: 'prewarm failed: model missing' });
    expect(h.state()).toBe('prewarmFailed');
    // The next process is a new pool: it prewarms normally.
    const next = start({ agentModule: fixture('modes') });
    await next.waitFor('PROCESS_PREWARMED');
  });

  it('reports a module that cannot be loaded as a failed prewarm', async () => {
    const h = start({ agentModule: fixture('does-not-exist') });
    expect(await h.waitFor('PROCESS_EXITED')).toMatchObject({ failed: true });
    expect(h.state()).toBe('prewarmFailed');
  });

  it('survives a process that dies before tinypool saw it ready (trap: unhandled pool error, no refill)', async () => {
    const h = start({ agentModule: fixture('modes') });
    const pid = h.pid()!;
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGKILL');
    expect(await h.waitFor('PROCESS_EXITED')).toMatchObject({
      reason: 'crashed (signal SIGKILL)',
      failed: true,
      pid,
    });
    // tinypool did emit its pool-level 'error' (no task was on the process yet); our listener took it.
    expect(h.log('tinypool reported')).toBeDefined();
    // No replacement process was forked behind our back, and a new actor still gets a process.
    expect(await until(() => childPids().length === 0)).toBe(true);
    const next = start({ agentModule: fixture('modes') });
    await next.waitFor('PROCESS_PREWARMED');
  });

  it('reports a crash during prewarm with its signal', async () => {
    const h = start({ agentModule: fixture('prewarm-hangs') });
    await until(() => h.pid() !== undefined);
    await new Promise((r) => setTimeout(r, 400)); // let it reach the prewarm
    process.kill(h.pid()!, 'SIGKILL');
    expect(await h.waitFor('PROCESS_EXITED')).toMatchObject({
      reason: 'crashed (signal SIGKILL)',
      failed: true,
    });
    expect(h.state()).toBe('crashed');
  });

  it('reports an idle crash with its signal', async () => {
    const h = start({ agentModule: fixture('modes') });
    const { pid } = await h.waitFor('PROCESS_PREWARMED');
    process.kill(pid, 'SIGSEGV');
    expect(await h.waitFor('PROCESS_EXITED')).toMatchObject({
      reason: 'crashed (signal SIGSEGV)',
      failed: true,
    });
  });

  it('reports a crash while running with its exit code, as a failed job', async () => {
    const h = start({ agentModule: fixture('modes') }, { job: jobInfo({ mode: 'exit', code: 7 }) });
    expect(await h.waitFor('JOB_ENDED')).toMatchObject({
      outcome: 'failed',
      reason: 'crashed (code 7)',
    });
    expect(await h.waitFor('PROCESS_EXITED')).toMatchObject({
      reason: 'crashed (code 7)',
      failed: true,
    });
  });

  it('ends a job over the memory limit, kills its process and reports it', async () => {
    const h = start(
      { agentModule: fixture('modes'), memoryLimitMb: 350, memoryWarnMb: 300 },
      { job: jobInfo({ mode: 'memory', mb: 450 }) },
    );
    const ended = await h.waitFor('JOB_ENDED');
    expect(ended.outcome).toBe('failed');
    expect(ended.reason).toMatch(/^memory limit \(\d+ MB > 350 MB\)$/);
    expect(await h.waitFor('PROCESS_EXITED')).toMatchObject({ failed: true });
    expect(h.state()).toBe('memoryExceeded');
    expect(isAlive(ended.pid!)).toBe(false);
  });

  it('warns above the soft memory limit without ending the job', async () => {
    const h = start(
      { agentModule: fixture('modes'), memoryWarnMb: 1 },
      { job: jobInfo({ mode: 'wait' }) },
    );
    await h.waitFor('JOB_STARTED');
    expect(
      await until(() =>
        h.logs.some((l) => l.level === 'warn' && l.message === 'job process memory is high'),
      ),
    ).toBe(true);
    expect(h.types()).not.toContain('JOB_ENDED');
    h.child.send({ type: 'SHUTDOWN_REQUESTED', reason: 'done' });
    await h.waitFor('PROCESS_EXITED');
  });

  it('ends the job of a process that stops answering pings', async () => {
    const h = start(
      { agentModule: fixture('modes'), pingTimeout: 800 },
      { job: jobInfo({ mode: 'busy' }) },
    );
    const ended = await h.waitFor('JOB_ENDED');
    expect(ended.reason).toMatch(/^unresponsive \(no pong for \d+ ms\)$/);
    expect(await h.waitFor('PROCESS_EXITED')).toMatchObject({ failed: true });
    expect(h.state()).toBe('unresponsive');
  });

  it('gives a process too stuck to exit when told our grace, not tinypool’s 1 s, then SIGKILLs it', async () => {
    const h = start(
      { agentModule: fixture('modes'), shutdownCallbackTimeout: 30_000 },
      { job: jobInfo({ mode: 'stuck-shutdown' }), shutdownTimeout: 300, terminateTimeout: 2000 },
    );
    const { pid } = await h.waitFor('JOB_STARTED');
    h.child.send({ type: 'SHUTDOWN_REQUESTED', reason: 'drain' });
    const ended = await h.waitFor('JOB_ENDED');
    await new Promise((r) => setTimeout(r, 1400));
    expect(isAlive(pid)).toBe(true); // past tinypool's 1 s: still in our grace period
    const exited = await h.waitFor('PROCESS_EXITED');
    expect(exited.at - ended.at).toBeGreaterThanOrEqual(1900);
    expect(h.log('shutdown callback blocks the event loop')).toBeDefined();
    expect(h.state()).toBe('killed');
    expect(isAlive(pid)).toBe(false);
  });

  it('ignores SIGTERM, SIGINT and SIGHUP (meant for its worker), and exits when its host tells it to', async () => {
    const h = start({ agentModule: fixture('modes') }, { job: jobInfo({ mode: 'wait' }) });
    const { pid } = await h.waitFor('JOB_STARTED');
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.kill(pid, signal);
    await new Promise((r) => setTimeout(r, 500));
    expect(isAlive(pid)).toBe(true);
    expect(h.types()).not.toContain('JOB_ENDED');
    // The job still ends the worker's way: asked, its callbacks run, then the host stops the
    // process over IPC, well before the SIGKILL its 2 s grace would end in.
    h.child.send({ type: 'SHUTDOWN_REQUESTED', reason: 'drain' });
    const ended = await h.waitFor('JOB_ENDED');
    expect(ended).toMatchObject({ outcome: 'success', reason: 'drain' });
    const exited = await h.waitFor('PROCESS_EXITED', 4000);
    expect(exited).toMatchObject({ failed: false, reason: 'job finished' });
    expect(exited.at - ended.at).toBeLessThan(1500);
    expect(h.state()).toBe('finished');
    expect(isAlive(pid)).toBe(false);
  });

  it('kills at once on KILL_REQUESTED', async () => {
    const h = start({ agentModule: fixture('modes') }, { job: jobInfo({ mode: 'wait' }) });
    await h.waitFor('JOB_STARTED');
    h.child.send({ type: 'KILL_REQUESTED', reason: 'forced stop' });
    expect(await h.waitFor('JOB_ENDED')).toMatchObject({
      outcome: 'failed',
      reason: 'kill requested: forced stop',
    });
    expect(await h.waitFor('PROCESS_EXITED', 3000)).toMatchObject({ failed: true });
  });

  it('passes the environment to the child (trap: tinypool passes none by default)', async () => {
    const h = start({ agentModule: fixture('modes') }, { job: jobInfo({ mode: 'return' }) });
    await h.waitFor('JOB_ENDED');
    expect(h.log('entrypoint')?.fields).toMatchObject({ hasPath: true, marker: 'passed-through' });
    await h.waitFor('PROCESS_EXITED');
  });

  it('keeps each warm process idle and separate (trap: minThreads counts busy processes)', async () => {
    const a = start({ agentModule: fixture('modes') });
    const b = start({ agentModule: fixture('modes') });
    const [wa, wb] = await Promise.all([
      a.waitFor('PROCESS_PREWARMED'),
      b.waitFor('PROCESS_PREWARMED'),
    ]);
    expect(wa.pid).not.toBe(wb.pid);
    a.child.send({ type: 'LAUNCH_REQUESTED', job: jobInfo({ mode: 'wait' }) });
    expect((await a.waitFor('JOB_STARTED')).pid).toBe(wa.pid);
    // The busy one did not make the pool fork a third process; the idle one is still idle and warm.
    expect(childPids().sort()).toEqual([wa.pid, wb.pid].sort());
    expect(b.state()).toBe('idle');
    b.child.send({ type: 'LAUNCH_REQUESTED', job: jobInfo({ mode: 'return' }, 'J2') });
    expect((await b.waitFor('JOB_STARTED')).pid).toBe(wb.pid);
    a.child.send({ type: 'SHUTDOWN_REQUESTED', reason: 'done' });
    await Promise.all([a.waitFor('PROCESS_EXITED'), b.waitFor('PROCESS_EXITED')]);
  });

  it('kills the process when its actor is stopped early', async () => {
    const h = start({ agentModule: fixture('modes') });
    const { pid } = await h.waitFor('PROCESS_PREWARMED');
    h.stop();
    expect(await until(() => !isAlive(pid))).toBe(true);
  });
});

/**
 * The jobProcess chart on its own (test/support/job-process-chart-harness.ts): a fake host the
 * test drives by hand, the reports collected, a SimulatedClock for every deadline.
 */
import { describe, expect, it } from 'vitest';
import { SimulatedClock, createActor, setup, spawnChild, type AnyActorRef } from 'xstate';
import type { JobProcessReport, RunningJobInfo } from '../../machines/jobProcess.contract.ts';
import {
  jobProcessMachine,
  type JobProcessMachineInput,
} from '../../machines/jobProcess.machine.ts';
import type { ProcessHostEvent } from '../../machines/processHost.contract.ts';
import { startJobProcessChart } from '../support/job-process-chart-harness.ts';

const INIT = 10_000;
const SHUTDOWN = 60_000;
const TERM = 5_000;
const KILL = 5_000;

function job(id = 'J1'): RunningJobInfo {
  return {
    jobId: id,
    job: { id, room: { name: 'room-1' } },
    acceptArguments: { name: '', identity: `agent-${id}`, metadata: '', attributes: {} },
    url: 'ws://127.0.0.1:1',
    token: 'not-a-token',
    workerId: 'W1',
  };
}

/** Starts a parent that spawns one jobProcess with a hand-driven host. */
function harness(
  extra: Partial<JobProcessMachineInput> = {},
  silence?: { silentMs: number; sinceLaunchMs: number },
) {
  const input: JobProcessMachineInput = {
    procId: 'proc-1',
    initializeTimeout: INIT,
    shutdownTimeout: SHUTDOWN,
    terminateTimeout: TERM,
    killTimeout: KILL,
    ...extra,
  };
  const chart = startJobProcessChart(input, undefined, silence);
  const { clock, commands, child } = chart;
  const h = {
    clock,
    commands,
    child,
    /** The contract's reports so far, in order. */
    get reports(): JobProcessReport[] {
      return chart.recorded.map((r) => r.report);
    },
    get hostStopped() {
      return chart.hostStopped;
    },
    host(e: ProcessHostEvent) {
      chart.host(e);
    },
    send(e: Parameters<typeof child.send>[0]) {
      child.send(e);
    },
    state(): unknown {
      return child.getSnapshot().value;
    },
    status(): string {
      return child.getSnapshot().status;
    },
    pid(): number | undefined {
      return child.getSnapshot().context.pid;
    },
    types: () => h.reports.map((r) => r.type),
    /** Brings the process to idle with pid 42. */
    warm() {
      h.host({ type: 'PROCESS_SPAWNED', pid: 42 });
      h.host({ type: 'PREWARM_SUCCEEDED' });
      return h;
    },
    /** Brings the process to running.active with job J1. */
    run() {
      h.warm();
      h.send({ type: 'LAUNCH_REQUESTED', job: job() });
      h.host({ type: 'JOB_RUNNING' });
      return h;
    },
    exited(code: number | null = 0, signal: string | null = null) {
      h.host({ type: 'CHILD_EXITED', code, signal });
    },
    last(): JobProcessReport {
      return h.reports.at(-1)!;
    },
  };
  return h;
}

describe('jobProcess chart', () => {
  it('starts prewarming and records the pid as soon as the process is spawned', () => {
    const h = harness();
    expect(h.state()).toBe('prewarming');
    h.host({ type: 'PROCESS_SPAWNED', pid: 42 });
    expect(h.pid()).toBe(42);
    expect(h.state()).toBe('prewarming');
  });

  it('becomes idle after prewarm and reports PROCESS_PREWARMED with the pid', () => {
    const h = harness().warm();
    expect(h.state()).toBe('idle');
    expect(h.reports).toEqual([{ type: 'PROCESS_PREWARMED', procId: 'proc-1', pid: 42 }]);
  });

  it('launches a job on LAUNCH and reports JOB_STARTED when the child confirms', () => {
    const h = harness().warm();
    h.send({ type: 'LAUNCH_REQUESTED', job: job() });
    expect(h.state()).toEqual({ running: 'starting' });
    expect(h.commands).toEqual([{ type: 'JOB_LAUNCH_REQUESTED', job: job() }]);
    h.host({ type: 'JOB_RUNNING' });
    expect(h.state()).toEqual({ running: 'active' });
    expect(h.last()).toEqual({ type: 'JOB_STARTED', procId: 'proc-1', pid: 42, jobId: 'J1' });
  });

  it('runs a job given in the input as soon as prewarm is done', () => {
    const h = harness({ job: job('J9') }).warm();
    expect(h.state()).toEqual({ running: 'starting' });
    expect(h.commands).toEqual([{ type: 'JOB_LAUNCH_REQUESTED', job: job('J9') }]);
  });

  it('reports the job result, lets the process go and ends in finished', () => {
    const h = harness().run();
    h.host({ type: 'JOB_RETURNED', outcome: 'success', reason: 'room disconnected' });
    expect(h.state()).toEqual({ exiting: 'terminating' });
    expect(h.commands.at(-1)).toEqual({
      type: 'EXIT_REQUESTED',
      reason: 'job finished',
      captureStack: false,
    });
    expect(h.last()).toMatchObject({
      type: 'JOB_ENDED',
      jobId: 'J1',
      outcome: 'success',
      reason: 'room disconnected',
    });
    h.exited(null, 'SIGTERM');
    expect(h.state()).toBe('finished');
    expect(h.status()).toBe('done');
    expect(h.last()).toEqual({
      type: 'PROCESS_EXITED',
      procId: 'proc-1',
      pid: 42,
      reason: 'job finished',
      failed: false,
    });
    expect(h.hostStopped).toBe(true);
  });

  it('reports a failed job with its reason', () => {
    const h = harness().run();
    h.host({ type: 'JOB_RETURNED', outcome: 'failed', reason: 'entrypoint threw: boom' });
    expect(h.reports.find((r) => r.type === 'JOB_ENDED')).toMatchObject({
      outcome: 'failed',
      reason: 'entrypoint threw: boom',
    });
  });

  it('asks the job to shut down and waits for it on SHUTDOWN_REQUESTED', () => {
    const h = harness().run();
    h.send({ type: 'SHUTDOWN_REQUESTED', reason: 'server terminated the job' });
    expect(h.state()).toEqual({ running: 'shuttingDown' });
    expect(h.commands.at(-1)).toEqual({
      type: 'JOB_SHUTDOWN_REQUESTED',
      reason: 'server terminated the job',
    });
    h.clock.increment(SHUTDOWN - 1);
    h.host({ type: 'JOB_RETURNED', outcome: 'success', reason: 'server terminated the job' });
    h.exited(0);
    expect(h.state()).toBe('finished');
    expect(h.types()).toEqual(['PROCESS_PREWARMED', 'JOB_STARTED', 'JOB_ENDED', 'PROCESS_EXITED']);
  });

  it('kills a job whose shutdown exceeds the deadline: SIGTERM, then SIGKILL', () => {
    const h = harness().run();
    h.send({ type: 'SHUTDOWN_REQUESTED', reason: 'drain' });
    h.clock.increment(SHUTDOWN);
    expect(h.state()).toEqual({ exiting: 'terminating' });
    expect(h.last()).toMatchObject({
      type: 'JOB_ENDED',
      outcome: 'failed',
      reason: 'shutdown budget exceeded (60000 ms)',
    });
    expect(h.commands.at(-1)).toEqual({
      type: 'EXIT_REQUESTED',
      reason: 'shutdown budget exceeded (60000 ms)',
      captureStack: true,
    });
    h.clock.increment(TERM);
    expect(h.state()).toEqual({ exiting: 'killing' });
    expect(h.commands.at(-1)).toEqual({ type: 'SIGKILL_REQUESTED' });
    h.exited(null, 'SIGKILL');
    expect(h.state()).toBe('killed');
    expect(h.last()).toMatchObject({
      type: 'PROCESS_EXITED',
      reason: 'shutdown budget exceeded (60000 ms)',
      failed: true,
    });
  });

  it('gives up on a process that survives SIGKILL and says so', () => {
    const h = harness().warm();
    h.send({ type: 'KILL_REQUESTED', reason: 'second signal' });
    expect(h.commands.at(-1)).toEqual({ type: 'SIGKILL_REQUESTED' });
    h.clock.increment(KILL);
    expect(h.state()).toBe('abandoned');
    expect(h.last()).toMatchObject({
      type: 'PROCESS_EXITED',
      failed: true,
      reason: 'kill requested: second signal; no exit seen after SIGKILL',
    });
  });

  it('kills at once on KILL_REQUESTED while running and ends the job as failed', () => {
    const h = harness().run();
    h.send({ type: 'KILL_REQUESTED', reason: 'forced stop' });
    expect(h.state()).toEqual({ exiting: 'killing' });
    expect(h.last()).toMatchObject({
      type: 'JOB_ENDED',
      outcome: 'failed',
      reason: 'kill requested: forced stop',
    });
    // A late result from the child does not produce a second JOB_ENDED.
    h.host({ type: 'JOB_RETURNED', outcome: 'success', reason: 'late' });
    h.exited(null, 'SIGKILL');
    expect(h.state()).toBe('killed');
    expect(h.types()).toEqual(['PROCESS_PREWARMED', 'JOB_STARTED', 'JOB_ENDED', 'PROCESS_EXITED']);
  });

  it('escalates to SIGKILL when a kill is requested during a graceful stop', () => {
    const h = harness().warm();
    h.send({ type: 'SHUTDOWN_REQUESTED', reason: 'stop' });
    expect(h.state()).toEqual({ exiting: 'terminating' });
    h.send({ type: 'KILL_REQUESTED', reason: 'again' });
    expect(h.state()).toEqual({ exiting: 'killing' });
  });

  it('stops an idle process on SHUTDOWN_REQUESTED without reporting a failure', () => {
    const h = harness().warm();
    h.send({ type: 'SHUTDOWN_REQUESTED', reason: 'worker stopping' });
    expect(h.commands.at(-1)).toEqual({
      type: 'EXIT_REQUESTED',
      reason: 'shutdown requested: worker stopping',
      captureStack: false,
    });
    h.exited(null, 'SIGTERM');
    expect(h.state()).toBe('stopped');
    expect(h.last()).toMatchObject({
      type: 'PROCESS_EXITED',
      failed: false,
      reason: 'shutdown requested: worker stopping',
    });
  });

  it('kills a process whose prewarm exceeds the deadline', () => {
    const h = harness();
    h.host({ type: 'PROCESS_SPAWNED', pid: 7 });
    h.clock.increment(INIT - 1);
    expect(h.state()).toBe('prewarming');
    h.clock.increment(1);
    expect(h.state()).toEqual({ exiting: 'killing' });
    expect(h.commands).toEqual([{ type: 'SIGKILL_REQUESTED' }]);
    h.exited(null, 'SIGKILL');
    expect(h.state()).toBe('prewarmTimedOut');
    expect(h.last()).toEqual({
      type: 'PROCESS_EXITED',
      procId: 'proc-1',
      pid: 7,
      reason: 'prewarm timed out',
      failed: true,
    });
  });

  it('ends in prewarmFailed when prewarm throws, and fails the queued job first', () => {
    const h = harness({ job: job('J2') });
    h.host({ type: 'PROCESS_SPAWNED', pid: 7 });
    h.host({ type: 'PREWARM_FAILED', error: 'model missing' });
    expect(h.state()).toEqual({ exiting: 'terminating' });
    h.exited(0);
    expect(h.state()).toBe('prewarmFailed');
    expect(h.reports).toEqual([
      {
        type: 'JOB_ENDED',
        procId: 'proc-1',
        pid: 7,
        jobId: 'J2',
        outcome: 'failed',
        reason: 'prewarm failed: model missing',
        ending: 'prewarmFailed',
        processKept: false,
      },
      {
        type: 'PROCESS_EXITED',
        procId: 'proc-1',
        pid: 7,
        reason: 'prewarm failed: model missing',
        failed: true,
      },
    ]);
  });

  it('ends in prewarmFailed when no host was provided', () => {
    const clock = new SimulatedClock();
    const parent = setup({ actors: { jobProcess: jobProcessMachine } }).createMachine({
      entry: spawnChild('jobProcess', {
        id: 'p',
        systemId: 'p',
        input: { procId: 'p', initializeTimeout: 1, shutdownTimeout: 1 },
      }),
    });
    const root = createActor(parent, { clock }).start();
    const child = root.system.get('p') as AnyActorRef;
    expect(child.getSnapshot().value).toEqual({ exiting: 'terminating' });
  });

  it('reports a crash during prewarm with its exit code, and fails a queued job', () => {
    const h = harness({ job: job('J3') });
    h.host({ type: 'PROCESS_SPAWNED', pid: 7 });
    h.exited(1);
    expect(h.state()).toBe('crashed');
    expect(h.types()).toEqual(['JOB_ENDED', 'PROCESS_EXITED']);
    expect(h.last()).toMatchObject({ reason: 'crashed (code 1)', failed: true, pid: 7 });
  });

  it('reports an idle crash with its signal', () => {
    const h = harness().warm();
    h.exited(null, 'SIGSEGV');
    expect(h.state()).toBe('crashed');
    expect(h.last()).toMatchObject({
      type: 'PROCESS_EXITED',
      reason: 'crashed (signal SIGSEGV)',
      failed: true,
    });
  });

  it('reports a crash while running as a failed job, then the exit', () => {
    const h = harness().run();
    h.exited(137, null);
    expect(h.state()).toBe('crashed');
    expect(h.reports.slice(-2)).toEqual([
      {
        type: 'JOB_ENDED',
        procId: 'proc-1',
        pid: 42,
        jobId: 'J1',
        outcome: 'failed',
        reason: 'crashed (code 137)',
        // The process's own end took the job: what job recovery retries.
        ending: 'crashed',
        processKept: false,
      },
      {
        type: 'PROCESS_EXITED',
        procId: 'proc-1',
        pid: 42,
        reason: 'crashed (code 137)',
        failed: true,
      },
    ]);
  });

  it('ends a job over the memory limit and stops the process', () => {
    const h = harness().run();
    h.host({ type: 'MEMORY_EXCEEDED', rssMb: 700, limitMb: 500 });
    expect(h.state()).toEqual({ exiting: 'terminating' });
    expect(h.last()).toMatchObject({
      type: 'JOB_ENDED',
      outcome: 'failed',
      reason: 'memory limit (700 MB > 500 MB)',
    });
    h.exited(null, 'SIGTERM');
    expect(h.state()).toBe('memoryExceeded');
    expect(h.last()).toMatchObject({ failed: true, reason: 'memory limit (700 MB > 500 MB)' });
  });

  it('stops an idle process over the memory limit', () => {
    const h = harness().warm();
    h.host({ type: 'MEMORY_EXCEEDED', rssMb: 700, limitMb: 500 });
    h.exited(null, 'SIGTERM');
    expect(h.state()).toBe('memoryExceeded');
  });

  it('ends the job of an unresponsive process and stops it', () => {
    const h = harness().run();
    h.host({ type: 'PING_TIMED_OUT', silentMs: 60_000 });
    expect(h.last()).toMatchObject({
      type: 'JOB_ENDED',
      outcome: 'failed',
      reason: 'unresponsive (no pong for 60000 ms)',
    });
    h.clock.increment(TERM);
    h.exited(null, 'SIGKILL');
    expect(h.state()).toBe('unresponsive');
  });

  it('stops an idle unresponsive process', () => {
    const h = harness().warm();
    h.host({ type: 'PING_TIMED_OUT', silentMs: 5 });
    h.exited(null, 'SIGTERM');
    expect(h.state()).toBe('unresponsive');
  });

  it('ends a job whose process went silent before it could confirm as unresponsive', () => {
    const h = harness({}, { silentMs: 11_800, sinceLaunchMs: 10_000 }).warm();
    h.send({ type: 'LAUNCH_REQUESTED', job: job() });
    h.clock.increment(INIT);
    expect(h.commands).toContainEqual({ type: 'SILENCE_MEASURE_REQUESTED' });
    // It counts as started (never run twice), then ends.
    expect(h.reports.at(-2)).toMatchObject({ type: 'JOB_STARTED' });
    expect(h.last()).toMatchObject({
      type: 'JOB_ENDED',
      outcome: 'failed',
      reason: 'unresponsive (no pong for 11800 ms)',
    });
    expect(h.commands.at(-1)).toEqual({
      type: 'EXIT_REQUESTED',
      reason: 'unresponsive (no pong for 11800 ms)',
      captureStack: true,
    });
    h.exited(null, 'SIGTERM');
    expect(h.state()).toBe('unresponsive');
  });

  it('says a job did not start in time when its process kept answering', () => {
    const h = harness({}, { silentMs: 900, sinceLaunchMs: 10_000 }).warm();
    h.send({ type: 'LAUNCH_REQUESTED', job: job() });
    h.clock.increment(INIT);
    expect(h.last()).toMatchObject({
      type: 'JOB_ENDED',
      outcome: 'failed',
      reason: 'job did not start in time',
    });
    h.exited(null, 'SIGTERM');
    expect(h.state()).toBe('unresponsive');
  });

  it('fails the queued job when asked to stop during prewarm', () => {
    const h = harness({ job: job('J4') });
    h.send({ type: 'SHUTDOWN_REQUESTED', reason: 'drain' });
    expect(h.last()).toMatchObject({ type: 'JOB_ENDED', jobId: 'J4', outcome: 'failed' });
    h.exited(null, 'SIGTERM');
    expect(h.state()).toBe('stopped');
  });

  it('kills during prewarm on KILL_REQUESTED', () => {
    const h = harness();
    h.send({ type: 'KILL_REQUESTED', reason: 'now' });
    expect(h.commands).toEqual([{ type: 'SIGKILL_REQUESTED' }]);
    h.exited(null, 'SIGKILL');
    expect(h.state()).toBe('killed');
  });

  it('ignores LAUNCH while prewarming and while running', () => {
    const h = harness();
    h.send({ type: 'LAUNCH_REQUESTED', job: job('X') });
    expect(h.state()).toBe('prewarming');
    h.warm();
    expect(h.state()).toBe('idle');
    h.send({ type: 'LAUNCH_REQUESTED', job: job() });
    h.send({ type: 'LAUNCH_REQUESTED', job: job('Y') });
    expect(h.commands.filter((c) => c.type === 'JOB_LAUNCH_REQUESTED')).toHaveLength(1);
  });
});

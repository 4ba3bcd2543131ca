/**
 * `agent connect --room NAME` as a real child process against the emulator: one simulated job
 * in the named room (no dispatch), then a drain and an exit code that is the job's outcome.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/testing/index.ts';
import { killAllAgents } from '../support/agent-process.ts';
import { CLI_AGENT, startCliAgent, TEST_KEY, TEST_SECRET } from '../support/cli-agent.ts';

let emu: Emulator;
beforeAll(async () => {
  emu = await startEmulator({ keys: { [TEST_KEY]: TEST_SECRET } });
});
afterEach(() => killAllAgents());
afterAll(() => emu.close());

describe('agent connect --room', () => {
  it('runs one job in the room, then drains and exits 0 when it succeeds', async () => {
    const agent = startCliAgent(emu, ['connect', CLI_AGENT, '--room', 'return-connect']);
    expect(await agent.exited).toBe(0);
    const jobs = emu.jobs.filter((j) => j.room === 'return-connect');
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ simulated: true, status: 'success' });
    expect(emu.workers).toContainEqual(
      expect.objectContaining({ id: jobs[0]!.workerId, connected: false }),
    );
  });

  it('exits 1 when the job fails', async () => {
    const agent = startCliAgent(emu, ['connect', CLI_AGENT, '--room', 'throw-connect']);
    expect(await agent.exited).toBe(1);
    const job = emu.jobs.find((j) => j.room === 'throw-connect');
    expect(job?.status).toBe('failed');
  });

  it('Ctrl+C drains like any worker: the job is ended at the drain deadline', async () => {
    const agent = startCliAgent(emu, [
      'connect',
      CLI_AGENT,
      '--room',
      'hold-connect',
      '--drain-timeout',
      '1000',
      '--log-format',
      'json',
    ]);
    await agent.waitForLog((r) => r.message === 'entrypoint', 'the job to start');
    agent.child.kill('SIGINT');
    await agent.waitForLog((r) => r.message === 'shutdown callback ran', 'the job to be ended');
    expect(await agent.exited).toBe(0);
    const jobs = emu.jobs.filter((j) => j.room === 'hold-connect');
    expect(jobs).toHaveLength(1);
    expect(jobs[0]?.status).toBe('success');
  });
});

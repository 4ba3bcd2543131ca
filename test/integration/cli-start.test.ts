/**
 * `agent start` run as a real child process against the emulator: JSON lines, the fields every
 * record carries (job-process records included), `--log-level`, secrets never printed, and
 * Ctrl+C: once drains, twice forces.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/testing/index.ts';
import { killAllAgents, type AgentProcess } from '../support/agent-process.ts';
import {
  CLI_AGENT,
  isRegistered,
  startCliAgent,
  TEST_KEY,
  TEST_SECRET,
  until,
} from '../support/cli-agent.ts';

let emu: Emulator;
beforeAll(async () => {
  emu = await startEmulator({ keys: { [TEST_KEY]: TEST_SECRET } });
});
afterEach(() => killAllAgents());
afterAll(() => emu.close());

const start = (...extra: string[]) =>
  startCliAgent(emu, ['start', CLI_AGENT, '--port', '0', '--num-idle-processes', '1', ...extra]);

/** Starts the bin and waits until the emulator has it as a connected worker (rooms created
 * before that would find no worker). */
async function startRegistered(...extra: string[]) {
  const agent = start(...extra);
  const reg = await agent.waitForLog(isRegistered, 'registration');
  await emu.waitForWorker((w) => w.id === reg.workerId);
  return agent;
}

describe('agent start', () => {
  it('prints one JSON object per line, every record with its context fields', async () => {
    const agent = start();
    const reg = await agent.waitForLog(isRegistered, 'registration');
    const workerId = reg.workerId as string;
    expect(workerId).toMatch(/^AW_/);
    emu.createRoom('hold-json');
    const entry = await agent.waitForLog((r) => r.message === 'entrypoint', 'the job entrypoint');
    // Forwarded from the job process over IPC, enriched by the worker.
    expect(entry).toMatchObject({
      workerId,
      agentName: '',
      roomName: 'hold-json',
      jobId: expect.stringMatching(/^AJ_/) as unknown,
      pid: expect.any(Number) as unknown,
      level: 'INFO',
    });
    expect(entry.pid).not.toBe(agent.child.pid);
    const launched = await agent.waitForLog((r) => r.message === 'job launched', 'job launched');
    expect(launched).toMatchObject({ workerId, roomName: 'hold-json', jobId: entry.jobId });

    await forceStop(agent);
    expect(await agent.exited).toBe(0);

    const lines = agent
      .output()
      .split('\n')
      .filter((l) => l !== '');
    expect(lines.length).toBeGreaterThan(5);
    for (const line of lines) {
      const r = JSON.parse(line) as Record<string, unknown>; // throws on a non-JSON line
      expect(typeof r.timestamp).toBe('string');
      expect(Number.isNaN(Date.parse(r.timestamp as string))).toBe(false);
      expect(['DEBUG', 'INFO', 'WARNING', 'ERROR']).toContain(r.level);
      expect(typeof r.message).toBe('string');
      expect(r).toHaveProperty('agentName');
    }
    // Every record after registration knows the worker id.
    const afterReg = agent.records.slice(agent.records.indexOf(reg));
    for (const r of afterReg) expect(r.workerId, JSON.stringify(r)).toBe(workerId);
  });

  it('--log-level filters records, case-insensitively', async () => {
    const loud = await startRegistered('--log-level', 'debug');
    emu.createRoom('hold-levels');
    await loud.waitForLog((r) => r.level === 'DEBUG' && r.message === 'job details', 'debug');
    const before = new Set(emu.workers.map((w) => w.id));
    const quiet = start('--log-level', 'warning');
    await emu.waitForWorker((w) => !before.has(w.id), { timeoutMs: 20_000 });
    // Without jobs one signal is enough; the drain is logged at INFO, so nothing is printed.
    quiet.child.kill('SIGINT');
    expect(await quiet.exited).toBe(0);
    expect(quiet.output()).toBe('');
    expect(loud.records.some((r) => r.level === 'INFO')).toBe(true);
    await forceStop(loud);
    expect(await loud.exited).toBe(0);
  });

  it('never prints the API secret or a token, even at DEBUG with a job running', async () => {
    const agent = await startRegistered('--log-level', 'DEBUG', '--api-secret', TEST_SECRET);
    emu.createRoom('hold-secrets');
    await agent.waitForLog((r) => r.message === 'environment', 'the fixture logging the env');
    await agent.waitForLog((r) => r.message.startsWith('launched with'), 'the token message');
    await forceStop(agent);
    await agent.exited;
    const out = agent.output();
    expect(out).toContain('[redacted]');
    expect(out).not.toContain(TEST_SECRET);
    expect(out).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/); // no JWT at all
  });

  it('SIGINT once drains (running job kept, then the worker exits when it ends)', async () => {
    const agent = start('--drain-timeout', '60000');
    const reg = await agent.waitForLog(isRegistered, 'registration');
    emu.createRoom('hold-drain');
    const entry = await agent.waitForLog((r) => r.message === 'entrypoint', 'entrypoint');
    agent.child.kill('SIGINT');
    await agent.waitForLog((r) => r.message.startsWith('SIGINT received: draining'), 'draining');
    const w = await emu.waitFor(() =>
      emu.worker(reg.workerId as string)?.status === 'full' ? true : undefined,
    );
    expect(w).toBe(true);
    // Still running a second later: the job is not cut short.
    await new Promise((r) => setTimeout(r, 1000));
    expect(agent.child.exitCode).toBe(null);
    const job = emu.job(entry.jobId as string)!;
    expect(job.status).toBe('running');
    // The server ends the job: the drained worker has nothing left and exits 0 by itself.
    emu.terminateJob(job.id);
    expect(await agent.exited).toBe(0);
    await emu.waitForJobStatus(job.id, ['success', 'failed']);
    expect(agent.records.some((r) => r.message === 'worker stopped')).toBe(true);
  });

  it('SIGHUP with its output gone (a closed terminal) drains: the job runs on, then the worker exits 0', async () => {
    const agent = start('--drain-timeout', '60000');
    const reg = await agent.waitForLog(isRegistered, 'registration');
    emu.createRoom('hold-hangup');
    const entry = await agent.waitForLog((r) => r.message === 'entrypoint', 'entrypoint');
    // What a closed terminal leaves: every later write fails (here EPIPE; a tty gives EIO).
    agent.child.stdout!.destroy();
    agent.child.stderr!.destroy();
    agent.child.kill('SIGHUP');
    await emu.waitFor(() =>
      emu.worker(reg.workerId as string)?.status === 'full' ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 1000));
    expect(agent.child.exitCode).toBe(null);
    const job = emu.job(entry.jobId as string)!;
    expect(job.status).toBe('running');
    emu.terminateJob(job.id);
    expect(await agent.exited).toBe(0);
    expect((await emu.waitForJobStatus(job.id, ['success', 'failed'])).status).toBe('success');
  });

  it('SIGINT twice stops at once, killing the running job', async () => {
    const agent = await startRegistered('--drain-timeout', '60000');
    emu.createRoom('hold-force');
    const entry = await agent.waitForLog((r) => r.message === 'entrypoint', 'entrypoint');
    agent.child.kill('SIGINT');
    await agent.waitForLog((r) => r.message.startsWith('SIGINT received: draining'), 'draining');
    const t0 = Date.now();
    agent.child.kill('SIGINT');
    expect(await agent.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(agent.records.some((r) => r.message === 'SIGINT received again: stopping now')).toBe(
      true,
    );
    // No job process outlives the worker.
    const pid = entry.pid as number;
    await until(() => !alive(pid), `job process ${pid} to be gone`);
  });
});

/**
 * Two signals sent back to back can reach the process as one (signals are not queued), so the
 * second is sent once the first has been acted on.
 */
async function forceStop(agent: AgentProcess): Promise<void> {
  agent.child.kill('SIGINT');
  await agent.waitForLog((r) => r.message.startsWith('SIGINT received: draining'), 'draining');
  agent.child.kill('SIGINT');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

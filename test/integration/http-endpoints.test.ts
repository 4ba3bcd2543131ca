/**
 * The health and metrics server of `agent start`, run as a real child process against the
 * emulator: liveness, readiness through the worker's states, `/worker`, `/metrics`, and the
 * port closed once the worker has stopped.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/testing/index.ts';
import { killAllAgents } from '../support/agent-process.ts';
import {
  CLI_AGENT,
  get,
  healthPort,
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

/** Reads one sample's value from Prometheus text, e.g. `agentstate_jobs_total{outcome="success"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('health and metrics server (agent start --port 0)', () => {
  it('answers /, /ready, /worker and /metrics, following jobs and the drain', async () => {
    const agent = startCliAgent(emu, [
      'start',
      CLI_AGENT,
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--num-idle-processes',
      '1',
    ]);
    const port = await healthPort(agent);
    const reg = await agent.waitForLog(isRegistered, 'registration');
    await emu.waitForWorker((w) => w.id === reg.workerId);

    expect(await get(port, '/')).toMatchObject({ status: 200, body: 'OK\n' });
    // Available once registered and a warm process is there.
    await until(async () => (await get(port, '/ready')).status === 200, '/ready 200');

    // One job that ends at once (success), one that holds.
    emu.createRoom('return-http');
    await agent.waitForLog((r) => r.message === 'job ended', 'the first job to end');
    emu.createRoom('hold-http');
    const held = await agent.waitForLog(
      (r) => r.message === 'entrypoint' && r.roomName === 'hold-http',
      'the held job',
    );

    const info = await get(port, '/worker');
    expect(info.status).toBe(200);
    expect(info.type).toContain('application/json');
    const doc = JSON.parse(info.body) as Record<string, unknown>;
    expect(doc).toMatchObject({
      id: reg.workerId,
      agent_name: '',
      status: 'available',
      worker_type: 'JT_ROOM',
      active_jobs: 1,
      protocol_version: 1,
      project_type: 'nodejs',
      version: expect.stringMatching(/^\d+\.\d+\.\d+/) as unknown,
      jobs: [{ id: held.jobId, room: 'hold-http', phase: 'running', pid: held.pid }],
    });
    await until(
      async () =>
        (JSON.parse((await get(port, '/worker')).body) as { idle_processes: number })
          .idle_processes === 1,
      'a warm idle process again',
    );

    const metrics = await get(port, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.type).toContain('text/plain');
    const m = metrics.body;
    expect(sample(m, 'agentstate_jobs_total{outcome="success"}')).toBe(1);
    expect(sample(m, 'agentstate_jobs_total{outcome="failed"}')).toBe(0);
    expect(sample(m, 'agentstate_availability_answers_total{decision="accepted"}')).toBe(2);
    expect(sample(m, 'agentstate_availability_answer_seconds_count{decision="accepted"}')).toBe(2);
    expect(sample(m, 'agentstate_reconnects_total')).toBe(0);
    expect(sample(m, 'agentstate_active_jobs')).toBe(1);
    expect(sample(m, 'agentstate_load')).toBe(0);
    expect(sample(m, 'agentstate_job_processes{state="running"}')).toBe(1);
    expect(sample(m, 'agentstate_job_processes{state="idle"}')).toBe(1);
    expect(sample(m, 'agentstate_worker_status{status="available"}')).toBe(1);
    const rss = m.split('\n').filter((l) => l.startsWith('agentstate_job_process_rss_bytes{'));
    expect(rss.length).toBeGreaterThanOrEqual(2);
    expect(rss.some((l) => l.includes(`job_id="${String(held.jobId)}"`))).toBe(true);
    for (const l of rss) expect(Number(l.split(' ')[1])).toBeGreaterThan(10 * 1024 * 1024);
    // Nothing from prom-client's global default registry (e.g. process_cpu_seconds_total).
    expect(m).not.toContain('process_cpu');

    expect((await get(port, '/nope')).status).toBe(404);

    // Draining: not ready (503), still alive (200).
    agent.child.kill('SIGINT');
    await agent.waitForLog((r) => r.message.startsWith('SIGINT received'), 'draining');
    expect(await get(port, '/ready')).toMatchObject({ status: 503, body: 'draining\n' });
    expect((await get(port, '/')).status).toBe(200);

    // The held job ends; the worker stops and the port is closed.
    emu.terminateJob(held.jobId as string);
    expect(await agent.exited).toBe(0);
    await expect(get(port, '/')).rejects.toThrow();
  });

  it('reports not ready while it cannot reach the server, alive all the same', async () => {
    // Nothing listens on port 9 (discard): the worker keeps retrying.
    const agent = startCliAgent(emu, ['start', CLI_AGENT, '--port', '0', '--log-level', 'debug'], {
      LIVEKIT_URL: 'ws://127.0.0.1:9',
    });
    const port = await healthPort(agent);
    await agent.waitForLog((r) => r.message.startsWith('server connection lost'), 'a failure');
    const ready = await get(port, '/ready');
    expect(ready.status).toBe(503);
    expect(['connecting', 'reconnecting']).toContain(ready.body.trim());
    expect((await get(port, '/')).status).toBe(200);
    const m = (await get(port, '/metrics')).body;
    expect(sample(m, 'agentstate_reconnects_total')).toBeGreaterThanOrEqual(1);
    expect(sample(m, 'agentstate_worker_status{status="available"}')).toBe(0);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });

  it('fails with a clear message when the port is taken', async () => {
    const first = startCliAgent(emu, ['start', CLI_AGENT, '--port', '0']);
    const port = await healthPort(first);
    const second = startCliAgent(emu, ['start', CLI_AGENT, '--port', String(port)]);
    expect(await second.exited).toBe(1);
    expect(second.output()).toMatch(/cannot serve health\/metrics on 0.0.0.0:\d+ \(EADDRINUSE\)/);
    // Failed before connecting: the server never saw a second worker.
    expect(emu.workers.filter((w) => w.connected)).toHaveLength(1);
  });
});

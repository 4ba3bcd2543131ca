/**
 * The event-loop stall watch on a real livekit-server with the real `agent` bin
 * (test/fixtures/e2e/observed.ts): a job whose entrypoint blocks its loop for 2 s gets a
 * warning that names the job and says how long, and `/metrics` counts it as a job-process stall.
 */
import { AgentDispatchClient } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllAgents, startAgent, type AgentProcess } from '../support/agent-process.ts';
import { startLiveKitServer, type LiveKitServer } from '../support/livekit-server.ts';

let server: LiveKitServer;
let worker: AgentProcess;
let metricsPort: number;

beforeAll(async () => {
  server = await startLiveKitServer({ name: 'e2e-stalls' });
  worker = startAgent(['start', 'test/fixtures/e2e/observed.ts', '--num-idle-processes', '1'], {
    LIVEKIT_URL: server.url,
    LIVEKIT_API_KEY: server.apiKey,
    LIVEKIT_API_SECRET: server.apiSecret,
  });
  const http = await worker.waitForLog(
    (r) => r.message === 'health server listening',
    'the health server',
    30_000,
  );
  metricsPort = Number(http.port);
  await worker.waitForLog((r) => r.message === 'registered with the server', 'registering', 30_000);
}, 60_000);
afterAll(async () => {
  try {
    await killAllAgents();
  } finally {
    await server?.stop();
  }
});

describe('the event-loop stall watch', () => {
  it('warns about a job that blocks its loop for 2 s, naming the job, and counts it', async () => {
    const dispatches = new AgentDispatchClient(server.httpUrl, server.apiKey, server.apiSecret);
    await dispatches.createDispatch('block-1', 'observed');
    const stall = await worker
      .waitForLog(
        (r) =>
          r.message === 'event loop stalled' && r.process === 'job' && r.roomName === 'block-1',
        'the stall warning',
        30_000,
      )
      .catch((err: unknown) => {
        console.log(
          worker.records
            .map((r) => `${r.message} ${JSON.stringify(r.roomName)} ${JSON.stringify(r.reason)}`)
            .join('\n'),
        );
        throw err;
      });
    expect(stall).toMatchObject({ level: 'WARNING', roomName: 'block-1', thresholdMs: 500 });
    expect(String(stall.jobId)).toMatch(/^AJ_/);
    // 2 s of busy work, seen by a probe that fires every 100 ms.
    expect(Number(stall.stalledMs)).toBeGreaterThanOrEqual(1_800);
    expect(Number(stall.stalledMs)).toBeLessThan(5_000);
    const ended = await worker.waitForLog(
      (r) => r.message === 'job ended' && r.jobId === stall.jobId,
      'the job to end',
      20_000,
    );
    expect(ended).toMatchObject({ outcome: 'success' });
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const count = /^agentstate_event_loop_stall_seconds_count\{process="job"\} (\d+)$/m.exec(
      metrics,
    );
    expect(Number(count?.[1])).toBeGreaterThanOrEqual(1);
  }, 60_000);
});

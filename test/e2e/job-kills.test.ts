/**
 * Kills that explain themselves, on a real livekit-server with the real `agent` bin
 * (test/fixtures/e2e/observed.ts): a job whose entrypoint never yields (`for (;;) {}` in the
 * user's `spinForever`) is ended as unresponsive, not as "did not start in time", and the
 * worker's record of the kill carries the process's JavaScript stack, which names the function.
 */
import { AgentDispatchClient } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllAgents, startAgent, type AgentProcess } from '../support/agent-process.ts';
import { startLiveKitServer, type LiveKitServer } from '../support/livekit-server.ts';
import { waitUntilGone } from '../support/process-table.ts';

let server: LiveKitServer;
let worker: AgentProcess;

beforeAll(async () => {
  server = await startLiveKitServer({ name: 'e2e-kills' });
  worker = startAgent(['start', 'test/fixtures/e2e/observed.ts', '--num-idle-processes', '1'], {
    LIVEKIT_URL: server.url,
    LIVEKIT_API_KEY: server.apiKey,
    LIVEKIT_API_SECRET: server.apiSecret,
    // The start deadline (launch → `started`) passes long before the pinger's 30 s.
    E2E_INIT_TIMEOUT_MS: '8000',
  });
  await worker.waitForLog((r) => r.message === 'registered with the server', 'registering', 30_000);
}, 60_000);
afterAll(async () => {
  try {
    await killAllAgents();
  } finally {
    await server?.stop();
  }
});

describe('a job process the worker has to kill', () => {
  it('is ended as unresponsive when its entrypoint never yields, with its stack in the record', async () => {
    const dispatches = new AgentDispatchClient(server.httpUrl, server.apiKey, server.apiSecret);
    await dispatches.createDispatch('spin-1', 'observed');
    const ended = await worker.waitForLog(
      (r) => r.message === 'job ended' && r.roomName === 'spin-1',
      'the spinning job to end',
      30_000,
    );
    expect(ended).toMatchObject({ outcome: 'failed' });
    expect(String(ended.reason)).toMatch(/^unresponsive \(no pong for \d+ ms\)$/);
    const kill = await worker.waitForLog(
      (r) => r.message === 'job process ended by the worker' && r.jobId === ended.jobId,
      'the record of the kill',
      10_000,
    );
    expect(kill.reason).toBe(ended.reason);
    expect(kill.level).toBe('ERROR');
    expect(kill.stackUnavailable, 'no reason the stack is missing').toBeUndefined();
    const stack = kill.stack as string[];
    expect(stack[0], 'the top frame is the user function that spins').toMatch(
      /^spinForever \(.*observed[^/]*:\d+:\d+\)$/,
    );
    expect(stack.some((f) => f.startsWith('entrypointFnc'))).toBe(true);
    // The process is gone, and ended as the chart chose.
    const exited = await worker.waitForLog(
      (r) => r.message === 'job process exited' && r.procId === kill.procId,
      'the process exit',
      15_000,
    );
    expect(exited.reason).toBe(ended.reason);
    await waitUntilGone([Number(kill.pid)], 10_000);
  }, 60_000);
});

/**
 * Two agents served by one worker process (`agent start support.ts sales.ts`) on a real
 * livekit-server, with real rtc-node participants: each agent registers as its own worker and
 * runs only the dispatches made to its name.
 */
import { AgentDispatchClient } from 'livekit-server-sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAllAgents, startAgent, type AgentProcess } from '../support/agent-process.ts';
import { until } from '../support/cli-agent.ts';
import { jobReport, stopWorkers } from '../support/e2e-workers.ts';
import { startLiveKitServer, type LiveKitServer } from '../support/livekit-server.ts';
import { joinRoom, leaveAllRooms, waitForParticipant } from '../support/participants.ts';

let server: LiveKitServer;
let worker: AgentProcess;

beforeAll(async () => {
  server = await startLiveKitServer({ name: 'e2e-multi-agent' });
  worker = startAgent(
    [
      'start',
      'test/fixtures/e2e/support.ts',
      'test/fixtures/e2e/sales.ts',
      '--num-idle-processes',
      '1',
      '--port',
      '0',
      // The process-wide threshold over the machine's CPU: off, so that other suites' load on
      // this shared machine cannot make the agents full (their own loads are constant 0).
      '--load-threshold',
      'Infinity',
    ],
    {
      LIVEKIT_URL: server.url,
      LIVEKIT_API_KEY: server.apiKey,
      LIVEKIT_API_SECRET: server.apiSecret,
    },
  );
  for (const name of ['support', 'sales']) {
    await worker.waitForLog(
      (r) => r.message === 'registered with the server' && r.agentName === name,
      `${name} registering`,
      30_000,
    );
  }
  // A new agent is full until a process is warm: wait until /worker says both are available.
  const { port } = await worker.waitForLog(
    (r) => r.message === 'health server listening',
    'health',
  );
  await until(
    async () => {
      const info = (await (await fetch(`http://127.0.0.1:${String(port)}/worker`)).json()) as {
        agents: { status: string }[];
      };
      return info.agents.every((a) => a.status === 'available');
    },
    'both agents available',
    30_000,
  );
}, 60_000);
afterEach(() => leaveAllRooms());
afterAll(async () => {
  try {
    if (worker) expect(await stopWorkers([worker])).toEqual([0]);
  } finally {
    await killAllAgents();
    await server?.stop();
  }
});

describe('several agents in one worker process (real server)', () => {
  it('registers each agent as its own worker and runs each dispatch on the agent it names', async () => {
    const registrations = worker.records.filter((r) => r.message === 'registered with the server');
    expect(registrations.map((r) => r.agentName).sort()).toEqual(['sales', 'support']);
    expect(new Set(registrations.map((r) => r.workerId)).size).toBe(2);

    const dispatches = new AgentDispatchClient(server.httpUrl, server.apiKey, server.apiSecret);
    const alice = await joinRoom(server, { room: 'multi-support', identity: 'alice' });
    const bob = await joinRoom(server, { room: 'multi-sales', identity: 'bob' });
    await dispatches.createDispatch('multi-support', 'support', { metadata: 'for support' });
    await dispatches.createDispatch('multi-sales', 'sales', { metadata: 'for sales' });

    const [forSupport, forSales] = await Promise.all([
      jobReport(worker, 'multi-support'),
      jobReport(worker, 'multi-sales'),
    ]);
    expect(forSupport).toMatchObject({
      agentName: 'support',
      metadata: 'for support',
      userdata: { prewarmedBy: 'support' },
    });
    expect(forSales).toMatchObject({
      agentName: 'sales',
      metadata: 'for sales',
      userdata: { prewarmedBy: 'sales' },
    });
    // Both jobs run in job processes of this one worker process.
    const launched = worker.records.filter((r) => r.message === 'job launched');
    expect(launched.map((r) => r.agentName).sort()).toEqual(['sales', 'support']);
    expect(forSupport.procPid).not.toBe(forSales.procPid);

    // The participants see each agent, with the identity its requestFnc chose.
    await waitForParticipant(alice.room, {
      identity: `support-${forSupport.jobId}`,
      timeoutMs: 20_000,
    });
    await waitForParticipant(bob.room, { identity: `sales-${forSales.jobId}`, timeoutMs: 20_000 });
    // Nothing else ran: neither room's automatic job (no unnamed agent here), nor a second job.
    expect(worker.records.filter((r) => r.message === 'e2e job report')).toHaveLength(2);
  });
});

/**
 * The worker's connection to the server through an HTTP proxy (CONNECT), on a real
 * livekit-server with the real `agent` bin (test/fixtures/e2e/agent.ts) and a local proxy
 * started here (the `proxy` package). What the proxy was asked to tunnel is the evidence.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProxy, type ProxyServer } from 'proxy';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAllAgents, startAgent, type LogRecord } from '../support/agent-process.ts';
import {
  FIXTURE_AGENT,
  jobReport,
  startFixtureWorker,
  stopWorkers,
  type FixtureWorker,
} from '../support/e2e-workers.ts';
import { startLiveKitServer, type LiveKitServer } from '../support/livekit-server.ts';
import { joinRoom, leaveAllRooms } from '../support/participants.ts';

interface LocalProxy {
  url: string;
  /** Every CONNECT the proxy received: the target and the credentials sent. */
  tunnels: { target: string; auth: string | undefined }[];
  close(): Promise<void>;
}

/** A CONNECT proxy on loopback; with `credentials`, it answers 407 to anyone without them. */
async function startProxy(credentials?: string): Promise<LocalProxy> {
  const server: ProxyServer = createProxy(createServer());
  const tunnels: LocalProxy['tunnels'] = [];
  server.on('connect', (req: { url?: string; headers: Record<string, string | undefined> }) => {
    tunnels.push({ target: req.url ?? '', auth: req.headers['proxy-authorization'] });
  });
  if (credentials) {
    const expected = `Basic ${Buffer.from(credentials).toString('base64')}`;
    server.authenticate = (req) => req.headers['proxy-authorization'] === expected;
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    tunnels,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** No proxy settings of the machine running the tests leak into the workers. */
const NO_PROXY_ENV = {
  HTTP_PROXY: undefined,
  http_proxy: undefined,
  HTTPS_PROXY: undefined,
  https_proxy: undefined,
  NO_PROXY: undefined,
  no_proxy: undefined,
};

let server: LiveKitServer;
const proxies: LocalProxy[] = [];
const workers: FixtureWorker[] = [];

beforeAll(async () => {
  server = await startLiveKitServer({ name: 'e2e-proxy' });
}, 60_000);
afterEach(async () => {
  await leaveAllRooms();
  await stopWorkers(workers.splice(0));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(async () => {
  try {
    await killAllAgents();
  } finally {
    await server?.stop();
  }
});

const serverAddress = () => `127.0.0.1:${server.ports.http}`;
const isRegistration = (r: LogRecord) => r.message === 'registered with the server';

describe('HTTP proxy for the server connection (real server)', () => {
  it('registers through the proxy HTTP_PROXY names, and its job processes reach the room through it', async () => {
    const proxy = await startProxy();
    proxies.push(proxy);
    const worker = await startFixtureWorker(server, 'proxied', {
      env: { ...NO_PROXY_ENV, HTTP_PROXY: proxy.url },
    });
    workers.push(worker);
    expect(proxy.tunnels.map((t) => t.target)).toEqual([serverAddress()]);

    const room = 'proxied-1';
    await joinRoom(server, { room, identity: 'alice' });
    const report = await jobReport(worker, room);
    expect(report.room).toBe(room);
    // The job process inherited HTTP_PROXY: rtc-node's signalling connection was tunnelled too
    // (the worker itself connected once).
    expect(worker.records.filter(isRegistration)).toHaveLength(1);
    expect(proxy.tunnels.length).toBeGreaterThanOrEqual(2);
    expect(proxy.tunnels.every((t) => t.target === serverAddress())).toBe(true);
  });

  it('uses the httpProxy option with its credentials, in the worker and in its job processes', async () => {
    const proxy = await startProxy('agent:pa55word');
    proxies.push(proxy);
    const withCredentials = proxy.url.replace('http://', 'http://agent:pa55word@');
    const worker = await startFixtureWorker(server, 'opt-proxied', {
      env: { ...NO_PROXY_ENV, E2E_HTTP_PROXY: withCredentials },
    });
    workers.push(worker);
    const basic = `Basic ${Buffer.from('agent:pa55word').toString('base64')}`;
    expect(proxy.tunnels).toEqual([{ target: serverAddress(), auth: basic }]);

    const room = 'opt-proxied-1';
    await joinRoom(server, { room, identity: 'bob' });
    await jobReport(worker, room);
    expect(worker.records.filter(isRegistration)).toHaveLength(1);
    expect(proxy.tunnels.length).toBeGreaterThanOrEqual(2);
    expect(proxy.tunnels.every((t) => t.auth === basic)).toBe(true);
    // The proxy's password never reaches the logs.
    expect(worker.output()).not.toContain('pa55word');
  });

  it('exits with code 1 and names the proxy when the proxy refuses the tunnel', async () => {
    const proxy = await startProxy('agent:pa55word');
    proxies.push(proxy);
    const started = Date.now();
    const agent = startAgent(['start', FIXTURE_AGENT, '--num-idle-processes', '0'], {
      ...NO_PROXY_ENV,
      HTTP_PROXY: proxy.url,
      LIVEKIT_URL: server.url,
      LIVEKIT_API_KEY: server.apiKey,
      LIVEKIT_API_SECRET: server.apiSecret,
    });
    expect(await agent.exited).toBe(1);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(agent.records).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        message: expect.stringContaining(
          `the proxy ${proxy.url} (from HTTP_PROXY) refused the tunnel to ${serverAddress()} [HTTP 407`,
        ) as unknown,
      }),
    );
    expect(proxy.tunnels).toHaveLength(1);
  });
});

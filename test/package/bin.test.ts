/**
 * The installed `agent` bin, as a user runs it in their own project: plain node, a JavaScript and
 * a TypeScript agent file, a real livekit-server and a real rtc-node participant. Each job
 * process reports its own flags and every script its isolate has loaded (from the inspector
 * protocol, not from our logs), so "no TypeScript loader" is checked where it matters.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RoomEvent } from '@livekit/rtc-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { killAllAgents, startAgent, type LogRecord } from '../support/agent-process.ts';
import { startLiveKitServer, type LiveKitServer } from '../support/livekit-server.ts';
import { joinRoom, leaveAllRooms, withDeadline } from '../support/participants.ts';

const app = inject('packedProject');
const BIN = join(app, 'node_modules/.bin/agent');

/** The agent both files define; `probe()` lists the loaded scripts that would be a loader. */
const agentSource = (lang: 'js' | 'ts', agentName: string) => `
import { Session } from 'node:inspector/promises';
import { WorkerOptions, createLogger${lang === 'ts' ? ', type JobContext' : ''} } from 'agentstate';

const log = createLogger({ component: 'probe' });

async function probe()${lang === 'ts' ? ': Promise<Record<string, unknown>>' : ''} {
  const s = new Session();
  s.connect();
  const urls${lang === 'ts' ? ': string[]' : ''} = [];
  s.on('Debugger.scriptParsed', (m) => urls.push(m.params.url));
  await s.post('Debugger.enable');
  s.disconnect();
  return {
    node: process.version,
    execArgv: process.execArgv,
    nodeOptions: process.env.NODE_OPTIONS ?? '',
    loaders: urls.filter((u) => /node_modules\\/(tsx|esbuild)\\//.test(u)),
    otel: urls.filter((u) => /node_modules\\/@opentelemetry\\//.test(u)),
    scripts: urls.length,
  };
}

log.info('worker probe', await probe());

export default new WorkerOptions({
  agentName: '${agentName}',
  // A constant load: the server gives no job to a worker reporting 1.0 (it picks workers weighted
  // by 1 − load), and the machine's real CPU load gets there while the suite keeps both cores busy.
  loadFnc: () => 0,
  entrypointFnc: async (ctx${lang === 'ts' ? ': JobContext' : ''}) => {
    log.info('job probe', await probe());
    await ctx.connect();
    const user = await ctx.waitForParticipant();
    await ctx.room.localParticipant${lang === 'ts' ? '!' : ''}.publishData(new TextEncoder().encode('served by ${lang}'), {
      reliable: true,
      destination_identities: [user.identity],
    });
  },
});
`;

const nameOf = (file: string) => `pkg-${file.replace('.', '-')}`;

let server: LiveKitServer;
beforeAll(async () => {
  server = await startLiveKitServer({ name: 'package-bin', targetLoad: 2 });
  writeFileSync(join(app, 'agent.mjs'), agentSource('js', nameOf('agent.mjs')));
  writeFileSync(join(app, 'agent.ts'), agentSource('ts', nameOf('agent.ts')));
}, 60_000);
afterEach(async () => {
  await leaveAllRooms();
  await killAllAgents();
});
afterAll(() => server?.stop());

describe('npx agent in a project that installed the tarball', () => {
  it('is on the path npx uses', () => {
    const out = execFileSync('npx', ['--no-install', 'agent', '--version'], {
      cwd: app,
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(out).toMatch(/\d+\.\d+\.\d+/);
  });

  for (const file of ['agent.mjs', 'agent.ts'] as const) {
    it(`serves a job end to end from ${file} with no TypeScript loader in the job process`, async () => {
      const agentName = nameOf(file);
      const worker = startAgent(
        ['start', file, '--num-idle-processes', '1', '--load-threshold', 'Infinity', '--port', '0'],
        {
          LIVEKIT_URL: server.url,
          LIVEKIT_API_KEY: server.apiKey,
          LIVEKIT_API_SECRET: server.apiSecret,
          NODE_OPTIONS: '',
        },
        { command: [BIN], cwd: app },
      );
      await worker.waitForLog(
        (r) => r.message === 'registered with the server',
        'registration',
        30_000,
      );

      const room = `room-${agentName}`;
      const alice = await joinRoom(server, { room, identity: 'alice' });
      const served = new Promise<string>((resolve) => {
        alice.room.on(RoomEvent.DataReceived, (payload) =>
          resolve(new TextDecoder().decode(payload)),
        );
      });
      execFileSync(process.execPath, [BIN, 'dispatch', '--room', room, '--agent-name', agentName], {
        cwd: app,
        encoding: 'utf8',
        timeout: 30_000,
        env: {
          ...process.env,
          LIVEKIT_URL: server.url,
          LIVEKIT_API_KEY: server.apiKey,
          LIVEKIT_API_SECRET: server.apiSecret,
        },
      });
      expect(await withDeadline(served, 20_000, 'the agent’s data message')).toBe(
        `served by ${file.endsWith('.ts') ? 'ts' : 'js'}`,
      );

      const job = (await worker.waitForLog(
        (r) => r.message === 'job probe',
        'job probe',
      )) as LogRecord & {
        node: string;
        execArgv: string[];
        loaders: string[];
        otel: string[];
        scripts: number;
        nodeOptions: string;
      };
      // The job process runs on the node its worker runs on: this test's, the line under test.
      expect(job.node).toBe(process.version);
      // No loader, no V8 flag: only the inline module that ignores stop signals from the start.
      expect(job.execArgv).toEqual(['--import', expect.stringMatching(/^data:text\/javascript,/)]);
      expect(job.nodeOptions).toBe('');
      expect(job.loaders).toEqual([]);
      // With no OTEL_* variable and no tracerProvider, a job process loads no OpenTelemetry at all.
      expect(job.otel).toEqual([]);
      expect(job.scripts).toBeGreaterThan(10); // the probe saw the isolate's scripts at all

      // The job process logs the same line when it imports the file; the worker's has no pid.
      const inWorker = worker.records.find((r) => r.message === 'worker probe' && !('pid' in r)) as
        (LogRecord & { node: string; loaders: string[]; execArgv: string[] }) | undefined;
      expect(inWorker?.node).toBe(process.version);
      expect(inWorker?.execArgv).toEqual([]);
      // The worker imports the agent file itself: a .mjs needs nothing, a .ts was compiled by
      // esbuild first (in the worker only), and tsx is never loaded anywhere.
      expect(inWorker?.loaders.filter((u) => u.includes('/tsx/'))).toEqual([]);
      if (file === 'agent.mjs') expect(inWorker?.loaders).toEqual([]);

      await alice.leave();
      await worker.waitForLog(
        (r) => r.message === 'job ended' && r.outcome === 'success',
        'job end',
        20_000,
      );
    });
  }
});

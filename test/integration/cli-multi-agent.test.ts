/**
 * `agent start support.ts sales.ts`: one real worker process (the `agent` bin) serving two
 * agents against the emulator, with one health server, one metrics registry, one drain, and
 * usage errors before anything registers.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/testing/index.ts';
import { killAllAgents, type AgentProcess, type LogRecord } from '../support/agent-process.ts';
import {
  get,
  healthPort,
  isRegistered,
  startCliAgent,
  TEST_KEY,
  TEST_SECRET,
  until,
} from '../support/cli-agent.ts';

const SUPPORT = 'test/fixtures/group/support.ts';
const SALES = 'test/fixtures/group/sales.ts';

let emu: Emulator;
beforeAll(async () => {
  // Warm processes of two agents start on two shared cores: give them as long as the other suites do.
  emu = await startEmulator({ keys: { [TEST_KEY]: TEST_SECRET }, defaultWaitMs: 20_000 });
});
afterEach(() => killAllAgents());
afterAll(() => emu.close());

// The group's process-wide load is the machine's CPU (threshold 0.7 by default); on a machine
// shared with other suites that would hold both agents full at random. Load is not under test.
const start = (...args: string[]) =>
  startCliAgent(emu, [
    'start',
    ...args,
    '--port',
    '0',
    '--num-idle-processes',
    '1',
    '--load-threshold',
    'Infinity',
  ]);

/** Waits for both agents' registrations; returns their worker ids by agent name. */
async function registered(agent: AgentProcess): Promise<Record<string, string>> {
  await until(
    () => agent.records.filter(isRegistered).length >= 2,
    'both agents registering',
    30_000,
  );
  const ids: Record<string, string> = {};
  for (const r of agent.records.filter(isRegistered)) ids[String(r.agentName)] = String(r.workerId);
  for (const id of Object.values(ids)) {
    await emu.waitForEvent('worker-updated', (e) => e.workerId === id && e.status === 'available');
  }
  return ids;
}

describe('agent start with several agent files', () => {
  it('registers each file as its own worker, in one process with one health server', async () => {
    const agent = start(SUPPORT, SALES);
    const ids = await registered(agent);
    expect(Object.keys(ids).sort()).toEqual(['sales', 'support']);
    expect(emu.worker(ids.support!)?.agentName).toBe('support');
    expect(emu.worker(ids.sales!)?.agentName).toBe('sales');
    const port = await healthPort(agent);

    const ready = await until(async () => {
      const r = await get(port, '/ready');
      return r.status === 200 ? r : undefined;
    }, '/ready to say 200');
    expect(ready.body).toMatch(/^support: (available|full)\nsales: (available|full)\n$/);

    const info = JSON.parse((await get(port, '/worker')).body) as {
      status: string;
      pid: number;
      agents: { id: string; agent_name: string; worker_type: string }[];
    };
    expect(info.status).toBe('registered');
    expect(info.pid).toBe(agent.child.pid);
    expect(info.agents.map((a) => [a.agent_name, a.id, a.worker_type])).toEqual([
      ['support', ids.support, 'JT_ROOM'],
      ['sales', ids.sales, 'JT_ROOM'],
    ]);

    // Each agent runs its own dispatches, prewarmed by its own prewarmFnc.
    emu.createDispatch({ room: 'multi-sales', agentName: 'sales' });
    const job = await agent.waitForLog((r) => r.message === 'group job', 'the sales job');
    expect(job).toMatchObject({ agent: 'sales', prewarmedFor: 'sales', agentName: 'sales' });

    const metrics = (await get(port, '/metrics')).body;
    expect(metrics).toMatch(/agentstate_active_jobs\{agent="sales"\} 1/);
    expect(metrics).toMatch(/agentstate_active_jobs\{agent="support"\} 0/);
    // One family per metric: HELP/TYPE once, whatever the number of agents.
    expect(metrics.match(/^# TYPE agentstate_active_jobs /gm)).toHaveLength(1);
  });

  it('drains every agent on SIGTERM and exits 0 when the last job of each has ended', async () => {
    const agent = start(SUPPORT, SALES);
    const ids = await registered(agent);
    emu.createDispatch({ room: 'term-support', agentName: 'support' });
    emu.createDispatch({ room: 'term-sales', agentName: 'sales' });
    const [a, b] = await Promise.all([
      emu.waitForJob((j) => j.room === 'term-support' && j.status === 'running'),
      emu.waitForJob((j) => j.room === 'term-sales' && j.status === 'running'),
    ]);
    await until(() => agent.records.filter((r) => r.message === 'group job').length === 2, 'jobs');
    const since = emu.lastSeq;
    agent.child.kill('SIGTERM');
    for (const id of Object.values(ids)) {
      await emu.waitForEvent('worker-updated', (e) => e.workerId === id && e.status === 'full', {
        after: since,
      });
    }
    emu.terminateJob(a.id);
    await emu.waitForJobStatus(a.id, 'success');
    await new Promise((r) => setTimeout(r, 500));
    expect(agent.child.exitCode).toBeNull();
    emu.terminateJob(b.id);
    expect(await agent.exited).toBe(0);
    expect(emu.job(b.id)?.status).toBe('success');
  });

  it.each([
    [
      'a missing file',
      [SUPPORT, 'test/fixtures/group/missing.ts'],
      /agent file not found: test\/fixtures\/group\/missing\.ts/,
    ],
    [
      'a file that fails to load',
      [SUPPORT, 'test/fixtures/group/broken.ts'],
      /could not load test\/fixtures\/group\/broken\.ts: broken on purpose/,
    ],
    [
      'two agents with the same name and type',
      [SUPPORT, 'test/fixtures/group/support-again.ts'],
      /support\.ts\).*support-again\.ts\).*both register agentName "support" as a room worker/,
    ],
  ])('exits 2 before anything registers for %s, naming the file', async (_what, files, message) => {
    const before = emu.workers.length;
    const agent = start(...files);
    expect(await agent.exited).toBe(2);
    expect(agent.records.map((r) => r.message).join('\n')).toMatch(message);
    expect(agent.records.map((r) => r.message)).not.toContain('health server listening');
    expect(agent.records.filter(isRegistered)).toEqual([]);
    expect(emu.workers.length).toBe(before);
  });
});

describe('agent dev with several agent files', () => {
  const TEMPLATE = new URL('../fixtures/cli/reload-agent.ts', import.meta.url);
  const INDEX = pathToFileURL(new URL('../../src/index.ts', import.meta.url).pathname).href;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentstate-multi-reload-'));
    await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** Each agent in its own directory, so that each has its own watcher. */
  async function writeAgent(name: string, version: string): Promise<string> {
    const src = (await readFile(TEMPLATE, 'utf8'))
      .replace("'../../../src/index.ts'", JSON.stringify(INDEX))
      .replace("const CODE_VERSION = 'v1'", `const CODE_VERSION = '${version}'`)
      .replace('loadFnc: () => 0,', `agentName: '${name}',\n  loadFnc: () => 0,`);
    await mkdir(join(dir, name), { recursive: true });
    const file = join(dir, name, 'agent.ts');
    await writeFile(file, src);
    return file;
  }
  const prewarmed = (name: string, version: string) => (r: LogRecord) =>
    r.message === 'prewarmed' && r.agentName === name && r.codeVersion === version;

  it('reloads the idle processes of the agent whose files changed, and only those', async () => {
    const a = await writeAgent('reload-a', 'v1');
    const b = await writeAgent('reload-b', 'v1');
    const agent = startCliAgent(emu, ['dev', a, b, '--log-format', 'json', '--no-inspect']);
    await until(
      () => agent.records.filter((r) => r.message === 'watching for changes').length === 2,
      'a watcher per agent',
    );
    await agent.waitForLog(prewarmed('reload-a', 'v1'), 'a v1 process of reload-a');
    await agent.waitForLog(prewarmed('reload-b', 'v1'), 'a v1 process of reload-b');

    await writeAgent('reload-b', 'v2');
    await agent.waitForLog(prewarmed('reload-b', 'v2'), 'a v2 process of reload-b');
    await new Promise((r) => setTimeout(r, 500));
    expect(
      agent.records.filter((r) => r.message === 'prewarmed' && r.agentName === 'reload-a'),
    ).toHaveLength(1);
    expect(agent.records.filter(isRegistered)).toHaveLength(2);

    agent.child.kill('SIGINT');
    expect(await agent.exited).toBe(0);
  });
});

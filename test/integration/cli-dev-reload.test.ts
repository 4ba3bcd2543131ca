/**
 * `agent dev` hot reload through the real bin: after the agent file changes, idle processes are
 * replaced by new ones running the new code, the running job stays on its process and old
 * code, and the server connection is kept (same worker id, one registration, no second job).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/testing/index.ts';
import { killAllAgents, type LogRecord } from '../support/agent-process.ts';
import { isRegistered, startCliAgent, TEST_KEY, TEST_SECRET, until } from '../support/cli-agent.ts';

const TEMPLATE = new URL('../fixtures/cli/reload-agent.ts', import.meta.url);
const INDEX = pathToFileURL(new URL('../../src/index.ts', import.meta.url).pathname).href;

let emu: Emulator;
let dir: string;
beforeAll(async () => {
  emu = await startEmulator({ keys: { [TEST_KEY]: TEST_SECRET } });
  dir = await mkdtemp(join(tmpdir(), 'agentstate-reload-'));
  // An ESM project, like a user's: tsx then loads agent.ts as a module.
  await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n');
});
afterEach(() => killAllAgents());
afterAll(async () => {
  await emu.close();
  await rm(dir, { recursive: true, force: true });
});

async function writeAgent(version: string): Promise<string> {
  const src = (await readFile(TEMPLATE, 'utf8'))
    .replace("'../../../src/index.ts'", JSON.stringify(INDEX))
    .replace("const CODE_VERSION = 'v1'", `const CODE_VERSION = '${version}'`);
  const file = join(dir, 'agent.ts');
  await writeFile(file, src);
  return file;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const prewarmed = (version: string) => (r: LogRecord) =>
  r.message === 'prewarmed' && r.codeVersion === version;

describe('agent dev hot reload', () => {
  it('swaps idle processes for new code, keeps the running job and the connection', async () => {
    const file = await writeAgent('v1');
    const agent = startCliAgent(emu, ['dev', file, '--log-format', 'json', '--no-inspect']);
    const reg = await agent.waitForLog(isRegistered, 'registration');
    const workerId = reg.workerId as string;
    await emu.waitForWorker((w) => w.id === workerId);
    await agent.waitForLog((r) => r.message === 'watching for changes', 'the watcher');

    // A job on the first warm process; a second warm process replaces it in the pool.
    await agent.waitForLog(prewarmed('v1'), 'a v1 process');
    emu.createRoom('hold-reload');
    const job = await agent.waitForLog((r) => r.message === 'entrypoint', 'the v1 job');
    expect(job.codeVersion).toBe('v1');
    const jobPid = job.pid as number;
    await until(
      () => agent.records.filter(prewarmed('v1')).find((r) => r.pid !== jobPid),
      'a second v1 idle process',
    );
    const idleV1 = agent.records.filter(prewarmed('v1')).find((r) => r.pid !== jobPid)!;

    await writeAgent('v2');
    await agent.waitForLog(
      (r) => r.message === 'files changed: replacing idle processes',
      'reload',
    );
    const fresh = await agent.waitForLog(prewarmed('v2'), 'a v2 process');
    expect(fresh.pid).not.toBe(idleV1.pid);
    expect(fresh.pid).not.toBe(jobPid);
    expect(fresh.workerId).toBe(workerId);
    await until(() => !alive(idleV1.pid as number), 'the old idle process to exit');

    // The running job: same process, still running, never launched twice.
    expect(alive(jobPid)).toBe(true);
    const jobs = emu.jobs.filter((j) => j.room === 'hold-reload');
    expect(jobs).toHaveLength(1);
    expect(jobs[0]?.status).toBe('running');
    expect(agent.records.filter((r) => r.message === 'entrypoint')).toHaveLength(1);

    // The connection: one registration, the same worker, still connected.
    expect(agent.records.filter(isRegistered)).toHaveLength(1);
    expect(emu.worker(workerId)?.connected).toBe(true);

    // A new job runs the new code on the fresh process.
    emu.createRoom('hold-reload-2');
    const second = await agent.waitForLog(
      (r) => r.message === 'entrypoint' && r.roomName === 'hold-reload-2',
      'the v2 job',
    );
    expect(second).toMatchObject({ codeVersion: 'v2', pid: fresh.pid, workerId });

    agent.child.kill('SIGINT');
    await agent.waitForLog((r) => r.message.startsWith('SIGINT received'), 'draining');
    agent.child.kill('SIGINT');
    expect(await agent.exited).toBe(0);
  });

  it('--no-watch turns reload off', async () => {
    const file = await writeAgent('v1');
    const agent = startCliAgent(emu, [
      'dev',
      file,
      '--log-format',
      'json',
      '--no-watch',
      '--no-inspect',
    ]);
    await agent.waitForLog(prewarmed('v1'), 'a v1 process');
    await writeAgent('v3');
    await new Promise((r) => setTimeout(r, 1000));
    expect(agent.records.some((r) => r.message.startsWith('files changed'))).toBe(false);
    expect(agent.records.some((r) => r.message === 'watching for changes')).toBe(false);
    agent.child.kill('SIGINT');
    expect(await agent.exited).toBe(0);
  });
});

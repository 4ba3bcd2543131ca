/**
 * Several agents in one worker process (`WorkerGroup`) against the emulator, with real job
 * processes: each agent registers as its own worker, and they share one machine-level policy
 * (load sample, process-wide maxJobs and loadThreshold) and one drain.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  InvalidOptionError,
  WorkerGroup,
  WorkerOptions,
  WorkerType,
  type WorkerGroupOptionsInit,
  type WorkerOptionsInit,
} from '../../src/index.ts';
import { workerInfo } from '../../src/http/worker-info.ts';
import { startEmulator, type Emulator } from '../../src/testing/index.ts';
import { eventually, scriptedAgent } from '../support/emulated-worker.ts';

let emu: Emulator;
const groups: WorkerGroup[] = [];

beforeAll(async () => {
  emu = await startEmulator({ defaultWaitMs: 15_000 });
});
afterEach(async () => {
  await Promise.all(groups.splice(0).map((g) => g.stop('test over')));
});
afterAll(() => emu?.close());

function agent(agentName: string, extra: Partial<WorkerOptionsInit> = {}): WorkerOptions {
  return new WorkerOptions({
    entrypointFnc: () => undefined,
    agentModule: scriptedAgent,
    numIdleProcesses: 1,
    agentName,
    wsUrl: emu.url,
    apiKey: emu.apiKey,
    apiSecret: emu.apiSecret,
    ...extra,
  });
}

/** Starts a group whose machine load is `load.value` (0 unless a test changes it). */
function startGroup(agents: WorkerOptions[], options: WorkerGroupOptionsInit = {}) {
  const load = { value: 0, calls: 0 };
  const group = new WorkerGroup(
    agents,
    {
      loadFnc: () => {
        load.calls += 1;
        return load.value;
      },
      ...options,
    },
    { handleSignals: false, loadSampleInterval: 100 },
  );
  groups.push(group);
  const done = group.run();
  done.catch(() => undefined);
  return { group, load, done };
}

/** Each agent's worker id, once the emulator has heard every one report `available`. */
async function allAvailable(group: WorkerGroup, after = 0): Promise<string[]> {
  const ids = await eventually(
    () => (group.workers.every((w) => w.id) ? group.workers.map((w) => w.id!) : undefined),
    'every agent to register',
  );
  for (const id of ids) {
    await emu.waitForEvent('worker-updated', (e) => e.workerId === id && e.status === 'available', {
      after,
    });
  }
  return ids;
}

const reported = (id: string, status: 'available' | 'full', after: number) =>
  emu.waitForEvent('worker-updated', (e) => e.workerId === id && e.status === status, { after });

describe('WorkerGroup (emulator, real job processes)', () => {
  it('registers each agent as its own worker, with its own name, type, permissions and warm process', async () => {
    const { group } = startGroup([
      agent('g-support', { permissions: { hidden: true } }),
      agent('g-sales', { workerType: WorkerType.PUBLISHER }),
    ]);
    const [supportId, salesId] = await allAvailable(group);
    expect(emu.worker(supportId!)).toMatchObject({
      agentName: 'g-support',
      type: 'room',
      permissions: expect.objectContaining({ hidden: true }) as unknown,
    });
    expect(emu.worker(salesId!)).toMatchObject({ agentName: 'g-sales', type: 'publisher' });
    expect(supportId).not.toBe(salesId);
    // One warm pool per agent: each prewarms its own process.
    await eventually(
      () => group.workers.every((w) => workerInfo(w).idle_processes === 1),
      'one idle process per agent',
      20_000,
    );
    const pids = group.workers.flatMap((w) =>
      Object.values(w.actor?.getSnapshot().context.procs ?? {}).map((p) => p.pid),
    );
    expect(new Set(pids).size).toBe(2);
  });

  it('caps the jobs of all agents together at the group maxJobs, and frees the slot when a job ends', async () => {
    const { group } = startGroup([agent('cap-a'), agent('cap-b')], { maxJobs: 1 });
    const [aId, bId] = await allAvailable(group);
    const since = emu.lastSeq;
    emu.createDispatch({ room: 'cap-1', agentName: 'cap-a' });
    const job = await emu.waitForJob((j) => j.room === 'cap-1' && j.status === 'running');
    // The other agent has no job of its own, yet the process is at its cap: it reports full.
    await reported(bId!, 'full', since);
    emu.createDispatch({ room: 'cap-2', agentName: 'cap-b' });
    await emu.waitForEvent(
      'job-not-dispatched',
      (e) => e.room === 'cap-2' && e.reason === 'no-capacity',
      { after: since },
    );

    const freed = emu.lastSeq;
    emu.terminateJob(job.id);
    await reported(bId!, 'available', freed);
    await reported(aId!, 'available', freed);
    emu.createDispatch({ room: 'cap-3', agentName: 'cap-b', metadata: 'return' });
    const next = await emu.waitForJob((j) => j.room === 'cap-3');
    await emu.waitForJobStatus(next.id, 'success');
  });

  it('never lets two agents take the group’s last slot with offers that arrive together', async () => {
    const { group } = startGroup([agent('race-a'), agent('race-b')], { maxJobs: 1 });
    await allAvailable(group);
    emu.createDispatch({ room: 'race-1', agentName: 'race-a' });
    emu.createDispatch({ room: 'race-2', agentName: 'race-b' });
    await emu.waitForJob((j) => j.room.startsWith('race-') && j.status === 'running');
    await emu.waitFor(() =>
      emu.jobs.filter((j) => j.room.startsWith('race-')).every((j) => j.status !== 'pending')
        ? true
        : undefined,
    );
    expect(group.activeJobs).toHaveLength(1);
    expect(
      emu.jobs.filter((j) => j.room.startsWith('race-') && j.status === 'running'),
    ).toHaveLength(1);
  });

  it('reports every agent full while the one shared machine load sample is at or above the group loadThreshold', async () => {
    const { group, load } = startGroup([agent('load-a'), agent('load-b')], {
      loadThreshold: 0.8,
    });
    const ids = await allAvailable(group);
    const since = emu.lastSeq;
    load.value = 0.85;
    for (const id of ids) {
      const e = await reported(id, 'full', since);
      expect(e.load).toBeCloseTo(0.85, 5);
    }
    // One sample for the process: over a second of 100 ms ticks the loadFnc ran about ten
    // times, not ten per agent.
    const before = load.calls;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(load.calls - before).toBeLessThanOrEqual(13);
    expect(group.load).toBe(0.85);

    const relief = emu.lastSeq;
    load.value = 0.1;
    for (const id of ids) await reported(id, 'available', relief);
  });

  it('lets an agent with its own loadFnc report that load, still gated by the machine load', async () => {
    const { group, load } = startGroup([
      agent('own-load', { loadFnc: () => 0.5, loadThreshold: 0.9 }),
      agent('machine-load'),
    ]);
    const [ownId, machineId] = await allAvailable(group);
    await emu.waitForEvent('worker-updated', (e) => e.workerId === ownId && e.load === 0.5);
    const since = emu.lastSeq;
    load.value = 0.75; // above the group's default 0.7
    await reported(ownId!, 'full', since);
    await reported(machineId!, 'full', since);
  });

  it('drains every agent and resolves only when the last job of every agent has ended', async () => {
    const { group, done } = startGroup([agent('drain-a'), agent('drain-b')]);
    const ids = await allAvailable(group);
    emu.createDispatch({ room: 'drain-a-1', agentName: 'drain-a' });
    emu.createDispatch({ room: 'drain-b-1', agentName: 'drain-b' });
    const [ja, jb] = await Promise.all([
      emu.waitForJob((j) => j.room === 'drain-a-1' && j.status === 'running'),
      emu.waitForJob((j) => j.room === 'drain-b-1' && j.status === 'running'),
    ]);
    await eventually(
      () => group.activeJobs.filter((j) => j.phase === 'running').length === 2,
      'both jobs running',
    );
    const since = emu.lastSeq;
    const drained = group.drain('test drain');
    for (const id of ids) await reported(id, 'full', since);
    expect(group.agents.map((a) => a.status)).toEqual(['draining', 'draining']);

    let stopped = false;
    void drained.then(() => (stopped = true));
    emu.terminateJob(ja.id);
    await emu.waitForJobStatus(ja.id, 'success');
    await eventually(() => group.workers[0]!.status === 'stopped', 'the first agent to stop');
    await new Promise((r) => setTimeout(r, 200));
    expect(stopped).toBe(false);
    emu.terminateJob(jb.id);
    await drained;
    await done;
    expect(group.agents.map((a) => a.status)).toEqual(['stopped', 'stopped']);
  });

  it('hands each job process its own agent when several agents share one module', async () => {
    const shared = fileURLToPath(new URL('../fixtures/group/two-in-one.ts', import.meta.url));
    const { group } = startGroup([
      agent('in-one-a', { agentModule: shared }),
      agent('in-one-b', { agentModule: shared }),
    ]);
    await allAvailable(group);
    emu.createDispatch({ room: 'in-one-1', agentName: 'in-one-a' });
    emu.createDispatch({ room: 'in-one-2', agentName: 'in-one-b' });
    const [ja, jb] = await Promise.all([
      emu.waitForJob((j) => j.room === 'in-one-1'),
      emu.waitForJob((j) => j.room === 'in-one-2'),
    ]);
    expect((await emu.waitForJobStatus(ja.id, ['success', 'failed'])).status).toBe('success');
    const b = await emu.waitForJobStatus(jb.id, ['success', 'failed']);
    expect(b).toMatchObject({ status: 'failed', error: 'entrypoint threw: agent in-one-b ran' });
  });

  it('refuses two agents with the same agentName and workerType before either registers', async () => {
    const before = emu.workers.length;
    const { done } = startGroup([agent('twin'), agent('twin')]);
    const err = await done.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidOptionError);
    expect((err as Error).message).toMatch(/agents\[0\].*agents\[1\].*"twin".*room/);
    await new Promise((r) => setTimeout(r, 300));
    expect(emu.workers.length).toBe(before);
    // The same name with another worker type is two different workers: allowed.
    const { group } = startGroup([
      agent('twin'),
      agent('twin', { workerType: WorkerType.PUBLISHER }),
    ]);
    await allAvailable(group);
  });
});

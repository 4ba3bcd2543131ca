import { describe, expect, it } from 'vitest';
import { WorkerPermissions, WorkerType } from '../../src/index.ts';
import { VERSION } from '../../src/version.ts';
import { eventually, useEmulatedWorkers } from '../support/emulated-worker.ts';

const { emu, workers } = useEmulatedWorkers();

describe('worker dispatch (emulator, real job processes)', () => {
  it('registers with its type, agent name, version and permissions', async () => {
    const worker = workers.start({
      agentName: 'reg-check',
      workerType: WorkerType.PUBLISHER,
      permissions: new WorkerPermissions({ canPublish: false, hidden: true }),
    });
    const id = await workers.ready(worker);
    const w = emu().worker(id)!;
    expect(w).toMatchObject({ type: 'publisher', version: VERSION });
    expect(w.permissions).toMatchObject({
      canPublish: false,
      canSubscribe: true,
      canPublishData: true,
      hidden: true,
      agent: true,
    });
  });

  it('accepts a job with the identity, name and attributes from requestFnc and runs it', async () => {
    const worker = workers.start({
      agentName: 'accepting',
      requestFnc: (req) =>
        req.accept({ name: 'Helper', identity: `helper-${req.id}`, attributes: { role: 'echo' } }),
    });
    await workers.ready(worker);
    emu().createDispatch({ room: 'accept-room', agentName: 'accepting' });
    const job = await emu().waitForJob((j) => j.room === 'accept-room' && j.status === 'running');
    expect(job.accept).toMatchObject({
      name: 'Helper',
      identity: `helper-${job.id}`,
      attributes: { role: 'echo' },
    });
    await emu().waitFor(() =>
      worker.activeJobs.find((j) => j.id === job.id && j.phase === 'running'),
    );
    expect(worker.activeJobs[0]?.pid).toBeTypeOf('number');
  });

  it('answers availability well inside the server window', async () => {
    await workers.ready(workers.start({ agentName: 'fast' }));
    emu().createDispatch({ room: 'fast-room', agentName: 'fast', metadata: 'return' });
    const job = await emu().waitForJob((j) => j.room === 'fast-room');
    const sent = await emu().waitForEvent('availability-sent', (e) => e.jobId === job.id);
    const answered = await emu().waitForEvent('availability-answered', (e) => e.jobId === job.id);
    expect(answered.available).toBe(true);
    expect(answered.at - sent.at).toBeLessThan(1_000);
  });

  it('reports a job that ends by itself as a success, and one that throws as failed', async () => {
    await workers.ready(workers.start({ agentName: 'ending' }));
    emu().createDispatch({ room: 'ends-ok', agentName: 'ending', metadata: 'return' });
    const ok = await emu().waitForJob((j) => j.room === 'ends-ok');
    await emu().waitForJobStatus(ok.id, 'success');
    emu().createDispatch({ room: 'ends-bad', agentName: 'ending', metadata: 'throw' });
    const bad = await emu().waitForJob((j) => j.room === 'ends-bad');
    const ended = await emu().waitForJobStatus(bad.id, 'failed');
    expect(ended.error).toContain('scripted failure');
  });

  it('declines when requestFnc rejects, and the job goes to another worker', async () => {
    const picky = workers.start({ agentName: 'shared', requestFnc: (req) => req.reject() });
    // Four warm processes, so the willing worker can take all four jobs at once.
    const willing = workers.start({ agentName: 'shared', numIdleProcesses: 4 });
    const pickyId = await workers.ready(picky);
    const willingId = await workers.ready(willing);
    await eventually(() => {
      const procs = Object.values(willing.actor!.getSnapshot().context.procs);
      return procs.filter((p) => p.phase === 'idle').length === 4;
    }, 'four warm processes');
    // Several jobs, so the random choice hits the picky worker first at least once.
    for (let i = 0; i < 4; i++) emu().createDispatch({ room: `shared-${i}`, agentName: 'shared' });
    const jobs = await emu().waitFor(() => {
      const js = emu().jobs.filter((j) => j.room.startsWith('shared-'));
      return js.length === 4 && js.every((j) => j.status === 'running') ? js : undefined;
    });
    expect(jobs.every((j) => j.workerId === willingId)).toBe(true);
    const declined = emu().events.filter(
      (e) => e.type === 'availability-answered' && e.workerId === pickyId && !e.available,
    );
    const offeredToPicky = jobs.filter((j) => j.tries.includes(pickyId));
    expect(declined.length).toBe(offeredToPicky.length);
  });

  it('rejects a request whose requestFnc never answers, within its budget', async () => {
    const worker = workers.start({
      agentName: 'slow-decider',
      requestTimeout: 300,
      requestFnc: () => new Promise<void>(() => undefined),
    });
    await workers.ready(worker);
    emu().createDispatch({ room: 'slow-room', agentName: 'slow-decider' });
    const job = await emu().waitForJob((j) => j.room === 'slow-room');
    const answered = await emu().waitForEvent('availability-answered', (e) => e.jobId === job.id);
    expect(answered.available).toBe(false);
  });

  it('takes one PUBLISHER job per publishing participant, with the publisher set', async () => {
    const worker = workers.start({ agentName: 'per-publisher', workerType: WorkerType.PUBLISHER });
    await workers.ready(worker);
    emu().createRoom('pub-room', { agents: [{ agentName: 'per-publisher' }] });
    emu().addParticipant('pub-room', 'alice');
    emu().addParticipant('pub-room', 'bob');
    emu().publishTrack('pub-room', 'alice');
    emu().publishTrack('pub-room', 'alice');
    emu().publishTrack('pub-room', 'bob');
    const jobs = await emu().waitFor(() => {
      const js = emu().jobs.filter((j) => j.room === 'pub-room' && j.status === 'running');
      return js.length === 2 ? js : undefined;
    });
    expect(jobs.map((j) => j.participant).sort()).toEqual(['alice', 'bob']);
    await emu().waitFor(() => worker.activeJobs.length === 2);
    expect(worker.activeJobs.map((j) => j.participantIdentity).sort()).toEqual(['alice', 'bob']);
  });
});

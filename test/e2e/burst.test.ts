/**
 * A burst of dispatches bigger than the warm pool, on a real livekit-server with real job
 * processes (the `agent` bin running test/fixtures/e2e/agent.ts): the worker keeps one warm
 * process, and six dispatches arrive at once. The load policy allows them all (constant load 0,
 * no threshold, `maxJobs` above the burst), so every one must be accepted, queued for a process
 * if none is idle, and run (README "Capacity"); once the rooms are gone, the pool is back to its
 * one warm process with nothing else left running.
 */
import { AgentDispatchClient, RoomServiceClient } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllAgents } from '../support/agent-process.ts';
import { get, healthPort, until } from '../support/cli-agent.ts';
import {
  answers,
  jobEnded,
  jobReport,
  startFixtureWorker,
  stopWorkers,
  type FixtureWorker,
  type JobReport,
} from '../support/e2e-workers.ts';
import { startLiveKitServer, type LiveKitServer } from '../support/livekit-server.ts';
import { withDeadline } from '../support/participants.ts';
import { descendants, waitUntilGone } from '../support/process-table.ts';

const BURST = 6;
const IDLE = 1;

interface WorkerDoc {
  status: string;
  active_jobs: number;
  idle_processes: number;
  processes: number;
}

let server: LiveKitServer;
let worker: FixtureWorker;
let port: number;

/**
 * The worker's job processes. Run from the sources under tsx, a process whose tsx cache is cold
 * also has a child of tsx's own, esbuild's transform service (`esbuild --service`), which lives
 * as long as that process: not a job process.
 */
const jobProcesses = (pid: number) =>
  descendants(pid).filter((p) => !p.command.includes('esbuild --service'));

const workerDoc = async (): Promise<WorkerDoc> =>
  JSON.parse((await get(port, '/worker')).body) as WorkerDoc;

beforeAll(async () => {
  // No user ever joins these rooms: a room with only an agent in it counts as empty, and the
  // default 10 s empty timeout could close it while the burst's last jobs are still starting.
  server = await startLiveKitServer({ name: 'e2e-burst', emptyTimeoutSeconds: 120 });
  worker = await startFixtureWorker(server, 'burst', {
    env: { E2E_AGENT_NAME: 'burst' },
    idleProcesses: IDLE,
    // Load 0 (the fixture's constant) under no threshold, and a job cap above the burst: nothing
    // in the user's policy refuses any of the six.
    args: ['--load-threshold', 'Infinity', '--max-jobs', String(BURST + 4)],
  });
  port = await healthPort(worker);
  await until(
    async () => {
      const d = await workerDoc();
      return (
        d.status === 'available' &&
        d.idle_processes === IDLE &&
        d.processes === IDLE &&
        jobProcesses(worker.child.pid!).length === IDLE
      );
    },
    'the warm process, and no other',
    30_000,
  );
}, 60_000);
afterAll(async () => {
  try {
    if (worker) await stopWorkers([worker]);
  } finally {
    await killAllAgents();
    await server?.stop();
  }
});

describe('a burst of dispatches on a real server', () => {
  it('serves a burst bigger than the warm pool in full, then is back to its warm pool with no process left over', async () => {
    const workerPid = worker.child.pid!;
    const warmBefore = jobProcesses(workerPid).map((p) => p.pid);
    expect(warmBefore).toHaveLength(IDLE);

    const rooms = Array.from({ length: BURST }, (_, i) => `burst-${i}`);
    const dispatches = new AgentDispatchClient(server.httpUrl, server.apiKey, server.apiSecret);
    const roomService = new RoomServiceClient(server.httpUrl, server.apiKey, server.apiSecret);
    await withDeadline(
      Promise.all(rooms.map((r) => dispatches.createDispatch(r, 'burst'))),
      10_000,
      'the dispatches',
    );

    // Every agent runs its job: its entrypoint connected and reported…
    const reports: JobReport[] = await Promise.all(rooms.map((r) => jobReport(worker, r, 40_000)));
    const jobIds = reports.map((r) => r.jobId);
    expect(new Set(jobIds).size).toBe(BURST);
    expect(new Set(reports.map((r) => r.procPid)).size).toBe(BURST); // one process per job
    // …and the server sees each agent in its room.
    for (const [i, room] of rooms.entries()) {
      await until(
        async () =>
          (await roomService.listParticipants(room)).some(
            (p) => p.identity === `burst-${jobIds[i]}`,
          ),
        `the agent in ${room} as the server lists it`,
        10_000,
      );
    }
    // Each offer was accepted, none declined (no `startDelay`, no `full`).
    const offers = answers(worker).filter((a) => jobIds.includes(String(a.jobId)));
    expect(offers.map((a) => a.message)).toEqual(Array(BURST).fill('job accepted'));

    // Deleting the rooms ends the jobs; each ends with a reported outcome.
    await withDeadline(
      Promise.all(rooms.map((r) => roomService.deleteRoom(r))),
      10_000,
      'deleting the rooms',
    );
    const ended = await Promise.all(jobIds.map((id) => jobEnded(worker, id, 30_000)));
    for (const e of ended) expect(e.outcome).toBe('success');

    // Back to one warm process: the job processes are gone, and no other process is left.
    await waitUntilGone(
      reports.map((r) => r.procPid),
      15_000,
    );
    const back = await until(
      async () => {
        const d = await workerDoc();
        return d.active_jobs === 0 && d.idle_processes === IDLE && d.processes === IDLE && d;
      },
      'the warm pool back to its size',
      15_000,
    );
    expect(back).toMatchObject({ status: 'available' });
    const left = jobProcesses(workerPid);
    expect(left).toHaveLength(IDLE);
    expect(reports.map((r) => r.procPid)).not.toContain(left[0]!.pid);
    // Nothing of the ended job processes is left either (e.g. an esbuild service of theirs).
    for (const p of descendants(workerPid)) expect([workerPid, left[0]!.pid]).toContain(p.ppid);
  }, 60_000);
});

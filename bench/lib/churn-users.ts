/**
 * A churn slice's users, in a process of their own: one per slice, started before it and gone
 * after it (`./churn.ts` forks this file).
 *
 * Why not in the bench process: @livekit/rtc-node's native side gets slower in a process that
 * keeps rooms open back to back. With 4 users joining and leaving in a loop, its tokio threads
 * spent 10 ms of CPU per join at first and 35 ms after ~500 joins (and the process's RSS grew
 * ~1 MB per room), so every slice was slower than the one before it, whichever framework ran it.
 * A process per slice gives each slice users in the same state.
 *
 * Over the IPC channel: the child says `ready` once rtc-node is loaded, the parent sends the task
 * (after its CPU snapshot), and the child runs the slice, sends its `result` and exits.
 */
import './quiet-rtc.ts';
import { AgentDispatchClient } from 'livekit-server-sdk';
import { runOneJob, type JobDeps, type JobTiming } from './scenarios.ts';
import type { Framework, ServerCreds } from './workers.ts';

export interface ChurnUsersTask {
  server: ServerCreds & { httpUrl: string };
  stampsFile?: string;
  framework: Framework;
  agentName: string;
  sliceMs: number;
  concurrency: number;
}

export interface ChurnUsersResult {
  /** The jobs that ended inside the slice, in the order they ended (failed ones included). */
  timings: JobTiming[];
  /** Jobs that ended well, counted until every user was back (the CPU covers them all). */
  ran: number;
  /** This process's CPU (ms, all its threads) from the task until every user was back. */
  cpuMs: number;
}

export type ChurnUsersMessage =
  | { type: 'ready' }
  | { type: 'result'; result: ChurnUsersResult }
  | { type: 'failed'; error: string };

async function runSlice(task: ChurnUsersTask): Promise<ChurnUsersResult> {
  const deps: JobDeps = {
    server: task.server,
    dispatch: new AgentDispatchClient(
      task.server.httpUrl,
      task.server.apiKey,
      task.server.apiSecret,
    ),
    ...(task.stampsFile === undefined ? {} : { stampsFile: task.stampsFile }),
  };
  // The assignment lines are the worker's output, read by the parent: it fills in
  // assignment → entrypoint from each timing's jobId and entryAt.
  const worker = {
    framework: task.framework,
    agentName: task.agentName,
    waitForAssignment: () => Promise.resolve(undefined),
  };
  const cpuStart = process.cpuUsage();
  const end = performance.now() + task.sliceMs;
  const timings: JobTiming[] = [];
  let ran = 0;
  const loop = async () => {
    while (performance.now() < end) {
      const r = await runOneJob(deps, worker, 'churn', 15_000, false);
      if (r.ok) ran++;
      if (performance.now() > end) break; // finished after the slice: not counted
      timings.push(r);
    }
  };
  await Promise.all(Array.from({ length: task.concurrency }, loop));
  const cpu = process.cpuUsage(cpuStart);
  return { timings, ran, cpuMs: (cpu.user + cpu.system) / 1000 };
}

const send = (m: ChurnUsersMessage) =>
  new Promise<void>((done) => process.send!(m, undefined, {}, () => done()));

process.once('message', (task: ChurnUsersTask) => {
  void runSlice(task)
    .then((result) => send({ type: 'result', result }))
    .catch((error: unknown) =>
      send({ type: 'failed', error: error instanceof Error ? error.message : String(error) }),
    )
    .finally(() => process.exit(0));
});
void send({ type: 'ready' });

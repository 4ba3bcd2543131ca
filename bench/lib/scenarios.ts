/**
 * One bench job as a user sees it: join a room, ask the server for the framework's agent, see the
 * agent join, get its data message, leave.
 */
import { readFileSync } from 'node:fs';
import { ParticipantKind, RoomEvent, type RemoteParticipant } from '@livekit/rtc-node';
import { AgentDispatchClient } from 'livekit-server-sdk';
import { joinRoom, withDeadline } from '../../test/support/participants.ts';
import type { ServerCreds, WorkerHandle } from './workers.ts';

export const nowMs = (): number => performance.timeOrigin + performance.now();

export interface JobTiming {
  ok: boolean;
  error?: string;
  /** The job the agent served (its data message says). */
  jobId?: string;
  /** When its entrypoint was called (agent's clock, ms since the epoch). */
  entryAt?: number;
  /** createDispatch sent → agent participant visible to the user. */
  dispatchToJoinedMs?: number;
  /** createDispatch sent → the agent's entrypoint called (agent's clock, same machine). */
  dispatchToEntryMs?: number;
  /** JobAssignment frame at the worker → entrypoint called. */
  assignmentToEntryMs?: number;
  /** createDispatch sent → the agent's data message received. */
  dispatchToDataMs?: number;
  /** Inside the job (agent's clock, then the user's; same machine): entrypoint → connect resolved. */
  entryToConnectedMs?: number;
  /** Connect resolved → the user participant found (it joined before the dispatch). */
  connectedToUserMs?: number;
  /** User found → the publish call resolved (needs `JobDeps.stampsFile`). */
  userToPublishedMs?: number;
  /** Publish call resolved → the user receives the message (needs `JobDeps.stampsFile`). */
  publishedToReceivedMs?: number;
  /** Entrypoint called → the user receives the message. */
  entryToReceivedMs?: number;
  /** Where the user's own loop spent its time (bench clock), for reading the churn rate. */
  cycle?: JobCycle;
}

/** One bench job's wall time, split by what the user was doing (ms). */
export interface JobCycle {
  /** Joining the fresh room (token, signal, peer connection). */
  join: number;
  /** The createDispatch call until it resolved. */
  dispatchCall: number;
  /** createDispatch resolved → the agent's data message (and the join, if waited for). */
  toData: number;
  /** The bench's own bookkeeping after the message: the assignment line, the publish stamp. */
  bookkeeping: number;
  /** Leaving the room. */
  leave: number;
}

interface Payload {
  framework: string;
  jobId: string;
  entryAt: number;
  connectedAt?: number;
  userAt?: number;
  pid: number;
}

export interface JobDeps {
  server: ServerCreds & { httpUrl: string };
  dispatch: AgentDispatchClient;
  /** The file the fixtures append their "publish resolved" stamps to (env BENCH_STAMPS). */
  stampsFile?: string;
}

/** The fixture's `publishedAt` for `jobId` from the stamps file, waiting up to `timeoutMs`. */
async function publishedAt(
  file: string,
  jobId: string,
  timeoutMs: number,
): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // not written yet
    }
    for (const line of text.split('\n')) {
      if (!line.includes(jobId)) continue;
      const rec = JSON.parse(line) as { jobId: string; publishedAt: number };
      if (rec.jobId === jobId) return rec.publishedAt;
    }
    if (Date.now() > deadline) return undefined;
    await new Promise((done) => setTimeout(done, 20));
  }
}

let seq = 0;

/** What a job needs of the worker: whom to dispatch, and when it got the assignment. */
export type JobWorker = Pick<WorkerHandle, 'framework' | 'agentName' | 'waitForAssignment'>;

export async function runOneJob(
  deps: JobDeps,
  worker: JobWorker,
  tag: string,
  timeoutMs = 20_000,
  /** Also wait until the user sees the agent participant (false: the data message is enough). */
  waitForJoin = true,
): Promise<JobTiming> {
  const room = `${tag}-${worker.framework}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;
  const joinAt = nowMs();
  const user = await joinRoom(deps.server, { room, identity: 'user', timeoutMs: 15_000 });
  const phases: Partial<Record<keyof JobCycle, number>> = { join: nowMs() - joinAt };
  let result: JobTiming | undefined;
  try {
    let onJoin: ((p: RemoteParticipant) => void) | undefined;
    const joined = new Promise<number>((done) => {
      onJoin = (p) => {
        if (p.kind === ParticipantKind.AGENT) done(nowMs());
      };
      user.room.on(RoomEvent.ParticipantConnected, onJoin);
    });
    const data = new Promise<{ at: number; payload: Payload }>((done) => {
      user.room.on(RoomEvent.DataReceived, (payload, _from, _kind, topic) => {
        if (topic !== 'bench') return;
        done({ at: nowMs(), payload: JSON.parse(new TextDecoder().decode(payload)) as Payload });
      });
    });
    const t0 = nowMs();
    await deps.dispatch.createDispatch(room, worker.agentName);
    const dispatchedAt = nowMs();
    phases.dispatchCall = dispatchedAt - t0;
    const [joinedAt, got] = await withDeadline(
      Promise.all([waitForJoin ? joined : Promise.resolve(Number.NaN), data]),
      timeoutMs,
      `${worker.framework} agent in ${room}`,
    );
    if (onJoin) user.room.off(RoomEvent.ParticipantConnected, onJoin);
    phases.toData = nowMs() - dispatchedAt;
    const assignedAt = await worker.waitForAssignment(got.payload.jobId, 2_000);
    const p = got.payload;
    const pubAt = deps.stampsFile ? await publishedAt(deps.stampsFile, p.jobId, 2_000) : undefined;
    const diff = (a: number | undefined, b: number | undefined) =>
      a === undefined || b === undefined ? undefined : b - a;
    phases.bookkeeping = nowMs() - got.at;
    result = {
      ok: true,
      jobId: p.jobId,
      entryAt: p.entryAt,
      entryToConnectedMs: diff(p.entryAt, p.connectedAt),
      connectedToUserMs: diff(p.connectedAt, p.userAt),
      userToPublishedMs: diff(p.userAt, pubAt),
      publishedToReceivedMs: diff(pubAt, got.at),
      entryToReceivedMs: got.at - p.entryAt,
      dispatchToJoinedMs: waitForJoin ? joinedAt - t0 : undefined,
      dispatchToEntryMs: got.payload.entryAt - t0,
      assignmentToEntryMs: assignedAt === undefined ? undefined : got.payload.entryAt - assignedAt,
      dispatchToDataMs: got.at - t0,
    };
  } catch (error) {
    result = { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
  const leaveAt = nowMs();
  await user.leave().catch(() => undefined);
  phases.leave = nowMs() - leaveAt;
  if (result.ok) result.cycle = phases as JobCycle;
  return result;
}

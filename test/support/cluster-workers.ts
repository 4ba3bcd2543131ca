/**
 * Fixture workers and rooms on the nodes of a LiveKit cluster, for test/e2e/multi-node.test.ts:
 * start a worker on one node and wait until it is ready with warm processes, create a room
 * pinned to a node with a dispatch and a user in it, and read which worker served a room.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { ParticipantKind } from '@livekit/rtc-node';
import { AgentDispatchClient, RoomServiceClient } from 'livekit-server-sdk';
import type { WorkerInfo } from '../../src/http/worker-info.ts';
import type { LogRecord } from './agent-process.ts';
import { get, healthPort, until } from './cli-agent.ts';
import {
  answers,
  startFixtureWorker,
  type FixtureWorker,
  type FixtureWorkerOptions,
  type JobReport,
} from './e2e-workers.ts';
import type { LiveKitServer } from './livekit-server.ts';
import {
  joinRoom,
  waitForParticipant,
  withDeadline,
  type JoinedParticipant,
  type ServerCredentials,
} from './participants.ts';

/** Every worker's output goes to test-artifacts/multi-node/<label>.log, for post-mortems. */
const started: FixtureWorker[] = [];

/** Collects `worker`'s output for the next saveWorkerLogs() (readyWorker does it itself). */
export function keepLogOf(worker: FixtureWorker): void {
  started.push(worker);
}

export function saveWorkerLogs(): void {
  mkdirSync('test-artifacts/multi-node', { recursive: true });
  for (const w of started.splice(0))
    writeFileSync(`test-artifacts/multi-node/${w.label}.log`, w.output());
}

/** A fixture worker on `node` that has told the server it is available (`/ready` is 200). */
export async function readyWorker(
  node: ServerCredentials,
  label: string,
  agentName: string,
  options: FixtureWorkerOptions = {},
): Promise<FixtureWorker> {
  const worker = await startFixtureWorker(node, label, {
    ...options,
    env: { E2E_AGENT_NAME: agentName, ...options.env },
    args: ['--log-level', 'DEBUG', ...(options.args ?? [])],
  });
  keepLogOf(worker);
  const port = await healthPort(worker);
  // Ready, and every idle process warm: a job launched on a process still prewarming waits for
  // it, and on two shared cores that can outlast the prewarm budget.
  const idle = options.idleProcesses ?? 1;
  await until(
    async () => {
      if ((await get(port, '/ready')).status !== 200) return false;
      return (JSON.parse((await get(port, '/worker')).body) as WorkerInfo).idle_processes >= idle;
    },
    `${label} ready with ${idle} warm process(es)`,
    30_000,
  );
  return worker;
}

/**
 * Creates `room` on `node` (so its jobs are launched from there) with a dispatch of `agentName`
 * (`''`: only the room's automatic job), and has a user join it through `node` at once, before
 * the room's empty timeout can close it.
 */
export async function roomOn(node: LiveKitServer, room: string, agentName: string) {
  const rooms = new RoomServiceClient(node.httpUrl, node.apiKey, node.apiSecret);
  await withDeadline(rooms.createRoom({ name: room, nodeId: node.nodeId }), 5_000, `room ${room}`);
  if (agentName !== '') {
    const dispatches = new AgentDispatchClient(node.httpUrl, node.apiKey, node.apiSecret);
    await withDeadline(dispatches.createDispatch(room, agentName), 5_000, `dispatch in ${room}`);
  }
  return joinRoom(node, { room, identity: `user-${room}` });
}

/** Waits until the user sees the agent `identity` (kind AGENT) in its room. */
export function seesAgent(user: JoinedParticipant, identity: string) {
  return waitForParticipant(user.room, {
    identity,
    kind: ParticipantKind.AGENT,
    timeoutMs: 20_000,
  });
}

/**
 * The job report of `room` from whichever of `workers` ran it; rejects at once, with the reason,
 * if its job ended failed instead.
 */
export async function servedBy(
  workers: FixtureWorker[],
  room: string,
  timeoutMs: number,
): Promise<JobReport> {
  const outcome = (r: LogRecord) =>
    (r.message === 'e2e job report' && r.room === room) ||
    (r.message === 'job ended' && r.roomName === room && r.outcome === 'failed');
  const record = await Promise.any(
    workers.map((w) => w.waitForLog(outcome, `the job of ${room}`, timeoutMs)),
  ).catch((error: unknown) => {
    throw new Error(`no worker served ${room} within ${timeoutMs} ms`, { cause: error });
  });
  if (record.message === 'job ended') {
    throw new Error(`the job of ${room} failed: ${String(record.reason)}`);
  }
  return record as JobReport;
}

/** Waits until `worker` has accepted the job of `room`. */
export function accepts(worker: FixtureWorker, room: string): Promise<LogRecord> {
  return worker.waitForLog(
    (r) => r.message === 'job accepted' && r.roomName === room,
    `${worker.label} accepting the job of ${room}`,
  );
}

export const accepted = (w: FixtureWorker): string[] =>
  answers(w)
    .filter((r) => r.message === 'job accepted')
    .map((r) => String(r.jobId));

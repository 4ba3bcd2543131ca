/**
 * Burst: N dispatches at once to one framework's worker (its warm pool holds fewer processes).
 * Agent joins are observed through the server's webhooks (no user participants, so the bench
 * itself stays light), assignments through the worker's instrumentation, and availability
 * answers that missed the server's ~3 s window through the server log.
 */
import { createServer, type Server } from 'node:http';
import { openSync, readSync, closeSync, statSync } from 'node:fs';
import { WebhookEvent } from '@livekit/protocol';
import { AgentDispatchClient, RoomServiceClient } from 'livekit-server-sdk';
import { nowMs } from './scenarios.ts';
import type { WorkerHandle } from './workers.ts';

export interface WebhookSink {
  port: number;
  /** room name → wall-clock ms of the first agent participant_joined webhook. */
  agentJoins: Map<string, number>;
  close(): Promise<void>;
}

export async function startWebhookSink(): Promise<WebhookSink> {
  const agentJoins = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const at = nowMs();
      res.end();
      try {
        const ev = WebhookEvent.fromJsonString(body, { ignoreUnknownFields: true });
        const identity = ev.participant?.identity ?? '';
        if (ev.event === 'participant_joined' && identity.startsWith('agent-') && ev.room) {
          if (!agentJoins.has(ev.room.name)) agentJoins.set(ev.room.name, at);
        }
      } catch {
        // not a webhook we understand
      }
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    agentJoins,
    close: () => new Promise((done) => server.close(() => done())),
  };
}

export interface BurstResult {
  dispatched: number;
  served: number;
  assigned: number;
  /** Burst start → last agent join seen by the server (webhook), ms. */
  timeToLastJoinMs?: number;
  timeToLastAssignmentMs?: number;
  /** Dispatches whose offer the worker answered (yes or no) inside the server's ~3 s window. */
  answeredInWindow: number;
  /** Server log: offers dropped after the ~3 s availability wait ("context deadline exceeded"). */
  availabilityTimeouts: number;
  /** Server log: jobs the worker declined in time ("worker not available"); lost, as no other worker matches. */
  declined: number;
  /** Server log: no available worker for the dispatch (worker full or not offered). */
  notDispatched: number;
}

function readFrom(file: string, offset: number): string {
  const size = statSync(file).size;
  if (size <= offset) return '';
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(size - offset);
    readSync(fd, buf, 0, buf.length, offset);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

export async function runBurst(
  worker: WorkerHandle,
  deps: {
    dispatch: AgentDispatchClient;
    rooms: RoomServiceClient;
    sink: WebhookSink;
    serverLog: string;
  },
  n: number,
  deadlineMs: number,
  tag: string,
): Promise<BurstResult> {
  const rooms = Array.from({ length: n }, (_, i) => `${tag}-${worker.framework}-${i}`);
  const logOffset = statSync(deps.serverLog).size;
  const assignedBefore = new Set(worker.assignments.keys());
  // The rooms exist before the burst, with a long empty timeout: a room only an agent joins
  // counts as empty, and the server's default (10 s here) would close it under a late agent.
  await Promise.all(rooms.map((name) => deps.rooms.createRoom({ name, emptyTimeout: 120 })));
  const t0 = nowMs();
  const created = await Promise.allSettled(
    rooms.map((r) => deps.dispatch.createDispatch(r, worker.agentName)),
  );
  const dispatched = created.filter((c) => c.status === 'fulfilled').length;
  const deadline = t0 + deadlineMs;
  while (nowMs() < deadline && rooms.some((r) => !deps.sink.agentJoins.has(r))) {
    await new Promise((done) => setTimeout(done, 100));
  }
  // Late answers and drops are logged ~3 s after the offer; give the log a moment.
  await new Promise((done) => setTimeout(done, 1_000));
  const joins = rooms
    .map((r) => deps.sink.agentJoins.get(r))
    .filter((t): t is number => t !== undefined);
  const newAssignments = [...worker.assignments.entries()].filter(
    ([id]) => !assignedBefore.has(id),
  );
  const log = readFrom(deps.serverLog, logOffset);
  const lines = log.split('\n');
  const jobsWhere = (re: RegExp) =>
    new Set(lines.filter((l) => re.test(l)).map((l) => /"jobID": "([^"]+)"/.exec(l)?.[1] ?? l))
      .size;
  const availabilityTimeouts = jobsWhere(/failed to assign job.*context deadline exceeded/);
  const declined = jobsWhere(/failed to assign job.*worker not available/);
  const notDispatched = lines.filter((l) =>
    /not dispatching agent job|no servers available/.test(l),
  ).length;
  const result: BurstResult = {
    dispatched,
    served: joins.length,
    assigned: newAssignments.length,
    timeToLastJoinMs: joins.length ? Math.max(...joins) - t0 : undefined,
    timeToLastAssignmentMs: newAssignments.length
      ? Math.max(...newAssignments.map(([, t]) => t)) - t0
      : undefined,
    answeredInWindow: dispatched - availabilityTimeouts - notDispatched,
    availabilityTimeouts,
    declined,
    notDispatched,
  };
  // End the burst's jobs: deleting a room disconnects its agent.
  await Promise.allSettled(rooms.map((r) => deps.rooms.deleteRoom(r)));
  return result;
}

/**
 * The seed's 9-job example: a worker whose load is `min(activeJobs / 10, 1)` with load threshold
 * 0.9 ("limits the worker to 9 concurrent jobs") is offered 10 jobs one after another. Each job
 * stays running (its agent waits for a user who never comes; the bench creates the rooms with a
 * long empty timeout so the server keeps them), so after 9 the user's policy says full and the
 * 10th must be refused. Agent joins are seen through the server's webhooks.
 */
import { AgentDispatchClient, RoomServiceClient } from 'livekit-server-sdk';
import type { WebhookSink } from './burst.ts';
import { nowMs } from './scenarios.ts';
import type { WorkerHandle } from './workers.ts';

export interface SeedExampleResult {
  offered: number;
  /** Offers whose agent joined its room. */
  accepted: number;
  /** Whether the last offer (the 10th) got no agent. */
  lastRefused: boolean;
  /** Per offer, in order: ms from createDispatch to the agent's join, or null (none in time). */
  joinMs: (number | null)[];
  /** Of the accepted jobs, how many still had their agent in the room after the last offer. */
  stillRunning: number;
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

export async function runSeedExample(
  worker: WorkerHandle,
  deps: { dispatch: AgentDispatchClient; rooms: RoomServiceClient; sink: WebhookSink },
  offers: number,
  tag: string,
  /** How long an offer may take to bring its agent in. */
  joinDeadlineMs = 8_000,
  /**
   * After a join, before the next offer: a worker's load report may lag its jobs (agents-js
   * sends one every 2.5 s, livekit-agents' status report too), and "one after another" means
   * the worker has seen the previous job.
   */
  gapMs = 3_000,
): Promise<SeedExampleResult> {
  const rooms = Array.from({ length: offers }, (_, i) => `${tag}-${worker.framework}-${i}`);
  const joinMs: (number | null)[] = [];
  try {
    for (const room of rooms) {
      await deps.rooms.createRoom({ name: room, emptyTimeout: 300 });
      const t0 = nowMs();
      await deps.dispatch.createDispatch(room, worker.agentName);
      while (nowMs() - t0 < joinDeadlineMs && !deps.sink.agentJoins.has(room)) await sleep(100);
      const joined = deps.sink.agentJoins.get(room);
      joinMs.push(joined === undefined ? null : Math.round(joined - t0));
      if (joined !== undefined && room !== rooms.at(-1)) await sleep(gapMs);
    }
    let stillRunning = 0;
    for (const [i, room] of rooms.entries()) {
      if (joinMs[i] === null) continue;
      const listed = await deps.rooms.listParticipants(room).catch(() => []);
      if (listed.some((p) => p.identity.startsWith('agent-'))) stillRunning++;
    }
    return {
      offered: offers,
      accepted: joinMs.filter((t) => t !== null).length,
      lastRefused: joinMs.at(-1) === null,
      joinMs,
      stillRunning,
    };
  } finally {
    // Deleting a room disconnects its agent, which ends the job.
    await Promise.allSettled(rooms.map((r) => deps.rooms.deleteRoom(r)));
  }
}

/**
 * The bench agent on agentstate: joins the room, publishes one data message (with the time its
 * entrypoint was called), and ends its job when the participant it served leaves. The same agent
 * is written for @livekit/agents (agents-js.mjs) and livekit-agents (livekit_agents_py.py).
 *
 *   node bin/agent.js start bench/agents/agentstate.ts --num-idle-processes 4 --load-threshold 1
 *
 * BENCH_LOAD_POLICY=seed gives it the seed's example load, `min(activeJobs / 10, 1)` (with
 * `--load-threshold 0.9`: at most 9 concurrent jobs), instead of the default CPU load.
 * BENCH_ELASTIC_POOL=min,max gives it an elastic warm pool (`elasticIdleProcesses`) instead.
 */
import { RoomEvent } from '@livekit/rtc-node';
import { WorkerOptions, type JobContext } from 'agentstate';
import { instrumentAssignments, nowMs, stampPublished } from './instrument.ts';

// The worker's socket only: a job process (marked by AGENTSTATE_JOB_PROCESS, docs/architecture.md
// §4) has none, and would pay for the instrumentation's imports at every start.
if (process.env.AGENTSTATE_JOB_PROCESS !== '1') await instrumentAssignments();

/** The seed's example: each job is a tenth of the worker, whatever the CPU does. */
const seedLoad = (worker: { activeJobs: readonly unknown[] }): number =>
  Math.min(worker.activeJobs.length / 10, 1);

const elastic = process.env.BENCH_ELASTIC_POOL?.split(',').map(Number);

export default new WorkerOptions({
  agentName: process.env.BENCH_AGENT_NAME ?? 'bench-agentstate',
  port: Number(process.env.BENCH_HTTP_PORT ?? 0),
  ...(process.env.BENCH_LOAD_POLICY === 'seed' ? { loadFnc: seedLoad } : {}),
  ...(elastic ? { elasticIdleProcesses: { min: elastic[0]!, max: elastic[1]! } } : {}),
  requestFnc: (req) => req.accept({ name: 'bench', identity: `agent-${req.id}` }),
  entrypointFnc: async (ctx: JobContext) => {
    const entryAt = nowMs();
    await ctx.connect();
    const connectedAt = nowMs();
    const user = await ctx.waitForParticipant(undefined, { timeout: 120_000 });
    const userAt = nowMs();
    ctx.room.on(RoomEvent.ParticipantDisconnected, (p) => {
      if (p.identity === user.identity) ctx.shutdown(`${user.identity} left`);
    });
    const payload = {
      framework: 'agentstate',
      jobId: ctx.jobId,
      entryAt,
      connectedAt,
      userAt,
      pid: process.pid,
    };
    await ctx.room.localParticipant!.publishData(
      new TextEncoder().encode(JSON.stringify(payload)),
      { reliable: true, topic: 'bench', destination_identities: [user.identity] },
    );
    stampPublished(ctx.jobId);
  },
});

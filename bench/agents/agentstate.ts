/**
 * The bench agent on agentstate: joins the room, publishes one data message (with the time its
 * entrypoint was called), and ends its job when the participant it served leaves. The same agent
 * is written for @livekit/agents (agents-js.mjs) and livekit-agents (livekit_agents_py.py).
 *
 *   node bin/agent.js start bench/agents/agentstate.ts --num-idle-processes 4 --load-threshold 1
 */
import { RoomEvent } from '@livekit/rtc-node';
import { WorkerOptions, type JobContext } from 'agentstate';
import { instrumentAssignments, nowMs } from './instrument.ts';

instrumentAssignments();

export default new WorkerOptions({
  agentName: process.env.BENCH_AGENT_NAME ?? 'bench-agentstate',
  port: Number(process.env.BENCH_HTTP_PORT ?? 0),
  requestFnc: (req) => req.accept({ name: 'bench', identity: `agent-${req.id}` }),
  entrypointFnc: async (ctx: JobContext) => {
    const entryAt = nowMs();
    await ctx.connect();
    const user = await ctx.waitForParticipant(undefined, { timeout: 120_000 });
    ctx.room.on(RoomEvent.ParticipantDisconnected, (p) => {
      if (p.identity === user.identity) ctx.shutdown(`${user.identity} left`);
    });
    const payload = { framework: 'agentstate', jobId: ctx.jobId, entryAt, pid: process.pid };
    await ctx.room.localParticipant!.publishData(
      new TextEncoder().encode(JSON.stringify(payload)),
      { reliable: true, topic: 'bench', destination_identities: [user.identity] },
    );
  },
});

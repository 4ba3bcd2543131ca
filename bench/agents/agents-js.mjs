/* global performance, Buffer, TextEncoder */
/**
 * The bench agent on @livekit/agents (agents-js), in its documented style: a default export from
 * `defineAgent`, and `cli.runApp(new ServerOptions({ agent: <this file> }))`. The bench copies
 * this file into bench/peers/js/ (so `@livekit/agents` resolves there) and runs
 * `node bench/peers/js/agent.mjs start`.
 *
 * BENCH_LOAD_POLICY=seed gives it the seed's example load, `min(activeJobs / 10, 1)` (with
 * BENCH_LOAD_THRESHOLD=0.9: at most 9 concurrent jobs), instead of the default CPU load.
 */
import { cli, defineAgent, ServerOptions } from '@livekit/agents';
import { ServerMessage } from '@livekit/protocol';
import { RoomEvent } from '@livekit/rtc-node';
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setImmediate } from 'node:timers';
import { WebSocket } from 'ws';

const nowMs = () => performance.timeOrigin + performance.now();
// Node loads `perf_hooks` (eight internal modules, ~1 ms) on the first use of the `performance`
// global: here, at import (prewarm), not inside the entrypoint's first stamp.
nowMs();

// Bench-only: one stdout line per JobAssignment frame, stamped before the framework handles it.
// Only the stamp is taken then: the frame is decoded and the line written after the framework's
// own handling (setImmediate), so the measurement does not sit on the hand-off it measures.
// 0x1a is the tag of ServerMessage's `assignment` field (3, length-delimited).
const emit = WebSocket.prototype.emit;
WebSocket.prototype.emit = function (event, ...args) {
  if (event === 'message' && args[0] instanceof Buffer && args[0][0] === 0x1a) {
    const t = nowMs();
    const frame = args[0];
    setImmediate(() => {
      try {
        const msg = ServerMessage.fromBinary(frame);
        if (msg.message.case === 'assignment') {
          const jobId = msg.message.value.job?.id;
          process.stdout.write(JSON.stringify({ bench: 'assignment', jobId, t }) + '\n');
        }
      } catch {
        // not a server message
      }
    });
  }
  return emit.call(this, event, ...args);
};

export default defineAgent({
  entry: async (ctx) => {
    const entryAt = nowMs();
    await ctx.connect();
    const connectedAt = nowMs();
    const user = await ctx.waitForParticipant();
    const userAt = nowMs();
    ctx.room.on(RoomEvent.ParticipantDisconnected, (p) => {
      if (p.identity === user.identity) ctx.shutdown(`${user.identity} left`);
    });
    const payload = {
      framework: 'agents-js',
      jobId: ctx.job.id,
      entryAt,
      connectedAt,
      userAt,
      pid: process.pid,
    };
    await ctx.room.localParticipant.publishData(new TextEncoder().encode(JSON.stringify(payload)), {
      reliable: true,
      topic: 'bench',
      destination_identities: [user.identity],
    });
    // Bench-only: the publish call resolved (as bench/agents/instrument.ts stampPublished).
    if (process.env.BENCH_STAMPS) {
      const line = JSON.stringify({ jobId: ctx.job.id, publishedAt: nowMs() });
      appendFileSync(process.env.BENCH_STAMPS, line + '\n');
    }
  },
});

cli.runApp(
  new ServerOptions({
    agent: fileURLToPath(import.meta.url),
    agentName: process.env.BENCH_AGENT_NAME ?? 'bench-agents-js',
    numIdleProcesses: Number(process.env.BENCH_IDLE ?? 4),
    loadThreshold: Number(process.env.BENCH_LOAD_THRESHOLD ?? 1),
    ...(process.env.BENCH_LOAD_POLICY === 'seed'
      ? { loadFunc: async (worker) => Math.min(worker.activeJobs.length / 10, 1) }
      : {}),
    port: Number(process.env.BENCH_HTTP_PORT ?? 8081),
    requestFunc: async (req) => {
      await req.accept('bench', `agent-${req.id}`);
    },
  }),
);

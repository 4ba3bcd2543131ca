/**
 * The tracing cost probe's agent (bench/tracing-churn.ts): joins the room and ends its job at
 * once, so a job is the framework's own work (offer, start, hand-off, connect, end) and nothing
 * else. Explicit dispatch only (`agentName` 'bench-churn').
 */
import { WorkerOptions, type JobContext } from 'agentstate';

export default new WorkerOptions({
  agentName: 'bench-churn',
  port: 0,
  loadFnc: () => 0,
  entrypointFnc: async (ctx: JobContext) => {
    await ctx.connect();
    ctx.shutdown('probe done');
  },
});

/**
 * An explicitly dispatched agent with its own admission rules: it only runs when asked for by
 * name (`agentName`), takes at most three jobs at once (`maxJobs`), reports its load from its
 * own count, turns down rooms it should not serve, and keeps a warm model per process.
 *
 *   agent dev examples/support-agent.ts
 *   agent dispatch --room help-desk-1 --agent-name support --metadata '{"tier":"gold"}'
 */
import { cli, WorkerOptions, type JobContext, type JobRequest } from 'agentstate';

interface Model {
  answer(question: string): string;
}

function loadModel(): Model {
  // Stands in for loading weights: done once per process, before any job.
  const loadedAt = new Date().toISOString();
  return { answer: (q) => `(${loadedAt}) you asked: ${q}` };
}

const opts = new WorkerOptions({
  agentName: 'support',
  maxJobs: 3,
  // Load from our own count: three jobs is "full", whatever the CPU says.
  loadFnc: (worker) => Math.min(worker.activeJobs.length / 3, 1),
  loadThreshold: 1,
  prewarmFnc: (proc) => {
    proc.userdata.model = loadModel();
  },
  requestFnc: async (req: JobRequest) => {
    if (req.room?.name.startsWith('internal-')) {
      await req.reject('internal rooms are not served');
      return;
    }
    const tier = safeTier(req.job.metadata);
    await req.accept({ name: 'Support', attributes: { tier } });
  },
  entrypointFnc: async (ctx: JobContext) => {
    const model = ctx.proc.userdata.model as Model;
    await ctx.connect();
    const user = await ctx.waitForParticipant(undefined, { timeout: 120_000 });
    const greeting = new TextEncoder().encode(model.answer(`hello from ${user.identity}`));
    await ctx.room.localParticipant?.publishData(greeting, { reliable: true, topic: 'support' });
    ctx.addShutdownCallback(async (reason) => {
      console.log(`support session in ${ctx.roomName} over: ${reason}`);
    });
  },
});

function safeTier(metadata: string): string {
  try {
    const parsed = JSON.parse(metadata) as { tier?: unknown };
    return typeof parsed.tier === 'string' ? parsed.tier : 'standard';
  } catch {
    return 'standard';
  }
}

export default opts;
cli.runApp(opts);

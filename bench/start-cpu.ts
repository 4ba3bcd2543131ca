/**
 * The CPU one job process spends to get warm, as whole processes, on a chosen Node: the shipped
 * bin (`bin/agent.js` on the build in dist/) runs `agent start` with the bench agent and one warm
 * process against a local livekit-server; once that process is warm (its CPU time moved ≤ 20 ms
 * over 1 s, as the bench's start CPU figure reads it), its utime+stime from /proc is the sample.
 * The worker is then stopped and the next run starts a new one, so every sample is a fresh
 * process on a fresh worker (the rtc-node bundle and its code cache, kept per Node version, are
 * reused from the first run on, as a user's worker does after its first start).
 *
 *   npm run build && npx tsx bench/start-cpu.ts [--node PATH] [--runs 5] [--env K=V ...]
 *
 * `--node` defaults to this process's node; `--env` adds to the worker's environment (and so to
 * its job processes'), e.g. `--env NODE_COMPILE_CACHE=/tmp/cc`. Prints one JSON line; writes
 * nothing.
 */
import './lib/quiet-rtc.ts';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LIVEKIT_SERVER_VERSION, startLiveKitServer } from '../test/support/livekit-server.ts';
import { processTree } from './lib/procfs.ts';
import { summarize } from './lib/stats.ts';
import { argOf } from './lib/cli.ts';

const argv = process.argv.slice(2);
const node = argOf('--node') ?? process.execPath;
const runs = Number(argOf('--runs') ?? 5);
const extraEnv: Record<string, string> = {};
argv.forEach((a, i) => {
  if (a !== '--env') return;
  const kv = argv[i + 1] ?? '';
  const eq = kv.indexOf('=');
  if (eq <= 0) throw new Error(`--env ${kv}: expected KEY=VALUE`);
  extraEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
});

const bin = fileURLToPath(new URL('../bin/agent.js', import.meta.url));
const agent = fileURLToPath(new URL('./agents/agentstate.ts', import.meta.url));
if (!existsSync(fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url)))) {
  throw new Error('no build in dist/: run `npm run build` first');
}
const nodeVersion = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
if (!nodeVersion) throw new Error(`--node ${node}: does not run`);

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** One worker, one warm process: that process's CPU once it has settled. */
async function oneRun(server: { url: string; apiKey: string; apiSecret: string }) {
  const child = spawn(
    node,
    [bin, 'start', agent, '--num-idle-processes', '1', '--load-threshold', '1', '--port', '0'],
    {
      env: {
        ...process.env,
        LIVEKIT_URL: server.url,
        LIVEKIT_API_KEY: server.apiKey,
        LIVEKIT_API_SECRET: server.apiSecret,
        ...extraEnv,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const deadline = Date.now() + 60_000;
  try {
    for (;;) {
      if (Date.now() > deadline) throw new Error(`no warm job process within 60 s:\n${stderr}`);
      if (child.exitCode !== null) throw new Error(`the worker exited:\n${stderr}`);
      const job = processTree(child.pid!).find((p) => p.depth === 1 && p.cmd.includes('tinypool'));
      if (job) {
        await sleep(1_000);
        const later = processTree(child.pid!).find((p) => p.pid === job.pid);
        if (later && later.cpuMs - job.cpuMs <= 20)
          return { cpuMs: later.cpuMs, rssKb: later.rssKb };
      } else {
        await sleep(100);
      }
    }
  } finally {
    const tree = processTree(child.pid!);
    child.kill('SIGTERM');
    const k = setTimeout(() => child.kill('SIGKILL'), 8_000);
    await exited;
    clearTimeout(k);
    for (const p of tree.slice(1)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone with its worker
      }
    }
  }
}

const server = await startLiveKitServer({ name: 'bench-start-cpu', targetLoad: 1 });
try {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) samples.push((await oneRun(server)).cpuMs);
  console.log(
    JSON.stringify({
      measuredAt: new Date().toISOString(),
      node: nodeVersion,
      env: extraEnv,
      livekitServer: LIVEKIT_SERVER_VERSION,
      startCpuMs: samples,
      summary: { ...summarize(samples), min: Math.min(...samples) },
    }),
  );
} finally {
  await server.stop();
}

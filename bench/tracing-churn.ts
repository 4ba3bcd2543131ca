/**
 * What tracing costs per job: the shipped bin (`bin/agent.js` on the build in dist/) runs
 * `agent start bench/agents/connect-and-end.ts` (one warm spare, no process reuse) against a
 * local livekit-server, once with no OTel configuration and once with traces, OTLP metrics and
 * logs on, exporting to a real Jaeger (test/support/jaeger.ts). Each slice dispatches `--jobs`
 * jobs one after another and reads the CPU of the worker's whole process tree (exited job
 * processes included, through the worker's cutime/cstime) from the worker's idle state before
 * the first to its idle state after the last: CPU per job, the job process's start included
 * (each job takes the spare, whose replacement starts). Slices alternate off/on.
 *
 *   npm run build && npx tsx bench/tracing-churn.ts [--slices 3] [--jobs 10] [--traces-only]
 *
 * `--traces-only`: the "on" slices turn on traces alone (no OTLP metrics or logs).
 *
 * Prints one JSON line; writes nothing.
 */
import './lib/quiet-rtc.ts';
import { AgentDispatchClient } from 'livekit-server-sdk';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { killAllAgents, startAgent } from '../test/support/agent-process.ts';
import { startJaeger } from '../test/support/jaeger.ts';
import { startLiveKitServer } from '../test/support/livekit-server.ts';
import { processTree, treeCpuMs } from './lib/procfs.ts';
import { summarize } from './lib/stats.ts';
import { argOf } from './lib/cli.ts';

const argv = process.argv.slice(2);
const slices = Number(argOf('--slices') ?? 3);
const jobsPerSlice = Number(argOf('--jobs') ?? 10);
const bin = fileURLToPath(new URL('../bin/agent.js', import.meta.url));
const agent = fileURLToPath(new URL('./agents/connect-and-end.ts', import.meta.url));
if (!existsSync(fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url)))) {
  throw new Error('no build in dist/: run `npm run build` first');
}
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** Waits until the tree's CPU moved ≤ 20 ms over 1 s with one warm job process: idle. */
async function idle(pid: number): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const before = treeCpuMs(pid);
    await sleep(1_000);
    const after = treeCpuMs(pid);
    const jobs = processTree(pid).filter((p) => p.depth === 1 && p.cmd.includes('tinypool'));
    if (after - before <= 20 && jobs.length === 1) return after;
    if (Date.now() > deadline) throw new Error('the worker did not settle within 30 s');
  }
}

const [server, jaeger] = await Promise.all([
  startLiveKitServer({ name: 'bench-tracing' }),
  startJaeger({ name: 'bench-tracing' }),
]);
const dispatch = new AgentDispatchClient(server.httpUrl, server.apiKey, server.apiSecret);
const tracesOnly = argv.includes('--traces-only');
const otelOn = {
  OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint,
  OTEL_SERVICE_NAME: 'bench-tracing',
  ...(tracesOnly ? {} : { OTEL_METRICS_EXPORTER: 'otlp', OTEL_LOGS_EXPORTER: 'otlp' }),
};
const perJob: Record<'off' | 'on', number[]> = { off: [], on: [] };
let room = 0;
try {
  for (let s = 0; s < slices; s++) {
    for (const mode of s % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
      const worker = startAgent(
        ['start', agent, '--num-idle-processes', '1', '--load-threshold', 'Infinity'],
        {
          LIVEKIT_URL: server.url,
          LIVEKIT_API_KEY: server.apiKey,
          LIVEKIT_API_SECRET: server.apiSecret,
          ...(mode === 'on' ? otelOn : {}),
        },
        { command: [bin] },
      );
      await worker.waitForLog(
        (r) => r.message === 'registered with the server',
        'registering',
        30_000,
      );
      const pid = worker.child.pid!;
      const start = await idle(pid);
      for (let j = 0; j < jobsPerSlice; j++) {
        const name = `churn-${++room}`;
        await dispatch.createDispatch(name, 'bench-churn');
        await worker.waitForLog(
          (r) => r.message === 'job ended' && r.roomName === name,
          'the job to end',
          30_000,
        );
      }
      const end = await idle(pid);
      perJob[mode].push(Math.round((end - start) / jobsPerSlice));
      worker.kill();
      await worker.exited;
    }
  }
} finally {
  await killAllAgents();
  await Promise.all([server.stop(), jaeger.stop()]);
}
console.log(
  JSON.stringify({
    measuredAt: new Date().toISOString(),
    node: process.version,
    jobsPerSlice,
    on: tracesOnly ? 'traces' : 'traces, metrics, logs',
    cpuMsPerJob: perJob,
    summary: { off: summarize(perJob.off), on: summarize(perJob.on) },
  }),
);

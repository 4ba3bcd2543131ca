/**
 * What one job process start costs, as a whole process: N job processes started one after
 * another through the real process host of the build in dist/ (tinypool's fork, the job entry,
 * rtc-node from the prebuilt bundle, the agent file, the warm-up), each measured from its fork to
 * its `prewarmed` message: its CPU (utime + stime from /proc) and the wall time. The first start
 * builds nothing (the rtc bundle and its code cache are made before the runs). No server: a
 * start does not touch one.
 *
 *   npm run build && node --import tsx bench/job-start.ts [agent-file] [--runs N] [--cpu-prof DIR]
 *
 * Runs on the Node that runs it (a job process is forked from `process.execPath`): run it with
 * another `node` binary to measure that line. `--cpu-prof DIR` starts every job process under
 * `--cpu-prof` (its profile lands in DIR), which slows the start it measures.
 */
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { createActor, setup } from 'xstate';
import type { ProcessHostEvent } from '../machines/processHost.contract.ts';
import { argOf } from './lib/cli.ts';

const RUNS = Number(argOf('--runs') ?? 10);
const profDir = argOf('--cpu-prof');
const agentArg = process.argv
  .slice(2)
  .find((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
/** The image's agent, placed inside this package so its `import 'agentstate'` resolves here. */
function placeImageAgent(): string {
  mkdirSync('.cache/job-start', { recursive: true });
  copyFileSync('deploy/image/agent.js', '.cache/job-start/agent.js');
  return '.cache/job-start/agent.js';
}
const agentFile = resolve(agentArg ?? placeImageAgent());
const dist = new URL('../dist/src/', import.meta.url);
type HostModule = typeof import('../src/job-host/process-host.ts');
type BundleModule = typeof import('../src/job-host/rtc-bundle.ts');
type LoggerModule = typeof import('../src/log/logger.ts');
const { createProcessHost } = (await import(
  new URL('job-host/process-host.js', dist).href
)) as HostModule;
const { rtcBundleSettled } = (await import(
  new URL('job-host/rtc-bundle.js', dist).href
)) as BundleModule;
const { createLogger } = (await import(new URL('log/logger.js', dist).href)) as LoggerModule;

const CLK_TCK = 100;
const cpuMsOf = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
};

const logger = createLogger({ probe: 'job-start' });
const bundle = await rtcBundleSettled(logger);
if (!bundle) console.error('no rtc bundle: rtc-node loads file by file');

interface Start {
  cpuMs: number;
  wallMs: number;
}

/** One process: forked, warm, measured, stopped. */
async function oneStart(n: number): Promise<Start> {
  const host = createProcessHost({
    agentModule: pathToFileURL(agentFile),
    logger,
    shutdownCallbackTimeout: 1_000,
    memoryWarnMb: 0,
    memoryLimitMb: 0,
    // The profile is written at a normal exit: the host's SIGTERM becomes one.
    execArgv: profDir
      ? [
          '--cpu-prof',
          `--cpu-prof-dir=${profDir}`,
          '--import',
          'data:text/javascript,process.on("SIGTERM",()=>process.exit(0))',
        ]
      : [],
  });
  let t0 = 0;
  let pid: number | undefined;
  let onWarm: ((s: Start) => void) | undefined;
  let onFail: ((e: Error) => void) | undefined;
  let onExit: (() => void) | undefined;
  const machine = setup({ actors: { host } }).createMachine({
    invoke: { src: 'host', id: 'host', input: { procId: `probe-${n}` } },
    on: {
      '*': {
        actions: ({ event }) => {
          const e = event as ProcessHostEvent;
          if (e.type === 'PROCESS_SPAWNED') pid = e.pid;
          else if (e.type === 'PREWARM_SUCCEEDED' && pid !== undefined) {
            onWarm?.({ cpuMs: cpuMsOf(pid), wallMs: performance.now() - t0 });
          } else if (e.type === 'PREWARM_FAILED') onFail?.(new Error(e.error));
          else if (e.type === 'CHILD_EXITED') onExit?.();
        },
      },
    },
  });
  const warm = new Promise<Start>((done, fail) => {
    onWarm = done;
    onFail = fail;
  });
  const exited = new Promise<void>((done) => (onExit = done));
  t0 = performance.now();
  const actor = createActor(machine).start();
  const timeout = setTimeout(() => onFail?.(new Error('no prewarm within 30 s')), 30_000);
  try {
    return await warm;
  } finally {
    clearTimeout(timeout);
    actor
      .getSnapshot()
      .children.host?.send({ type: 'EXIT_REQUESTED', reason: 'bench done', captureStack: false });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    actor.stop();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
// One start first, not counted: it writes the bundle's code cache, as a worker's first does.
await oneStart(0);
const starts: Start[] = [];
for (let i = 1; i <= RUNS; i++) {
  starts.push(await oneStart(i));
  // Apart, so a start does not share the CPU with the last one's exit.
  await new Promise((r) => setTimeout(r, 300));
}
const cpu = starts.map((s) => s.cpuMs);
const wall = starts.map((s) => Math.round(s.wallMs));
console.log(
  JSON.stringify({
    node: process.version,
    agentFile,
    runs: RUNS,
    rtcBundle: bundle !== undefined,
    cpuMs: { median: median(cpu), min: Math.min(...cpu), max: Math.max(...cpu), all: cpu },
    wallMs: { median: median(wall), min: Math.min(...wall), max: Math.max(...wall) },
  }),
);
process.exit(0);

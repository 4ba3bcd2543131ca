/**
 * Memory of several agents in one worker process against one worker per agent: RSS (and PSS)
 * of whole process trees, idle, with the same warm processes per agent. Runs the real `agent`
 * bin against the in-process emulator (registration is all an idle worker needs).
 *
 *   npx tsx bench/multi-agent-rss.ts [--idle 1] [--settle-ms 5000] [--rounds 3]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startEmulator, type Emulator } from '../src/testing/index.ts';
import { processTree, pssKb } from './lib/procfs.ts';

const BIN = fileURLToPath(new URL('../bin/agent.js', import.meta.url));
const AGENTS = ['test/fixtures/group/support.ts', 'test/fixtures/group/sales.ts'];

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const idle = arg('idle', 1);
const settleMs = arg('settle-ms', 5_000);
const rounds = arg('rounds', 3);

function start(emu: Emulator, files: string[]): ChildProcess {
  return spawn(
    process.execPath,
    [
      BIN,
      'start',
      ...files,
      '--num-idle-processes',
      String(idle),
      '--port',
      '0',
      '--log-level',
      'WARNING',
    ],
    {
      env: {
        ...process.env,
        LIVEKIT_URL: emu.url,
        LIVEKIT_API_KEY: emu.apiKey,
        LIVEKIT_API_SECRET: emu.apiSecret,
      },
      stdio: 'ignore',
    },
  );
}

/** Waits until the trees hold every worker and warm process (plus helpers), then settles. */
async function idleTrees(pids: number[], jobProcesses: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const procs = pids.flatMap((p) => processTree(p));
    if (procs.filter((p) => p.cmd.includes('tinypool')).length >= jobProcesses) break;
    if (Date.now() > deadline) throw new Error('warm processes did not start within 60 s');
    await new Promise((r) => setTimeout(r, 250));
  }
  await new Promise((r) => setTimeout(r, settleMs));
}

function measure(pids: number[]) {
  const procs = pids.flatMap((p) => processTree(p));
  const mb = (kb: number) => Math.round(kb / 102.4) / 10;
  return {
    processes: procs.length,
    rssMb: mb(procs.reduce((s, p) => s + p.rssKb, 0)),
    pssMb: mb(procs.reduce((s, p) => s + pssKb(p.pid), 0)),
    workerRssMb: pids.map((pid) => mb(procs.find((p) => p.pid === pid)?.rssKb ?? 0)),
  };
}

async function stop(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
          setTimeout(() => c.kill('SIGKILL'), 10_000).unref();
        }),
    ),
  );
}

const emu = await startEmulator();
const results: {
  round: number;
  group: ReturnType<typeof measure>;
  separate: ReturnType<typeof measure>;
}[] = [];
try {
  for (let round = 1; round <= rounds; round++) {
    const group = [start(emu, AGENTS)];
    await idleTrees(
      group.map((c) => c.pid!),
      AGENTS.length * idle,
    );
    const g = measure(group.map((c) => c.pid!));
    await stop(group);
    const separate = AGENTS.map((f) => start(emu, [f]));
    await idleTrees(
      separate.map((c) => c.pid!),
      AGENTS.length * idle,
    );
    const s = measure(separate.map((c) => c.pid!));
    await stop(separate);
    results.push({ round, group: g, separate: s });
    console.log(JSON.stringify({ round, oneProcessTwoAgents: g, twoWorkers: s }));
  }
} finally {
  await emu.close();
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const g = median(results.map((r) => r.group.rssMb));
const s = median(results.map((r) => r.separate.rssMb));
const gp = median(results.map((r) => r.group.pssMb));
const sp = median(results.map((r) => r.separate.pssMb));
console.log(
  `\nidle, ${idle} warm process(es) per agent, median of ${rounds}:\n` +
    `  one process, two agents: RSS ${g} MB, PSS ${gp} MB\n` +
    `  two single-agent workers: RSS ${s} MB, PSS ${sp} MB\n` +
    `  saved: RSS ${Math.round((s - g) * 10) / 10} MB, PSS ${Math.round((sp - gp) * 10) / 10} MB`,
);

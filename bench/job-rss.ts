/**
 * Memory of one worker and its job processes, for sizing (deploy/kubernetes/deployment.yaml's
 * resource requests): the shipped bin (`bin/agent.js` on the build in dist/, plain node, as in
 * the image) running `agent start` on a local livekit-server, one warm idle process, then one
 * running job whose agent is connected to a room with a real participant.
 * The server's target load and the worker's threshold are 1, so a busy shared machine's CPU
 * (the default load) does not keep the job away.
 *
 *   npm run build && npx tsx bench/job-rss.ts [agent-file]   # default: the image's agent
 *
 * RSS counts shared pages (the node binary, shared libraries) in every process; PSS splits them
 * among the sharers, so it is closer to what a cgroup (a pod's memory) is charged. Both are
 * sampled several times and the largest value is kept. Writes bench/results/job-rss.json.
 */
import './lib/quiet-rtc.ts';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ParticipantKind } from '@livekit/rtc-node';
import { killAllAgents, startAgent, type AgentProcess } from '../test/support/agent-process.ts';
import { LIVEKIT_SERVER_VERSION, startLiveKitServer } from '../test/support/livekit-server.ts';
import { joinRoom, leaveAllRooms, waitForParticipant } from '../test/support/participants.ts';
import { processTree, pssKb } from './lib/procfs.ts';

const SHIPPED_BIN = fileURLToPath(new URL('../bin/agent.js', import.meta.url));
if (!existsSync(fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url)))) {
  throw new Error('no build in dist/: run `npm run build` first');
}
const agentFile = process.argv[2] ?? placeImageAgent();

/**
 * deploy/image/ is a package of its own (it installs agentstate from a tarball), so its agent
 * cannot import `agentstate` where it lies; a copy inside this package resolves it to the
 * working tree.
 */
function placeImageAgent(): string {
  mkdirSync('.cache/job-rss', { recursive: true });
  copyFileSync('deploy/image/agent.js', '.cache/job-rss/agent.js');
  return '.cache/job-rss/agent.js';
}
const SAMPLES = 5;
const mb = (kb: number) => Math.round((kb / 1024) * 10) / 10;

interface Memory {
  rssMb: number;
  pssMb: number;
}

/** The largest RSS and PSS of `pid` over a few samples, 500 ms apart. */
async function memoryOf(pid: number): Promise<Memory> {
  let rss = 0;
  let pss = 0;
  for (let i = 0; i < SAMPLES; i++) {
    const p = processTree(pid)[0];
    if (!p) throw new Error(`process ${pid} is gone`);
    rss = Math.max(rss, p.rssKb);
    pss = Math.max(pss, pssKb(pid));
    await new Promise((done) => setTimeout(done, 500));
  }
  return { rssMb: mb(rss), pssMb: mb(pss) };
}

/** The worker's job processes (one tinypool child per process). */
function jobProcesses(worker: AgentProcess): number[] {
  return processTree(worker.child.pid!)
    .filter((p) => p.depth === 1 && p.cmd.includes('tinypool'))
    .map((p) => p.pid);
}

const server = await startLiveKitServer({ name: 'bench-job-rss', targetLoad: 1 });
try {
  const worker = startAgent(
    [
      'start',
      agentFile,
      '--num-idle-processes',
      '1',
      '--load-threshold',
      '1',
      '--port',
      '0',
      '--log-level',
      'DEBUG',
    ],
    {
      LIVEKIT_URL: server.url,
      LIVEKIT_API_KEY: server.apiKey,
      LIVEKIT_API_SECRET: server.apiSecret,
    },
    { command: [SHIPPED_BIN] },
  );
  await worker.waitForLog((r) => r.message === 'registered with the server', 'registration');
  await worker.waitForLog(
    (r) => r.message === 'status reported' && r.status === 'available',
    'a warm process',
  );
  const [idlePid] = jobProcesses(worker);
  if (idlePid === undefined) throw new Error('no warm job process');
  // Settled: a process that has just prewarmed is still collecting its start-up garbage.
  await new Promise((done) => setTimeout(done, 2_000));
  const workerIdle = await memoryOf(worker.child.pid!);
  const idle = await memoryOf(idlePid);

  const user = await joinRoom(server, { room: 'rss-1', identity: 'user' });
  // Joining creates the room, and with it the room's automatic job.
  await waitForParticipant(user.room, { kind: ParticipantKind.AGENT, timeoutMs: 20_000 }).catch(
    (error: unknown) => {
      throw new Error(`no agent joined; worker output:\n${worker.output().slice(-3000)}`, {
        cause: error,
      });
    },
  );
  const launched = await worker.waitForLog((r) => r.message === 'job launched', 'a job');
  const runningPid = launched.pid;
  if (typeof runningPid !== 'number') throw new Error('the job launch record carries no pid');
  await new Promise((done) => setTimeout(done, 2_000));
  const running = await memoryOf(runningPid);
  const workerBusy = await memoryOf(worker.child.pid!);

  const result = {
    measuredAt: new Date().toISOString(),
    agentFile,
    livekitServer: LIVEKIT_SERVER_VERSION,
    node: process.version,
    worker: { idle: workerIdle, withOneJob: workerBusy },
    warmIdleJobProcess: idle,
    runningJobProcess: running,
  };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/job-rss.json', `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
  await leaveAllRooms();
} finally {
  await killAllAgents();
  await server.stop();
}

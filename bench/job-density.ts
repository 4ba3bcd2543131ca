/**
 * Density (issue 31): the memory of one running job, side by side for the three frameworks, and
 * how many such jobs fit in 2 GiB. Each framework's bench worker (the same fixtures as
 * `bench/run.ts`, one warm idle process, load threshold 1) runs alone on a local livekit-server;
 * a user joins a fresh room and publishes audio (a 440 Hz tone, 10 ms frames in real time) for
 * the whole job, the bench dispatches the agent, and once the agent has connected, found the
 * user and sent its data message (the fixture's job), the job's process is left to run with the
 * audio flowing for SETTLE_MS, then sampled. The job is then ended (the user leaves) and the next
 * one runs; JOBS per framework, frameworks one after another.
 *
 *   npm run build && npx tsx bench/job-density.ts [--jobs N]
 *
 * The figure is the PSS of the job's process (its subtree: a job process of any framework that
 * started children would count them), the largest of SAMPLES readings 500 ms apart: shared
 * pages (the runtime binary, shared libraries, a forked parent's untouched pages) are divided
 * among the processes that share them, so it is what one more job adds to a cgroup, closer than
 * RSS (also kept). The jobs that fit in 2 GiB are floor(2048 MiB / that PSS); with the worker's
 * own tree (worker and its idle spare, sampled before the first job) taken out first beside it.
 * Writes bench/results/job-density.json.
 */
import './lib/quiet-rtc.ts';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AudioFrame,
  AudioSource,
  LocalAudioTrack,
  RoomEvent,
  TrackPublishOptions,
  TrackSource,
} from '@livekit/rtc-node';
import { AgentDispatchClient } from 'livekit-server-sdk';
import { LIVEKIT_SERVER_VERSION, startLiveKitServer } from '../test/support/livekit-server.ts';
import { joinRoom, leaveAllRooms, withDeadline } from '../test/support/participants.ts';
import {
  ensureAgentsJs,
  ensureLiveKitAgentsPy,
  placeAgentstateFixture,
  pythonOf,
  readPins,
} from './lib/peers.ts';
import { processTree, pssKb } from './lib/procfs.ts';
import { FRAMEWORKS, startWorker, type Framework, type WorkerHandle } from './lib/workers.ts';
import { spawnSync } from 'node:child_process';
import { argOf } from './lib/cli.ts';
import { freeTcpPort } from '../test/support/managed-process.ts';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, '..');
const JOBS = Number(argOf('--jobs') ?? 3);
const SETTLE_MS = 5_000;
const SAMPLES = 5;
const BUDGET_MIB = 2048;
const mb = (kb: number) => Math.round((kb / 1024) * 10) / 10;
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
const log = (s: string) => console.log(`[density] ${s}`);

interface Memory {
  pssMb: number;
  rssMb: number;
}

/** The largest PSS and RSS of the subtree of `pid` over SAMPLES readings, 500 ms apart. */
async function memoryOf(pid: number): Promise<Memory> {
  let pss = 0;
  let rss = 0;
  for (let i = 0; i < SAMPLES; i++) {
    const tree = processTree(pid);
    if (tree.length === 0) throw new Error(`process ${pid} is gone`);
    pss = Math.max(
      pss,
      tree.reduce((s, p) => s + pssKb(p.pid), 0),
    );
    rss = Math.max(
      rss,
      tree.reduce((s, p) => s + p.rssKb, 0),
    );
    await sleep(500);
  }
  return { pssMb: mb(pss), rssMb: mb(rss) };
}

/** A tone published in real time until stopped: the user's microphone. */
async function publishTone(room: Awaited<ReturnType<typeof joinRoom>>['room']) {
  const rate = 48_000;
  const perFrame = rate / 100;
  const source = new AudioSource(rate, 1);
  const track = LocalAudioTrack.createAudioTrack('mic', source);
  await withDeadline(
    room.localParticipant!.publishTrack(
      track,
      new TrackPublishOptions({ source: TrackSource.SOURCE_MICROPHONE }),
    ),
    10_000,
    'publishing the microphone',
  );
  let running = true;
  let n = 0;
  const loop = (async () => {
    const start = performance.now();
    while (running) {
      const data = new Int16Array(perFrame);
      for (let i = 0; i < perFrame; i++) {
        data[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * (n * perFrame + i)) / rate));
      }
      await source.captureFrame(new AudioFrame(data, rate, 1, perFrame));
      n++;
      // Real time: the source's queue takes frames ahead; keep at most ~50 ms ahead.
      const ahead = n * 10 - (performance.now() - start);
      if (ahead > 50) await sleep(ahead - 50);
    }
  })();
  return {
    framesSent: () => n,
    stop: async () => {
      running = false;
      await withDeadline(loop, 5_000, 'the tone loop to stop').catch(() => undefined);
      await withDeadline(source.close(), 5_000, 'closing the audio source').catch(() => undefined);
    },
  };
}

interface JobSample extends Memory {
  pid: number;
  framesSent: number;
}

const pins = readPins(benchDir);
placeAgentstateFixture(benchDir, repoRoot);
const installs = {
  'agents-js': ensureAgentsJs(benchDir, pins, log),
  'livekit-agents': ensureLiveKitAgentsPy(benchDir, pins, log),
};
const server = await startLiveKitServer({ name: 'bench-density', targetLoad: 1 });
const dispatch = new AgentDispatchClient(server.httpUrl, server.apiKey, server.apiSecret);
const results: Partial<
  Record<Framework, { workerTree: Memory; jobs: JobSample[]; failures?: string[]; error?: string }>
> = {};
try {
  for (const fw of FRAMEWORKS) {
    if (fw !== 'agentstate' && !installs[fw].ok) {
      results[fw] = { workerTree: { pssMb: 0, rssMb: 0 }, jobs: [], error: installs[fw].error };
      continue;
    }
    let worker: WorkerHandle | undefined;
    const jobs: JobSample[] = [];
    const failures: string[] = [];
    let workerTree: Memory = { pssMb: 0, rssMb: 0 };
    try {
      worker = await startWorker(fw, {
        repoRoot,
        agentstateRoot: repoRoot,
        benchDir,
        server,
        idleProcesses: 1,
        httpPort: await freeTcpPort(),
        agentName: `density-${fw}`,
        label: `density-${fw}`,
      });
      // Registered, its spare warm and settled.
      await sleep(8_000);
      workerTree = await memoryOf(worker.pid);
      log(`${fw}: worker tree (worker + 1 idle spare) ${JSON.stringify(workerTree)}`);
      for (let j = 0; j < JOBS; j++) {
        const room = `density-${fw}-${j}-${Math.random().toString(36).slice(2, 8)}`;
        const user = await joinRoom(server, { room, identity: 'user', timeoutMs: 15_000 });
        const tone = await publishTone(user.room);
        try {
          const data = new Promise<{ pid: number }>((done) => {
            user.room.on(RoomEvent.DataReceived, (payload, _from, _kind, topic) => {
              if (topic === 'bench') done(JSON.parse(new TextDecoder().decode(payload)));
            });
          });
          await dispatch.createDispatch(room, worker.agentName);
          // A peer whose CPU load reads 1 on a busy machine says it is full, and the server
          // holds the dispatch until it is available again: a missed job is counted, not fatal.
          const { pid } = await withDeadline(data, 60_000, `${fw} agent's data in ${room}`);
          await sleep(SETTLE_MS);
          const mem = await memoryOf(pid);
          jobs.push({ pid, ...mem, framesSent: tone.framesSent() });
          log(`${fw} job ${j + 1}: pid ${pid} ${JSON.stringify(mem)}`);
        } catch (error) {
          failures.push((error as Error).message.slice(0, 300));
          log(`${fw} job ${j + 1} failed: ${(error as Error).message.slice(0, 300)}`);
        } finally {
          await tone.stop();
          await withDeadline(user.room.disconnect(), 10_000, 'the user leaving').catch(
            () => undefined,
          );
        }
        // The job ends with its user; the spare is replaced.
        await sleep(4_000);
      }
      results[fw] = { workerTree, jobs, ...(failures.length ? { failures } : {}) };
    } catch (error) {
      results[fw] = { workerTree, jobs, error: (error as Error).message.slice(0, 1000) };
      log(`${fw} failed: ${(error as Error).message.slice(0, 1000)}`);
    } finally {
      await worker?.stop().catch(() => undefined);
    }
  }
} finally {
  await leaveAllRooms().catch(() => undefined);
  await server.stop();
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : Number.NaN;
};
const summary = Object.fromEntries(
  Object.entries(results).map(([fw, r]) => {
    const pss = median(r.jobs.map((j) => j.pssMb));
    return [
      fw,
      {
        runningJobPssMb: pss,
        runningJobRssMb: median(r.jobs.map((j) => j.rssMb)),
        jobsIn2GiB: Math.floor(BUDGET_MIB / pss),
        jobsIn2GiBBesideTheWorker: Math.floor((BUDGET_MIB - r.workerTree.pssMb) / pss),
        workerTreePssMb: r.workerTree.pssMb,
        jobsMeasured: r.jobs.length,
        ...(r.error ? { error: r.error } : {}),
      },
    ];
  }),
);
const out = {
  measuredAt: new Date().toISOString(),
  command: `npx tsx bench/job-density.ts --jobs ${JOBS}`,
  machine: {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    python: spawnSync(pythonOf(benchDir), ['--version'], { encoding: 'utf8' }).stdout?.trim(),
  },
  versions: {
    '@livekit/agents': installs['agents-js'].versions['@livekit/agents'] ?? 'n/a',
    'livekit-agents': installs['livekit-agents'].versions['livekit-agents'] ?? 'n/a',
    'livekit-server': LIVEKIT_SERVER_VERSION,
  },
  method: `One framework at a time, its bench worker with 1 idle process (BENCH_IDLE=1); per job a user publishing a 440 Hz tone (48 kHz mono, real time) in a fresh room, the agent dispatched, connected and subscribed (each fixture's ctx.connect() default), its process sampled ${SETTLE_MS / 1000} s after its data message (no fixture reads the audio: subscribed, not consumed): largest PSS/RSS of the job process's subtree over ${SAMPLES} readings 500 ms apart. Median over ${JOBS} jobs. jobsIn2GiB = floor(2048 MiB / PSS).`,
  summary,
  raw: results,
};
mkdirSync(join(benchDir, 'results'), { recursive: true });
writeFileSync(join(benchDir, 'results', 'job-density.json'), `${JSON.stringify(out, null, 2)}\n`);
console.log(JSON.stringify(out.summary, null, 2));
// rtc-node's native handles keep the process alive after its rooms are gone.
process.exit(0);

/**
 * agentstate vs @livekit/agents (agents-js) vs livekit-agents (Python), on one livekit-server.
 *
 *   npm run bench               # full run (~15 min)
 *   npm run bench -- --quick    # short run (< 10 min); this is what bench/results/ holds
 *
 * The same minimal agent (bench/agents/) runs on each framework: join the room, publish one data
 * message, end when the participant leaves. The three workers run side by side on one server, each
 * with its own agent name (explicit dispatch), 4 warm idle processes and a load threshold of 1
 * (server target_load 1), so the figures measure dispatch rather than the CPU gate. Runs are
 * interleaved framework by framework so background noise hits all three alike.
 *
 * `--only latency [--rounds N]` runs the latency jobs alone (with their per-phase split inside the
 * job), `--only churn [--slices N]` the churn slices alone (with their CPU per job); either writes
 * test-artifacts/bench/latest.{json,md} instead of bench/results/. `--frameworks a,b` runs only
 * those frameworks (names as in the report's columns).
 *
 * `--ref <commit>` benchmarks agentstate as committed at <commit> (exported with `git archive` to a
 * temp dir that borrows this repo's node_modules) instead of the working tree, e.g. while the
 * working tree is mid-edit; the bench's own code always comes from the working tree.
 * AGENTSTATE_ROOT=<dir> points at such a tree directly.
 *
 * `--node PATH` runs both Node frameworks' workers, and so their job processes (forked from
 * them), on that `node` binary, e.g. `--node "$(scripts/node.sh 22 | tail -n1)"`; by default they
 * run on the bench's own (`npm run bench` runs it on a supported line: scripts/with-node.sh). The
 * report names the version they ran on (machine.node).
 */
import './lib/quiet-rtc.ts';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentDispatchClient, RoomServiceClient } from 'livekit-server-sdk';
import { LIVEKIT_SERVER_VERSION, startLiveKitServer } from '../test/support/livekit-server.ts';
import { runBurst, startWebhookSink, type BurstResult } from './lib/burst.ts';
import { runChurnSlice, type ChurnSlice } from './lib/churn.ts';
import {
  sampleIdle,
  sampleWarmProcesses,
  waitForTreeSize,
  type IdleSample,
  type WarmProcessSample,
} from './lib/idle.ts';
import { availabilityAnswers, delta } from './lib/metrics.ts';
import {
  ensureAgentsJs,
  ensureLiveKitAgentsPy,
  placeAgentstateFixture,
  pythonOf,
  readPins,
  type PeerInstall,
} from './lib/peers.ts';
import { LATENCY_FIGURES, phaseFigures } from './lib/phases.ts';
import { processTree } from './lib/procfs.ts';
import { withRatios, writeReport, type Figure, type Value } from './lib/report.ts';
import { recoveryFigures, runRecoveryBench } from './lib/recovery.ts';
import { runOneJob, type JobTiming } from './lib/scenarios.ts';
import { runSeedExample, type SeedExampleResult } from './lib/seed.ts';
import { summarize } from './lib/stats.ts';
import {
  FRAMEWORKS,
  startWorker,
  type Framework,
  type StartOptions,
  type WorkerHandle,
} from './lib/workers.ts';
import { argOf } from './lib/cli.ts';
import { freeTcpPort } from '../test/support/managed-process.ts';

const quick = process.argv.includes('--quick');
const only = argOf('--only');
if (only !== undefined && only !== 'latency' && only !== 'churn') {
  throw new Error(`--only ${only}: "latency" or "churn"`);
}
/** `--frameworks agentstate,livekit-agents`: run these alone (a probe; ratios need two). */
const picked = argOf('--frameworks')?.split(',');
for (const fw of picked ?? []) {
  if (!(FRAMEWORKS as readonly string[]).includes(fw)) {
    throw new Error(`--frameworks ${fw}: one of ${FRAMEWORKS.join(', ')}`);
  }
}
const isPicked = (fw: Framework) => !picked || picked.includes(fw);
/** The `node` both Node frameworks run on, the same for both. */
const workerNode = resolve(argOf('--node') ?? process.execPath);
const workerNodeVersion = spawnSync(workerNode, ['--version'], { encoding: 'utf8' }).stdout?.trim();
if (!workerNodeVersion) throw new Error(`--node ${workerNode}: does not run`);
const cfgBase = quick
  ? {
      latencyRounds: 8,
      idleWindowMs: 15_000,
      bursts: 1,
      // Three, so a churn figure is the middle slice: on a shared 2-core machine one slice in a
      // few stalls (a framework's 130/min became 50/min in the next slice), and the median of two
      // is their mean.
      churnSlices: 3,
      churnSliceMs: 12_000,
      burstDeadlineMs: 30_000,
      recoverMs: 20_000,
    }
  : {
      latencyRounds: 40,
      idleWindowMs: 30_000,
      bursts: 2,
      churnSlices: 4,
      churnSliceMs: 20_000,
      burstDeadlineMs: 40_000,
      recoverMs: 90_000,
    };
const cfg = {
  ...cfgBase,
  latencyRounds: Number(argOf('--rounds') ?? cfgBase.latencyRounds),
  churnSlices: Number(argOf('--slices') ?? cfgBase.churnSlices),
};
const IDLE_PROCESSES = 4;
const BURST_SIZE = 50;
const CHURN_CONCURRENCY = 4;
/** The elastic warm pool the second burst figures run agentstate with (`elasticIdleProcesses`). */
const ELASTIC_POOL = { min: IDLE_PROCESSES, max: 16 };
/** The process reuse the second churn figure runs agentstate with. */
const REUSE_JOBS_PER_PROCESS = 20;
/** The seed's example: load `min(activeJobs / 10, 1)`, threshold 0.9, offered this many jobs. */
const SEED_OFFERS = 10;
const SEED_THRESHOLD = 0.9;

const METHOD = [
  'One livekit-server (v1.13.5, --dev, loopback, agents.target_load 1) and three workers side by side, each with its own agent name (explicit dispatch), 4 warm idle processes, load threshold 1, production mode (`start`).',
  'Latency jobs: a user joins a fresh room, the bench calls createDispatch, waits for the agent participant and its data message, then leaves; frameworks interleaved job by job in rotating order, 0.5 s apart.',
  'Bursts and churn slices run one framework at a time, rotating the order (agentstate with process reuse takes its turn like the others); the others stay idle (and registered). Each churn slice starts once the previous worker is back to its idle tree, and its users run in a fresh process of their own (bench/lib/churn-users.ts: rtc-node slows down in a process that keeps joining rooms, which made every slice slower than the one before).',
  'The machine has 2 cores and other engineers may be running test suites on it at the same time: figures are noisy, interleaving spreads the noise over all three alike; compare ratios rather than absolute numbers.',
  'Instrumentation is in the bench fixtures only (bench/agents/): the entrypoint stamps its start time into the data message; Node workers print a line when a JobAssignment frame reaches their `ws` socket (stamped then, decoded and written after the framework has handled the frame, so the measurement stays off the hand-off), Python when AgentServer._handle_assignment is entered; the Node fixtures touch `performance` when the agent file is imported, so the entrypoint’s first stamp does not include Node loading perf_hooks (~1 ms); the message carries the times the entrypoint was called, connect resolved and the user was found, and each fixture appends the time its publish call resolved to the BENCH_STAMPS file (the "in the job" phases). No framework code is changed.',
  `The seed's 9-job example runs last, on a second worker per framework (agent name bench-<framework>-seed, load function min(active jobs / 10, 1), load threshold ${SEED_THRESHOLD}, 4 warm processes), started for it alone; the three run at the same time (the figure is a count the CPU must not change), each offered ${SEED_OFFERS} jobs one after another.`,
  'Peers run their documented production entry points: `node agent.mjs start` (cli.runApp + ServerOptions, defineAgent) and `python -m livekit.agents start agent.py` (AgentServer + rtc_session).',
  'Both Node frameworks run on the same `node` binary (named in the versions above; `--node PATH` picks another), their workers and the job processes they fork alike.',
  'The recovery figures come from bench/recovery.ts, run last in a process of its own with its own livekit-server and redis-server (the three workers above stay registered, idle): a worker SIGKILLed with its job processes under N jobs whose users stay; bench/results/recovery.md has its method and recovery.json every room.',
];

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, '..');
const refArg = process.argv.indexOf('--ref');
const ref = refArg > 0 ? process.argv[refArg + 1] : undefined;
const agentstateRoot = ref ? exportRef(ref) : resolve(process.env.AGENTSTATE_ROOT ?? repoRoot);
const agentstateVersion = ref
  ? `${ref} = ${git('rev-parse', '--short', ref)}`
  : agentstateRoot === repoRoot
    ? `working tree at ${git('describe', '--always', '--dirty')}`
    : agentstateRoot;
const startedAt = Date.now();
const log = (s: string) =>
  console.log(`[bench +${Math.round((Date.now() - startedAt) / 1000)}s] ${s}`);
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
/** Framework order for run `i`: rotated so none is always first after a pause. */
/** One burst as raw.bursts holds it: agentstate's answers are its /metrics counts' deltas. */
type BurstRun = BurstResult & { recoveredMs?: number; answers?: Record<string, number> };
const rotated = <T>(xs: T[], i: number): T[] => xs.map((_, k) => xs[(k + i) % xs.length]!);

// ---- peers --------------------------------------------------------------------------------------
const pins = readPins(benchDir);
placeAgentstateFixture(benchDir, agentstateRoot);
const notPicked: PeerInstall = { ok: false, error: 'not in --frameworks', versions: {} };
const installs: Record<Exclude<Framework, 'agentstate'>, PeerInstall> = {
  'agents-js': isPicked('agents-js') ? ensureAgentsJs(benchDir, pins, log) : notPicked,
  'livekit-agents': isPicked('livekit-agents')
    ? ensureLiveKitAgentsPy(benchDir, pins, log)
    : notPicked,
};
const unavailable = new Map<Framework, string>();
for (const [fw, inst] of Object.entries(installs) as [Framework, PeerInstall][]) {
  if (!inst.ok) unavailable.set(fw, inst.error ?? 'install failed');
}

// ---- server, webhooks, workers -----------------------------------------------------------------
const sink = await startWebhookSink();
const server = await startLiveKitServer({
  name: 'bench',
  targetLoad: 1,
  extraConfigYaml: [
    'webhook:',
    `  api_key: devkey`,
    '  urls:',
    `    - http://127.0.0.1:${sink.port}/`,
  ].join('\n'),
});
log(`livekit-server ${LIVEKIT_SERVER_VERSION} at ${server.url}`);
const dispatch = new AgentDispatchClient(server.httpUrl, server.apiKey, server.apiSecret);
const roomService = new RoomServiceClient(server.httpUrl, server.apiKey, server.apiSecret);
// The fixtures' "publish resolved" stamps (bench/agents/instrument.ts); workers inherit the env.
const stampsFile = join(repoRoot, 'test-artifacts', 'bench', 'stamps.jsonl');
mkdirSync(dirname(stampsFile), { recursive: true });
writeFileSync(stampsFile, '');
process.env.BENCH_STAMPS = stampsFile;
const deps = { server, dispatch, stampsFile };

const workers = new Map<Framework, WorkerHandle>();
const registrationMs: Partial<Record<Framework, number>> = {};
let cleanedUp = false;
async function cleanup(): Promise<void> {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const w of workers.values()) await w.stop().catch(() => undefined);
  await server.stop().catch(() => undefined);
  await sink.close().catch(() => undefined);
}
process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

try {
  for (const fw of FRAMEWORKS) {
    if (unavailable.has(fw) || !isPicked(fw)) continue;
    const t = Date.now();
    try {
      const w = await startWorkerOnFreePort(fw, {
        repoRoot,
        agentstateRoot,
        benchDir,
        server,
        idleProcesses: IDLE_PROCESSES,
      });
      workers.set(fw, w);
      registrationMs[fw] = Date.now() - t;
      log(`${fw} worker registered in ${registrationMs[fw]} ms (pid ${w.pid})`);
    } catch (error) {
      unavailable.set(fw, `worker did not start: ${(error as Error).message.slice(0, 500)}`);
      log(`${fw} unavailable: ${(error as Error).message.slice(0, 500)}`);
    }
  }
  const active = FRAMEWORKS.filter((fw) => workers.has(fw));

  // ---- warm-up, idle cost -----------------------------------------------------------------------
  log('warming up (idle processes prewarm)');
  await sleep(10_000);
  // Baseline: each tree's size once it has held still for 3 s (warm pools filled).
  const baseline = new Map<Framework, number>();
  let previous: number[] = [];
  let stableFor = 0;
  for (let i = 0; i < 60 && stableFor < 3; i++) {
    const sizes = active.map((fw) => processTree(workers.get(fw)!.pid).length);
    stableFor = sizes.every((s, k) => s === previous[k]) ? stableFor + 1 : 0;
    previous = sizes;
    await sleep(1_000);
  }
  active.forEach((fw, k) => baseline.set(fw, previous[k]!));
  log(`idle trees: ${active.map((fw) => `${fw} ${baseline.get(fw)} processes`).join(', ')}`);
  const warmSamples = new Map<Framework, WarmProcessSample[]>(active.map((fw) => [fw, []]));
  const busyAtSample = new Map<Framework, number>(active.map((fw) => [fw, 0]));
  /** Adds the framework's warm idle processes not sampled yet (each process counted once). */
  const sampleWarm = async (fw: Framework, at: string) => {
    const { warm, busy } = await sampleWarmProcesses(fw, workers.get(fw)!.pid, at);
    const list = warmSamples.get(fw)!;
    for (const w of warm) if (!list.some((x) => x.pid === w.pid)) list.push(w);
    busyAtSample.set(fw, busyAtSample.get(fw)! + busy);
  };
  await Promise.all(active.map((fw) => sampleWarm(fw, 'warm-up')));
  const idle = new Map<Framework, IdleSample>();
  if (!only) {
    log(`sampling idle cost for ${cfg.idleWindowMs / 1000} s (all workers at once)`);
    await Promise.all(
      active.map(async (fw) =>
        idle.set(fw, await sampleIdle(fw, workers.get(fw)!.pid, cfg.idleWindowMs)),
      ),
    );
  }

  // ---- latency, interleaved ----------------------------------------------------------------------
  const latencyRounds = only === 'churn' ? 0 : cfg.latencyRounds;
  if (latencyRounds) {
    log(`latency: ${latencyRounds} rounds × ${active.length} frameworks, interleaved`);
  }
  const timings = new Map<Framework, JobTiming[]>(active.map((fw) => [fw, []]));
  for (let r = 0; r < latencyRounds; r++) {
    for (const fw of rotated(active, r)) {
      timings.get(fw)!.push(await runOneJob(deps, workers.get(fw)!, 'lat'));
      await sleep(500);
    }
  }
  for (const fw of active) {
    const failed = timings.get(fw)!.filter((t) => !t.ok);
    if (failed.length) log(`${fw}: ${failed.length} latency jobs failed: ${failed[0]!.error}`);
  }
  await settle(active, baseline, 20_000);

  // ---- churn, interleaved slices -----------------------------------------------------------------
  const churn = new Map<Framework, ChurnSlice[]>(active.map((fw) => [fw, []]));
  // agentstate again with opt-in process reuse, on a worker of its own, its slices interleaved
  // with the three frameworks' default ones.
  const reuseChurn: ChurnSlice[] = [];
  let reuseWorker: WorkerHandle | undefined;
  let reuseBaseline = 0;
  const runsChurn = only === undefined || only === 'churn';
  if (runsChurn && active.includes('agentstate')) {
    reuseWorker = await startWorkerOnFreePort('agentstate', {
      repoRoot,
      agentstateRoot,
      benchDir,
      server,
      idleProcesses: IDLE_PROCESSES,
      agentName: 'bench-agentstate-reuse',
      label: 'agentstate-reuse',
      extraArgs: ['--jobs-per-process', String(REUSE_JOBS_PER_PROCESS)],
    });
    await waitForStableTree(reuseWorker.pid, 30_000);
    reuseBaseline = processTree(reuseWorker.pid).length;
  }
  /** One worker's churn slices: each framework's default one, and agentstate's with reuse. */
  interface ChurnEntrant {
    label: string;
    worker: WorkerHandle;
    slices: ChurnSlice[];
    /** Back to its idle tree (and its warm processes sampled) before the next slice starts. */
    settleAfter: () => Promise<void>;
  }
  const entrants: ChurnEntrant[] = active.map((fw) => ({
    label: fw,
    worker: workers.get(fw)!,
    slices: churn.get(fw)!,
    settleAfter: async () => {
      await settle([fw], baseline, 20_000);
      await sleep(2_000); // the replacements finish prewarming
      await sampleWarm(fw, 'churn');
    },
  }));
  if (reuseWorker) {
    const worker = reuseWorker;
    entrants.push({
      label: 'agentstate with process reuse',
      worker,
      slices: reuseChurn,
      // Its surplus processes are let go after 5 s idle (README "Process reuse").
      settleAfter: async () => {
        await waitForTreeSize(worker.pid, reuseBaseline, 20_000);
        await sleep(2_000);
      },
    });
  }
  // Every worker's slices rotate through the round's order alike: the machine drifts during a
  // run, so a worker always last in its round would carry more of it than the others. Each slice
  // starts once the previous worker is back to its idle tree.
  for (let s = 0; s < (runsChurn ? cfg.churnSlices : 0); s++) {
    for (const e of rotated(entrants, s)) {
      const slice = await runChurnSlice(
        deps,
        e.worker,
        cfg.churnSliceMs,
        CHURN_CONCURRENCY,
        server.pid,
      );
      e.slices.push(slice);
      log(
        `churn slice ${s + 1} ${e.label}: ${slice.completed} jobs (${slice.jobsPerMinute}/min), ${slice.failed} failed; user loop medians ${JSON.stringify(slice.cycleMedianMs)}; job phase medians ${JSON.stringify(slice.phaseMedianMs)}; CPU per job ${JSON.stringify(slice.cpuPerJobMs)}`,
      );
      await e.settleAfter();
    }
  }
  await reuseWorker?.stop().catch(() => undefined);

  // ---- burst (last: it can leave a framework's pool in backoff) -------------------------------------------------------------------------------------
  const bursts = new Map<Framework, BurstRun[]>(active.map((fw) => [fw, []]));
  for (let b = 0; b < (only ? 0 : cfg.bursts); b++) {
    for (const fw of rotated(active, b)) {
      log(`burst ${b + 1}: ${BURST_SIZE} dispatches at once to ${fw}`);
      const answersBefore =
        fw === 'agentstate' ? await availabilityAnswers(workers.get(fw)!.httpPort) : undefined;
      const res = await runBurst(
        workers.get(fw)!,
        { dispatch, rooms: roomService, sink, serverLog: server.logFile },
        BURST_SIZE,
        cfg.burstDeadlineMs,
        `burst${b}`,
      );
      const answersAfter = answersBefore
        ? await availabilityAnswers(workers.get(fw)!.httpPort)
        : undefined;
      const answers =
        answersBefore && answersAfter ? delta(answersBefore, answersAfter) : undefined;
      const t = Date.now();
      const recovered = await waitForTreeSize(
        workers.get(fw)!.pid,
        baseline.get(fw)!,
        cfg.recoverMs,
      );
      const recoveredMs = recovered ? Date.now() - t : undefined;
      bursts.get(fw)!.push({ ...res, recoveredMs, answers });
      log(
        `${fw}: ${JSON.stringify({ ...res, answers })}; back to its warm pool ${recoveredMs !== undefined ? `in ${recoveredMs} ms` : `NOT within ${cfg.recoverMs / 1000} s`}`,
      );
      await sleep(3_000);
      if (recovered) await sampleWarm(fw, 'burst');
    }
  }

  // ---- the burst again, on an agentstate worker with an elastic warm pool ---------------------------
  const elasticBursts: BurstRun[] = [];
  if (!only && active.includes('agentstate')) {
    let w: WorkerHandle | undefined;
    try {
      w = await startWorkerOnFreePort('agentstate', {
        repoRoot,
        agentstateRoot,
        benchDir,
        server,
        idleProcesses: ELASTIC_POOL.min,
        elasticPool: ELASTIC_POOL,
        agentName: 'bench-agentstate-elastic',
        label: 'agentstate-elastic',
      });
      await waitForStableTree(w.pid, 30_000);
      const elasticBaseline = processTree(w.pid).length;
      for (let b = 0; b < cfg.bursts; b++) {
        log(`burst ${b + 1}: ${BURST_SIZE} dispatches at once to agentstate, elastic warm pool`);
        const before = await availabilityAnswers(w.httpPort);
        const res = await runBurst(
          w,
          { dispatch, rooms: roomService, sink, serverLog: server.logFile },
          BURST_SIZE,
          cfg.burstDeadlineMs,
          `burst${b}e`,
        );
        const after = await availabilityAnswers(w.httpPort);
        const answers = before && after ? delta(before, after) : undefined;
        const t = Date.now();
        // Back to its minimum: the surplus goes 10 s after the last offer (README "Elastic warm pool").
        const recovered = await waitForTreeSize(w.pid, elasticBaseline, cfg.recoverMs);
        const recoveredMs = recovered ? Date.now() - t : undefined;
        elasticBursts.push({ ...res, recoveredMs, answers });
        log(
          `agentstate (elastic pool): ${JSON.stringify({ ...res, answers })}; back to its minimum ${recoveredMs !== undefined ? `in ${recoveredMs} ms` : `NOT within ${cfg.recoverMs / 1000} s`}`,
        );
        await sleep(3_000);
      }
    } catch (error) {
      log(`burst with the elastic pool failed: ${(error as Error).message.slice(0, 500)}`);
    } finally {
      await w?.stop().catch(() => undefined);
    }
  }

  // ---- the seed's 9-job example, on a worker of its own per framework -----------------------------
  if (!only)
    log(
      `seed example: ${SEED_OFFERS} jobs one after another, load min(jobs / 10, 1), threshold ${SEED_THRESHOLD}`,
    );
  const seed = new Map<Framework, SeedExampleResult>();
  const seedErrors: Partial<Record<Framework, string>> = {};
  await Promise.all(
    (only ? [] : active).map(async (fw) => {
      let w: WorkerHandle | undefined;
      try {
        w = await startWorkerOnFreePort(fw, {
          repoRoot,
          agentstateRoot,
          benchDir,
          server,
          idleProcesses: IDLE_PROCESSES,
          loadThreshold: SEED_THRESHOLD,
          agentName: `bench-${fw}-seed`,
          label: `${fw}-seed`,
          env: { BENCH_LOAD_POLICY: 'seed' },
        });
        await waitForStableTree(w.pid, 30_000);
        const r = await runSeedExample(
          w,
          { dispatch, rooms: roomService, sink },
          SEED_OFFERS,
          'seed',
        );
        seed.set(fw, r);
        log(`seed example ${fw}: ${JSON.stringify(r)}`);
      } catch (error) {
        seedErrors[fw] = (error as Error).message.slice(0, 500);
        log(`seed example ${fw} failed: ${seedErrors[fw]}`);
      } finally {
        await w?.stop().catch(() => undefined);
      }
    }),
  );

  // ---- recovery: a worker SIGKILLed under running jobs (bench/recovery.ts, a process of its own) --
  const resultsDir = only ? join(repoRoot, 'test-artifacts', 'bench') : join(benchDir, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const recoveryJobs = quick ? 5 : 10;
  if (!only) log(`recovery: ${recoveryJobs} jobs, Redis and disk, and the same kill on the peers`);
  const recovery = only ? undefined : await runRecoveryBench(recoveryJobs, resultsDir, log);

  // ---- report ------------------------------------------------------------------------------------
  const figures = [
    ...buildFigures(
      active,
      idle,
      timings,
      bursts,
      elasticBursts,
      churn,
      reuseChurn,
      warmSamples,
      seed,
      seedErrors,
    ),
    ...(only ? [] : recoveryFigures(recovery)),
  ].filter(
    (f) =>
      only === undefined ||
      (only === 'latency' ? LATENCY_FIGURES.has(f.id) : f.id.startsWith('churn_')),
  );
  writeReport(resultsDir, {
    generatedAt: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    ...(only === 'latency' ? { only: `latency (${cfg.latencyRounds} rounds)` } : {}),
    ...(only === 'churn' ? { only: `churn (${cfg.churnSlices} slices)` } : {}),
    ...(picked ? { frameworks: picked } : {}),
    durationSeconds: Math.round((Date.now() - startedAt) / 1000),
    machine: {
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model,
      memoryGb: Math.round(totalmem() / 2 ** 30),
      node: workerNode,
      python: spawnSync(pythonOf(benchDir), ['--version'], { encoding: 'utf8' }).stdout?.trim(),
      sharedMachine:
        'other test suites may run concurrently; frameworks are interleaved run by run',
    },
    versions: {
      'node (agentstate and agents-js, workers and job processes)': workerNodeVersion,
      agentstate: agentstateVersion,
      '@livekit/agents': installs['agents-js'].versions['@livekit/agents'] ?? 'n/a',
      'livekit-agents': installs['livekit-agents'].versions['livekit-agents'] ?? 'n/a',
      'livekit-server': LIVEKIT_SERVER_VERSION,
    },
    method: METHOD,
    figures,
    raw: {
      config: {
        ...cfg,
        idleProcesses: IDLE_PROCESSES,
        burstSize: BURST_SIZE,
        churnConcurrency: CHURN_CONCURRENCY,
      },
      registrationMs,
      unavailable: Object.fromEntries(unavailable),
      idle: Object.fromEntries(idle),
      bursts: Object.fromEntries(bursts),
      burstsWithElasticPool: { pool: ELASTIC_POOL, runs: elasticBursts },
      churn: Object.fromEntries(churn),
      churnWithReuse: { jobsPerProcess: REUSE_JOBS_PER_PROCESS, slices: reuseChurn },
      warmProcesses: Object.fromEntries(
        active.map((fw) => [
          fw,
          { samples: warmSamples.get(fw), leftOutAsBusy: busyAtSample.get(fw) },
        ]),
      ),
      seedExample: { results: Object.fromEntries(seed), errors: seedErrors },
      recovery: recovery ?? 'not run, or failed (its output is above in the log)',
      latencyFailures: Object.fromEntries(
        active.map((fw) => [
          fw,
          timings
            .get(fw)!
            .filter((t) => !t.ok)
            .map((t) => t.error),
        ]),
      ),
    },
  });
  log(`wrote ${join(resultsDir, 'latest.json')} and latest.md`);
} finally {
  await cleanup();
}
process.exit(0);

// ---- helpers -------------------------------------------------------------------------------------
function git(...args: string[]): string {
  return spawnSync('git', ['-C', repoRoot, ...args], { encoding: 'utf8' }).stdout.trim();
}

/** `git archive <ref>` into a temp dir, with this repo's node_modules linked in. */
function exportRef(commit: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'agentstate-bench-'));
  const res = spawnSync(
    'sh',
    ['-c', 'git -C "$1" archive "$2" | tar -x -C "$3"', 'sh', repoRoot, commit, dir],
    {
      encoding: 'utf8',
    },
  );
  if (res.status !== 0) throw new Error(`cannot export ${commit}: ${res.stderr}`);
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

/**
 * Starts a worker with its health server on a free port. A port free when probed can be taken
 * before the worker binds it (an outgoing connection's ephemeral port, say): that start fails
 * with EADDRINUSE, and is tried again on another port.
 */
async function startWorkerOnFreePort(
  fw: Framework,
  o: Omit<StartOptions, 'httpPort'>,
): Promise<WorkerHandle> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startWorker(fw, { ...o, node: workerNode, httpPort: await freeTcpPort() });
    } catch (error) {
      if (attempt >= 3 || !String((error as Error).message).includes('EADDRINUSE')) throw error;
      log(`${o.label ?? fw}: its health port was taken before it bound it; again on another`);
    }
  }
}

/** Waits until the tree's size has held still for 3 s (a fresh worker's warm pool filled). */
async function waitForStableTree(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let previous = -1;
  let stableFor = 0;
  while (Date.now() < deadline && stableFor < 3) {
    const size = processTree(pid).length;
    stableFor = size === previous ? stableFor + 1 : 0;
    previous = size;
    await sleep(1_000);
  }
}

async function settle(
  fws: Framework[],
  baseline: Map<Framework, number>,
  timeoutMs: number,
): Promise<void> {
  await Promise.all(
    fws.map((fw) => waitForTreeSize(workers.get(fw)!.pid, baseline.get(fw)!, timeoutMs)),
  );
}

function buildFigures(
  active: Framework[],
  idle: Map<Framework, IdleSample>,
  timings: Map<Framework, JobTiming[]>,
  bursts: Map<Framework, BurstRun[]>,
  elasticBursts: BurstRun[],
  churn: Map<Framework, ChurnSlice[]>,
  reuseChurn: ChurnSlice[],
  warmSamples: Map<Framework, WarmProcessSample[]>,
  seed: Map<Framework, SeedExampleResult>,
  seedErrors: Partial<Record<Framework, string>>,
): Figure[] {
  const per = (pick: (fw: Framework) => Value | undefined): Record<Framework, Value> =>
    Object.fromEntries(
      FRAMEWORKS.map((fw) => {
        const why = unavailable.get(fw);
        if (why || !active.includes(fw)) return [fw, { unavailable: why ?? 'not run' }];
        return [fw, pick(fw) ?? { unavailable: 'not measurable' }];
      }),
    ) as Record<Framework, Value>;
  const latency = (key: keyof JobTiming) => (fw: Framework) =>
    summarize(
      timings
        .get(fw)!
        .map((t) => t[key])
        .filter((x): x is number => typeof x === 'number' && Number.isFinite(x)),
    );
  const burstStat = (key: keyof BurstResult) => (fw: Framework) =>
    summarize(
      bursts
        .get(fw)!
        .map((b) => b[key])
        .filter((x): x is number => typeof x === 'number'),
    );
  /** agentstate's cell from the elastic pool's bursts; the peers' repeat their burst figure. */
  const elasticBurstStat = (key: keyof BurstResult) => (fw: Framework) =>
    fw === 'agentstate'
      ? elasticBursts.length
        ? summarize(
            elasticBursts.map((b) => b[key]).filter((x): x is number => typeof x === 'number'),
          )
        : { unavailable: 'not run' }
      : burstStat(key)(fw);
  const elasticNote = `The same burst on a second agentstate worker with an elastic warm pool (elasticIdleProcesses { min: ${ELASTIC_POOL.min}, max: ${ELASTIC_POOL.max} }, README "Elastic warm pool") instead of ${IDLE_PROCESSES} fixed, run after the other bursts. The peers have no elastic pool: their cells repeat their burst figure from the same run. raw.burstsWithElasticPool has every run.`;
  const noStartDelay: Record<Exclude<Framework, 'agentstate'>, string> = {
    'agents-js':
      'no such decision: agents-js answers an offer by its requestFunc alone; load is only in its status report every 2.5 s, and nothing estimates a start delay',
    'livekit-agents':
      'no such decision: livekit-agents declines an offer only when load_fnc (refreshed at the offer) reaches load_threshold, or while draining; nothing estimates a start delay',
  };
  const declinedForStartDelay = (fw: Framework): Value | undefined => {
    if (fw !== 'agentstate') return { unavailable: noStartDelay[fw] };
    const runs = bursts.get(fw)!.map((b) => b.answers);
    if (runs.some((a) => a === undefined)) return { unavailable: '/metrics not readable' };
    return summarize(runs.map((a) => a!.startDelay ?? 0));
  };
  const agentstateAnswers = bursts
    .get('agentstate')
    ?.map((b) => (b.answers ? JSON.stringify(b.answers) : 'not read'))
    .join('; ');
  const seedVal = (pick: (r: SeedExampleResult) => number) => (fw: Framework) => {
    const r = seed.get(fw);
    if (r) return { value: pick(r) };
    return { unavailable: seedErrors[fw] ?? 'not run' };
  };
  const warm = (pick: (w: WarmProcessSample) => number) => (fw: Framework) =>
    summarize(warmSamples.get(fw)?.map(pick) ?? []);
  const idleVal = (pick: (s: IdleSample) => number) => (fw: Framework) => {
    const s = idle.get(fw);
    return s ? { value: pick(s) } : undefined;
  };
  const R = cfg.latencyRounds;
  const perTiming = (pick: (t: JobTiming) => number | undefined) =>
    per((fw) =>
      summarize(
        timings
          .get(fw)!
          .map(pick)
          .filter((x): x is number => typeof x === 'number' && Number.isFinite(x)),
      ),
    );
  return [
    withRatios({
      id: 'dispatch_to_agent_visible',
      figure: 'dispatch → agent visible to the user',
      unit: 'ms',
      better: 'lower',
      runs: R,
      frameworks: per(latency('dispatchToJoinedMs')),
      note:
        'createDispatch sent → the user (already in the room) gets ParticipantConnected for the agent. ' +
        'Dominated by livekit-server: it announces the agent ~2.5 s after the agent has joined and already sent data (see the next figure), identically for all three.',
    }),
    withRatios({
      id: 'dispatch_to_agent_data',
      figure: "dispatch → agent's data message received",
      unit: 'ms',
      better: 'lower',
      runs: R,
      frameworks: per(latency('dispatchToDataMs')),
      note: 'createDispatch sent → the user receives the data message the agent publishes right after connecting and seeing the user: the agent is in the room and working.',
    }),
    withRatios({
      id: 'dispatch_to_entrypoint',
      figure: 'dispatch → entrypoint called',
      unit: 'ms',
      better: 'lower',
      runs: R,
      frameworks: per(latency('dispatchToEntryMs')),
      note: 'createDispatch sent (bench clock) → first line of the entrypoint (agent clock; same machine). Includes the server offer, the availability answer, the assignment and the hand-off to a warm process.',
    }),
    withRatios({
      id: 'assignment_to_entrypoint',
      figure: 'assignment → entrypoint called',
      unit: 'ms',
      better: 'lower',
      runs: R,
      frameworks: per(latency('assignmentToEntryMs')),
      note:
        'JobAssignment frame at the worker → first line of the entrypoint in the warm job process. Node workers: the frame as the `ws` socket emits it, before the framework sees it (bench/agents/instrument.ts); ' +
        'Python: at the entry of AgentServer._handle_assignment (after aiohttp and protobuf decoding, so a fraction of a millisecond in its favour).',
    }),
    ...phaseFigures(perTiming, R).map(withRatios),
    withRatios({
      id: 'burst_served',
      figure: `burst of ${BURST_SIZE}: agents joined`,
      unit: 'count',
      better: 'higher',
      runs: cfg.bursts,
      frameworks: per(burstStat('served')),
      note: `${BURST_SIZE} createDispatch calls at once to fresh rooms (no users in them), ${IDLE_PROCESSES} warm processes; agent joins seen by the server (participant_joined webhooks) within ${cfg.burstDeadlineMs / 1000} s. raw.bursts has assignments and why jobs were lost.`,
    }),
    withRatios({
      id: 'burst_time_to_last_join',
      figure: `burst of ${BURST_SIZE}: time to the last agent join`,
      unit: 'ms',
      better: 'lower',
      runs: cfg.bursts,
      frameworks: per(burstStat('timeToLastJoinMs')),
      note: 'Over the agents that did join within the deadline: read it together with the served count (a framework that serves few agents can finish early).',
    }),
    withRatios({
      id: 'burst_served_elastic',
      figure: `burst of ${BURST_SIZE} with agentstate's elastic warm pool: agents joined`,
      unit: 'count',
      better: 'higher',
      runs: cfg.bursts,
      frameworks: per(elasticBurstStat('served')),
      note: elasticNote,
    }),
    withRatios({
      id: 'burst_time_to_last_join_elastic',
      figure: `burst of ${BURST_SIZE} with agentstate's elastic warm pool: time to the last agent join`,
      unit: 'ms',
      better: 'lower',
      runs: cfg.bursts,
      frameworks: per(elasticBurstStat('timeToLastJoinMs')),
      note: elasticNote,
    }),
    withRatios({
      id: 'burst_answered_in_window',
      figure: `burst of ${BURST_SIZE}: availability answered inside the 3 s window`,
      unit: 'count',
      better: 'higher',
      runs: cfg.bursts,
      frameworks: per(burstStat('answeredInWindow')),
      note: 'Dispatches whose availability request the worker answered, yes or no, before the server gave up (~3 s): dispatches − offers dropped with "context deadline exceeded" in the server log − dispatches with no available worker. A quick "no" counts as answered (raw.bursts.*.declined).',
    }),
    withRatios({
      id: 'burst_declined_start_delay',
      figure: `burst of ${BURST_SIZE}: offers declined as unable to start in time (startDelay)`,
      unit: 'count',
      better: 'lower',
      runs: cfg.bursts,
      frameworks: per(declinedForStartDelay),
      note:
        'agentstate\'s own count: `agentstate_availability_answers_total{decision="startDelay"}` on its /metrics, read before and after each burst (an expected start delay over `jobStartBudget`, README "Capacity"). ' +
        `Every decision's count per burst is in raw.bursts.agentstate[].answers; this run: ${agentstateAnswers ?? 'n/a'}. ` +
        'The peers have no start-time decision (reasons in the cells); what the server saw each worker decline is raw.bursts.*.declined.',
    }),
    withRatios({
      id: 'idle_worker_rss',
      figure: 'idle: worker process RSS',
      unit: 'MB',
      better: 'lower',
      runs: 1,
      frameworks: per(idleVal((s) => s.workerRssMb)),
    }),
    withRatios({
      id: 'idle_process_rss',
      figure: 'idle: RSS of each warm idle process',
      unit: 'MB',
      better: 'lower',
      runs: 1,
      frameworks: per((fw) => summarize(idle.get(fw)?.idleProcessRssMb ?? [])),
      note:
        'Distribution over the warm processes. Python forks them from a forkserver, so much of their RSS is shared copy-on-write (see the PSS figure); agents-js also keeps an inference process ' +
        'and Python a forkserver and a resource tracker beside the warm processes; agentstate keeps none (raw.idle.*.helpers).',
    }),
    withRatios({
      id: 'idle_tree_pss',
      figure: 'idle: whole worker tree PSS (worker + warm processes + helpers)',
      unit: 'MB',
      better: 'lower',
      runs: 1,
      frameworks: per(idleVal((s) => s.treePssMb)),
      note: 'Proportional set size summed over every process the worker started: what the deployment really costs in memory.',
    }),
    withRatios({
      id: 'idle_worker_cpu',
      figure: 'idle: worker CPU',
      unit: '% of one core',
      better: 'lower',
      runs: 1,
      frameworks: per(idleVal((s) => s.workerCpuPct)),
      note: `Over ${cfg.idleWindowMs / 1000} s with no jobs (utime+stime from /proc); the whole tree's figure is in raw.idle.*.treeCpuPct.`,
    }),
    withRatios({
      id: 'idle_tree_cpu',
      figure: 'idle: whole worker tree CPU',
      unit: '% of one core',
      better: 'lower',
      runs: 1,
      frameworks: per(idleVal((s) => s.treeCpuPct)),
    }),
    withRatios({
      id: 'warm_process_start_cpu',
      figure: 'start: CPU a job process spent to get warm',
      unit: 'ms CPU',
      better: 'lower',
      runs: 1,
      frameworks: per(warm((w) => w.cpuMs)),
      note:
        'utime+stime from /proc/<pid>/stat of each warm idle job process (its CPU time moved ≤ 20 ms over 1 s, so it has finished prewarming and runs no job), read after the warm-up, after each churn slice and after each burst: ' +
        'processes started at the bench start, in churn and in the burst, each counted once (raw.warmProcesses). Python forks its job processes from a forkserver that has imported the modules already, so its figure is what a fork costs after that, ' +
        "not an interpreter start; the forkserver itself is a helper (idle figures). Idle CPU since the process got warm is included: for a Node process read more than ~10 s after it got warm, that is V8's memory reducer (two heap collections ~8 s into idleness, ~30-60 ms of CPU together), so processes read after churn or a burst show more than those read right after the warm-up.",
    }),
    withRatios({
      id: 'warm_process_rss',
      figure: 'start: RSS of a warm job process',
      unit: 'MB',
      better: 'lower',
      runs: 1,
      frameworks: per(warm((w) => w.rssMb)),
      note: 'The same processes as the start CPU figure. RSS counts shared pages in full (Python’s forked processes share much of theirs copy-on-write: see the idle PSS figure).',
    }),
    withRatios({
      id: 'churn_jobs_per_minute',
      figure: 'churn: short jobs completed per minute',
      unit: 'jobs/min',
      better: 'higher',
      runs: cfg.churnSlices,
      frameworks: per((fw) => summarize(churn.get(fw)!.map((c) => c.jobsPerMinute))),
      note:
        `${CHURN_CONCURRENCY} users in a closed loop, each: join a fresh room, dispatch, get the agent's data message, leave; ${cfg.churnSliceMs / 1000} s slices, frameworks interleaved slice by slice; where each user's loop spent its time (join, the dispatch call, dispatch → data, leave; medians per slice) is in raw.churn[].cycleMedianMs, and where dispatch → data went (the latency jobs' phases, under this load) in raw.churn[].phaseMedianMs. ` +
        "The bench's own rtc-node users share the 2 cores, alike for all three.",
    }),
    withRatios({
      id: 'churn_jobs_per_minute_reuse',
      figure: `churn with opt-in process reuse (agentstate --jobs-per-process ${REUSE_JOBS_PER_PROCESS}; the peers as above)`,
      unit: 'jobs/min',
      better: 'higher',
      runs: cfg.churnSlices,
      frameworks: per((fw) =>
        summarize((fw === 'agentstate' ? reuseChurn : churn.get(fw)!).map((c) => c.jobsPerMinute)),
      ),
      note:
        `The same closed loop on a second agentstate worker started with --jobs-per-process ${REUSE_JOBS_PER_PROCESS} (README "Process reuse"): a process whose job ended cleanly takes a later job instead of a fresh process starting. Its slices take their turn in each round's rotated order with the three default ones, and each slice starts once the previous worker is back to its idle tree. ` +
        'The peers have no process reuse in their releases (livekit-agents only on an unreleased branch): their cells repeat their default churn figure from the same run, so the ratio compares with what a user of theirs gets.',
    }),
    withRatios({
      id: 'churn_worker_cpu_per_job',
      figure: 'churn: CPU per job of the worker and its processes',
      unit: 'ms CPU',
      better: 'lower',
      runs: cfg.churnSlices,
      frameworks: per((fw) =>
        summarize(churn.get(fw)!.flatMap((c) => (c.cpuPerJobMs ? [c.cpuPerJobMs.workerTree] : []))),
      ),
      note:
        "utime+stime of the worker and every process it started over a churn slice (exited ones through their parent's cutime+cstime), divided by the jobs done in it: starts, hand-offs, the agent's connect, publish and leave. " +
        "The worker process's own share (`worker`), livekit-server's and the bench's own (its rtc-node users) are in raw.churn[].cpuPerJobMs; on 2 cores the three parts together bound the churn rate.",
    }),
    withRatios({
      id: 'churn_worker_cpu_per_job_reuse',
      figure: `churn: CPU per job with opt-in process reuse (agentstate --jobs-per-process ${REUSE_JOBS_PER_PROCESS}; the peers as above)`,
      unit: 'ms CPU',
      better: 'lower',
      runs: cfg.churnSlices,
      frameworks: per((fw) =>
        summarize(
          (fw === 'agentstate' ? reuseChurn : churn.get(fw)!).flatMap((c) =>
            c.cpuPerJobMs ? [c.cpuPerJobMs.workerTree] : [],
          ),
        ),
      ),
      note: 'As above, for the churn slices of the worker with process reuse.',
    }),
    withRatios({
      id: 'seed_example_accepted',
      figure: `seed example: jobs taken of ${SEED_OFFERS} offered one after another (load min(jobs / 10, 1), threshold ${SEED_THRESHOLD})`,
      unit: 'count',
      better: 'higher',
      runs: 1,
      frameworks: per(seedVal((r) => r.accepted)),
      note:
        `The seed's example ("limits the worker to 9 concurrent jobs"): the policy allows 9, so 9 is right; fewer means something besides the policy refused, ${SEED_OFFERS} that the policy was ignored. ` +
        `Each offer is a createDispatch to a fresh room (created with a 300 s empty timeout); taken = the agent joined within 8 s (webhook); the next offer follows 3 s after a join, so each framework's load report has caught up. ` +
        'Each job stays running (its agent waits for a user who never comes) until the bench deletes the rooms; raw.seedExample has the join times and how many agents were still in their rooms after the last offer.',
    }),
    withRatios({
      id: 'seed_example_tenth_refused',
      figure: `seed example: the ${SEED_OFFERS}th offer refused`,
      unit: '1 = refused, 0 = taken',
      better: 'higher',
      runs: 1,
      frameworks: per(seedVal((r) => (r.lastRefused ? 1 : 0))),
      note: `The last of the ${SEED_OFFERS} offers in the seed example: with 9 jobs running the load is 0.9, at the threshold, so the worker must not take it (no agent joined within 8 s).`,
    }),
  ];
}

/**
 * Job recovery (issue 28, README "When a worker dies"): a worker SIGKILLed, with its job
 * processes, under N running jobs whose users stay in their rooms. How long until each room has
 * its agent back, and its user a data message again; how many came back; how many twice.
 *
 *   npm run build && npx tsx bench/recovery.ts [--jobs N] [--out DIR]
 *
 * - Redis: two agentstate workers of one agent name share a redis-server (`AGENTSTATE_REDIS_URL`;
 *   the default lease); the first takes the N jobs (it is alone when they are dispatched), the
 *   second registers, and the first is killed. Timed from the kill.
 * - Disk: one agentstate worker with a state directory (`AGENTSTATE_STATE_DIR`) is killed under N
 *   jobs and started again at once over the same directory, as systemd or a container restart
 *   would. Timed from the restart (the spawn of the new process).
 * - The peers (agents-js, livekit-agents): the same kill of their worker, then a fresh worker of
 *   the same agent name started at once (a survivor, or the same one restarted, whichever the
 *   peer could use); after PEER_WAIT_MS the rooms with an agent back are counted.
 *
 * One livekit-server (--dev, loopback), the bench agents of bench/run.ts (bench/agents/: join,
 * wait for the user, one data message, stay until the user leaves), 4 warm idle processes, load
 * threshold 1. Per room (bench/lib/recovery.ts): the server listing a new agent (its
 * `listParticipants`, polled every 100 ms), the user's ParticipantConnected for it, and the
 * user's first data message. A duplicate is a room where the poll saw two agents at once, or a
 * second new agent; a job dispatched twice is one with two `job dispatched again` records.
 * Writes DIR/recovery.json and recovery.md (default bench/results/); bench/run.ts runs it too
 * and puts its figures in latest.{json,md}.
 */
import './lib/quiet-rtc.ts';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedisServer } from '../test/support/redis-server.ts';
import { LIVEKIT_SERVER_VERSION, startLiveKitServer } from '../test/support/livekit-server.ts';
import { leaveAllRooms } from '../test/support/participants.ts';
import { ensureAgentsJs, ensureLiveKitAgentsPy, readPins, type PeerInstall } from './lib/peers.ts';
import {
  killTree,
  logLines,
  roomsWithAgents,
  type AgentstateRecovery,
  type PeerRecovery,
  type RoomTiming,
} from './lib/recovery.ts';
import { summarize, type Summary } from './lib/stats.ts';
import {
  startWorker,
  type Framework,
  type StartOptions,
  type WorkerHandle,
} from './lib/workers.ts';
import { argOf } from './lib/cli.ts';
import { freeTcpPort } from '../test/support/managed-process.ts';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, '..');
const JOBS = Number(argOf('--jobs') ?? 5);
if (!Number.isInteger(JOBS) || JOBS < 1)
  throw new Error(`--jobs ${argOf('--jobs')}: an integer ≥ 1`);
const OUT = resolve(argOf('--out') ?? join(benchDir, 'results'));
/** `--scenarios redis,disk`: run these alone (a probe); default all four. */
const SCENARIOS = (argOf('--scenarios') ?? 'redis,disk,agents-js,livekit-agents').split(',');
const runs = (name: string) => SCENARIOS.includes(name);
const IDLE_PROCESSES = 4;
/** How long the bench waits for every agent to be back (agentstate). */
const BACK_TIMEOUT_MS = 60_000;
/** How long it keeps watching after that, for a late second agent. */
const AFTER_MS = 3_000;
/** How long the peers get to bring an agent back. */
const PEER_WAIT_MS = 30_000;
const SETTLE_MS = 3_000;
const startedAt = Date.now();
const log = (s: string) =>
  console.log(`[recovery +${Math.round((Date.now() - startedAt) / 1000)}s] ${s}`);

const server = await startLiveKitServer({ name: 'bench-recovery', targetLoad: 1 });
const workers: WorkerHandle[] = [];
const base = (label: string, agentName: string, env: Record<string, string>): StartOptions => ({
  repoRoot,
  agentstateRoot: repoRoot,
  benchDir,
  server,
  idleProcesses: IDLE_PROCESSES,
  httpPort: 0,
  agentName,
  label,
  env,
});
/**
 * Starts a worker; `settle`: then waits SETTLE_MS (its warm processes start, and the server's
 * list of agent names, dropped at every registration, is built again: a dispatch right at a
 * registration was once never offered).
 */
async function start(fw: Framework, o: StartOptions, settle = false): Promise<WorkerHandle> {
  const w = await startWorker(
    fw,
    o.httpPort === 0 && fw !== 'agentstate' ? { ...o, httpPort: await freeTcpPort() } : o,
  );
  workers.push(w);
  if (settle) await sleep(SETTLE_MS);
  return w;
}

function summarizeRun(
  jobs: number,
  from: number,
  rooms: RoomTiming[],
  survivors: WorkerHandle[],
): Omit<AgentstateRecovery, 'loadAverage'> {
  const back = rooms.filter((r) => r.listedMs !== undefined && r.dataMs !== undefined);
  const dispatched = new Map<string, number>();
  const dispatchedAt: number[] = [];
  for (const w of survivors) {
    for (const rec of logLines(w.output(), 'job dispatched again')) {
      const id = String(rec.jobId);
      dispatched.set(id, (dispatched.get(id) ?? 0) + 1);
      dispatchedAt.push(Date.parse(String(rec.timestamp)) - from);
    }
  }
  const latency = survivors.flatMap((w) =>
    logLines(w.output(), 'job recovered').map((r) => Number(r.latencyMs)),
  );
  const pick = (k: 'listedMs' | 'seenMs' | 'dataMs') =>
    summarize(rooms.flatMap((r) => (r[k] !== undefined ? [r[k]] : [])));
  return {
    jobs,
    recovered: back.length,
    duplicates: rooms.filter((r) => r.mostAgentsAtOnce > 1 || r.newAgents > 1).length,
    dispatchedTwice: [...dispatched.values()].filter((n) => n > 1).length,
    ...optional('listedMs', pick('listedMs')),
    ...optional('seenMs', pick('seenMs')),
    ...optional('dataMs', pick('dataMs')),
    ...optional('toDispatchedMs', summarize(dispatchedAt)),
    ...optional('workerLatencyMs', summarize(latency)),
    rooms,
  };
}

async function redisScenario(): Promise<AgentstateRecovery> {
  const before = loadavg();
  const redis = await startRedisServer({ name: 'bench-recovery-store' });
  const env = { AGENTSTATE_REDIS_URL: `redis://${redis.address}` };
  const agentName = 'recovery-redis';
  try {
    const a = await start('agentstate', base('recovery-redis-a', agentName, env), true);
    const rooms = await roomsWithAgents(server, agentName, JOBS, 'rec-redis');
    const b = await start('agentstate', base('recovery-redis-b', agentName, env));
    // B's store is open once it is registered and has journaled nothing; give its lease a beat.
    await sleep(1_000);
    await rooms.watch();
    const killedAt = rooms.mark();
    killTree(a.pid);
    log(`redis: killed worker A (pid ${a.pid}) under ${JOBS} jobs`);
    await rooms.waitBack(BACK_TIMEOUT_MS);
    await rooms.stop(AFTER_MS);
    const result = summarizeRun(JOBS, killedAt, rooms.timings(killedAt), [b]);
    await rooms.leave();
    await b.stop();
    return { ...result, loadAverage: { before, after: loadavg() } };
  } finally {
    await redis.stop();
  }
}

async function diskScenario(): Promise<AgentstateRecovery> {
  const before = loadavg();
  const dir = mkdtempSync(join(tmpdir(), 'agentstate-bench-recovery-'));
  const env = { AGENTSTATE_STATE_DIR: dir };
  const agentName = 'recovery-disk';
  try {
    const a = await start('agentstate', base('recovery-disk-1', agentName, env), true);
    const rooms = await roomsWithAgents(server, agentName, JOBS, 'rec-disk');
    await rooms.watch();
    const killedAt = Date.now();
    killTree(a.pid);
    await new Promise<void>((done) => {
      if (a.child.exitCode !== null || a.child.signalCode !== null) done();
      else a.child.once('exit', () => done());
    });
    const restartedAt = rooms.mark();
    log(`disk: killed the worker (pid ${a.pid}) under ${JOBS} jobs; starting it again`);
    const a2 = await start('agentstate', base('recovery-disk-2', agentName, env));
    const registeredAt = Date.now();
    await rooms.waitBack(BACK_TIMEOUT_MS);
    await rooms.stop(AFTER_MS);
    const result = summarizeRun(JOBS, restartedAt, rooms.timings(restartedAt), [a2]);
    await rooms.leave();
    await a2.stop();
    return {
      ...result,
      killToRestartMs: restartedAt - killedAt,
      restartToRegisteredMs: registeredAt - restartedAt,
      loadAverage: { before, after: loadavg() },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function peerScenario(fw: Exclude<Framework, 'agentstate'>): Promise<PeerRecovery> {
  const agentName = `recovery-${fw}`;
  const first = await start(fw, base(`recovery-${fw}-1`, agentName, {}), true);
  const rooms = await roomsWithAgents(server, agentName, JOBS, `rec-${fw}`, 90_000);
  await rooms.watch();
  const killedAt = rooms.mark();
  killTree(first.pid);
  log(`${fw}: killed its worker (pid ${first.pid}) under ${JOBS} jobs; a fresh one starts`);
  // A registered worker of the name, as the survivor or the restarted worker would be.
  const second = await start(fw, base(`recovery-${fw}-2`, agentName, {}));
  await sleep(Math.max(0, PEER_WAIT_MS - (Date.now() - killedAt)));
  await rooms.stop();
  const timings = rooms.timings(killedAt);
  await rooms.leave();
  await second.stop();
  return {
    jobs: JOBS,
    recovered: timings.filter((r) => r.listedMs !== undefined || r.dataMs !== undefined).length,
    waitedMs: Date.now() - killedAt,
    rooms: timings,
  };
}

const pins = readPins(benchDir);
const skipped: PeerInstall = { ok: false, error: 'not in --scenarios', versions: {} };
const installs: Record<Exclude<Framework, 'agentstate'>, PeerInstall> = {
  'agents-js': runs('agents-js') ? ensureAgentsJs(benchDir, pins, log) : skipped,
  'livekit-agents': runs('livekit-agents') ? ensureLiveKitAgentsPy(benchDir, pins, log) : skipped,
};
const results: {
  redis?: AgentstateRecovery;
  disk?: AgentstateRecovery;
  peers: Partial<Record<Exclude<Framework, 'agentstate'>, PeerRecovery>>;
  errors: Record<string, string>;
} = { peers: {}, errors: {} };
const attempt = async (name: string, run: () => Promise<void>) => {
  try {
    await run();
  } catch (error) {
    results.errors[name] = (error as Error).message.slice(0, 2000);
    log(`${name} failed: ${results.errors[name]}`);
  } finally {
    await leaveAllRooms().catch(() => undefined);
    for (const w of workers.splice(0)) await w.stop().catch(() => undefined);
  }
};
try {
  if (runs('redis')) {
    await attempt('redis', async () => {
      results.redis = await redisScenario();
      log(`redis: ${JSON.stringify({ ...results.redis, rooms: undefined })}`);
    });
  }
  if (runs('disk')) {
    await attempt('disk', async () => {
      results.disk = await diskScenario();
      log(`disk: ${JSON.stringify({ ...results.disk, rooms: undefined })}`);
    });
  }
  for (const fw of ['agents-js', 'livekit-agents'] as const) {
    if (!runs(fw)) continue;
    if (!installs[fw].ok) {
      results.errors[fw] = installs[fw].error ?? 'install failed';
      continue;
    }
    await attempt(fw, async () => {
      results.peers[fw] = await peerScenario(fw);
      log(`${fw}: ${results.peers[fw].recovered} of ${JOBS} recovered`);
    });
  }
} finally {
  await server.stop();
}

const out = {
  measuredAt: new Date().toISOString(),
  command: `npx tsx bench/recovery.ts --jobs ${JOBS}${argOf('--scenarios') ? ` --scenarios ${SCENARIOS.join(',')}` : ''}`,
  durationSeconds: Math.round((Date.now() - startedAt) / 1000),
  machine: {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  },
  versions: {
    '@livekit/agents': installs['agents-js'].versions['@livekit/agents'] ?? 'n/a',
    'livekit-agents': installs['livekit-agents'].versions['livekit-agents'] ?? 'n/a',
    'livekit-server': LIVEKIT_SERVER_VERSION,
  },
  config: {
    jobs: JOBS,
    idleProcesses: IDLE_PROCESSES,
    backTimeoutMs: BACK_TIMEOUT_MS,
    watchedAfterMs: AFTER_MS,
    peerWaitMs: PEER_WAIT_MS,
  },
  ...results,
};
mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, 'recovery.json'), `${JSON.stringify(out, null, 2)}\n`);
writeFileSync(join(OUT, 'recovery.md'), markdown(out));
log(`wrote ${join(OUT, 'recovery.json')} and recovery.md`);
// rtc-node's native handles keep the process alive after its rooms are gone.
process.exit(0);

function markdown(o: typeof out): string {
  const cell = (s: Summary | undefined) => (s ? `${s.median} / ${s.max}` : 'n/a');
  const row = (name: string, r: AgentstateRecovery | undefined, from: string) =>
    r
      ? `| ${name} | ${r.recovered} of ${r.jobs} | ${cell(r.listedMs)} | ${cell(r.seenMs)} | ${cell(r.dataMs)} | ${r.duplicates} | ${r.dispatchedTwice} | ${from} | ${r.loadAverage.before.map((x) => x.toFixed(2)).join(', ')} |`
      : `| ${name} | not run: ${o.errors[name.startsWith('Redis') ? 'redis' : 'disk'] ?? '?'} | | | | | | | |`;
  const peer = (fw: Exclude<Framework, 'agentstate'>) => {
    const p = o.peers[fw];
    return p
      ? `| ${fw} | not recovered: ${p.recovered} of ${p.jobs} agents back within ${Math.round(p.waitedMs / 1000)} s of the kill |`
      : `| ${fw} | not run: ${o.errors[fw] ?? '?'} |`;
  };
  return `${[
    '# Job recovery: a worker SIGKILLed under running jobs (issue 28)',
    '',
    `Measured ${o.measuredAt} on the bench VM (${o.machine.cpus} cores, ${o.machine.cpuModel ?? '?'}, ${o.machine.memoryGb} GB, shared with other sessions' test suites), Node ${o.machine.node}, livekit-server ${o.versions['livekit-server']}, @livekit/agents ${o.versions['@livekit/agents']}, livekit-agents ${o.versions['livekit-agents']}; ${o.durationSeconds} s.`,
    '',
    `    npm run build && ${o.command}`,
    '',
    'Milliseconds, p50 / max over the rooms. "Listed": the server lists the new agent (`listParticipants`, polled every 100 ms); "seen": the user gets `ParticipantConnected` for it; "data": the user gets its data message.',
    '',
    '| agentstate | recovered | → listed | → seen by the user | → data message | duplicates | dispatched twice | timed from | load average (1, 5, 15 min) at the start |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    row('Redis, 2 workers', o.redis, 'the kill'),
    row('disk journal, 1 worker restarted', o.disk, 'the restart'),
    '',
    '| peer | the same kill |',
    '| --- | --- |',
    peer('agents-js'),
    peer('livekit-agents'),
    '',
    '## Method',
    '',
    `- One livekit-server (--dev, loopback). ${o.config.jobs} rooms, each with an rtc-node user who stays, and the bench agent of bench/run.ts dispatched to it (bench/agents/: join, wait for the user, send one data message, stay until the user leaves); every user has its message before the kill. Workers: ${o.config.idleProcesses} warm idle processes, load threshold 1, \`agent start\`.`,
    '- The kill: SIGKILL of the worker and every process under it at once (its job processes and warm spares).',
    "- Redis: two agentstate workers of one agent name share a redis-server (`AGENTSTATE_REDIS_URL`, the default recovery options). Worker A is alone when the jobs are dispatched, so it holds all of them; worker B registers, then A is killed. Timed from the kill: B finds A gone (A's presence subscription went with its connections: found at most one scan and a 750 ms confirmation later, src/recovery/redis-store.ts; a frozen A would be found when its 10 s lease lapsed), claims its jobs, checks each room, removes the dead agent participant and dispatches the job again; B is offered it and answers with the old identity.",
    "- Disk: one agentstate worker with `AGENTSTATE_STATE_DIR`, killed, then started again as soon as it has exited, over the same directory. Timed from the restart's spawn (kill → restart and restart → registered are in recovery.json).",
    `- Duplicates: a room where the poll saw two agents at once after the kill, or more than one new agent. Dispatched twice: a job with two \`job dispatched again\` records in the recovering worker's log. Each room is watched ${o.config.watchedAfterMs / 1000} s more once every agent is back.`,
    `- Peers: the same rooms and kill on one worker of theirs; a fresh worker of the same agent name is started at once (what a survivor or a restarted worker would offer them), and the rooms with a new agent listed or a data message within ${o.config.peerWaitMs / 1000} s of the kill are counted. Neither framework journals its jobs, and livekit-server v1.13.5 re-dispatches nothing itself (test/e2e/SERVER-FACTS.md).`,
    "- Every room, figure and log-derived count is in recovery.json (`rooms`), with the worker's own latency (`workerLatencyMs`: abnormal end seen or orphan claimed → the new job launched).",
    '',
    '## Where the time goes',
    '',
    `- Redis: the kill → \`job dispatched again\` (finding A gone, claiming, the room checks, removing the dead agent, createDispatch) ${cell(o.redis?.toDispatchedMs)} ms; the claim → the new job launched (the worker's own \`latencyMs\`) ${cell(o.redis?.workerLatencyMs)} ms; the rest is the new job's connect and the server listing it.`,
    `- Disk: the restart → registered ${o.disk?.restartToRegisteredMs ?? 'n/a'} ms (process start, registration); the restart → \`job dispatched again\` ${cell(o.disk?.toDispatchedMs)} ms; the claim → launched ${cell(o.disk?.workerLatencyMs)} ms (with ${o.config.jobs} jobs and ${o.config.idleProcesses} warm processes, a job past the fourth waits for a process start).`,
    '- The restarted worker claims once it has reported itself available (it starts full until its warm processes are up, and the server drops a dispatch made while no worker of the name is available; a run on 2026-12-08 before that wait had one agent back only 13.2 s after the restart, through the re-dispatch check).',
    '- With the lease alone (before the presence subscription), the Redis figure was 9.3 s p50 (9.8 s max) here on 2026-12-08, 5 jobs: the lease lapsed 6.7–10 s after the kill (renewed every third of its 10 s) and the survivor looked every 3.3 s; the recovery itself took ~0.4 s of it.',
    '',
  ].join('\n')}`;
}

function optional<K extends string, V>(k: K, v: V | undefined): Partial<Record<K, V>> {
  return v === undefined ? {} : ({ [k]: v } as Record<K, V>);
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/**
 * The job-recovery scenarios of bench/recovery.ts (issue 28): N rooms, each with a user who stays
 * and an agent of the framework that sent it a data message; the worker holding them is
 * SIGKILLed with its job processes, and the bench times, per room, how long until an agent is
 * back and the user has a data message again.
 *
 * Per room, from the moment of the kill (or the restart):
 * - `listedMs`: the server lists an agent participant it had not listed before (a new `sid`;
 *   `RoomService.listParticipants`, polled every POLL_MS);
 * - `seenMs`: the user's `ParticipantConnected` for an agent;
 * - `dataMs`: the user's first data message (topic `bench`, the bench agents' one message).
 *
 * And the duplicates: a room where the poll saw two agents at once, or more than one new agent
 * after the kill.
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ParticipantKind, RoomEvent } from '@livekit/rtc-node';
import { ParticipantInfo_Kind } from '@livekit/protocol';
import { AgentDispatchClient, RoomServiceClient } from 'livekit-server-sdk';
import { joinRoom, withDeadline, type JoinedParticipant } from '../../test/support/participants.ts';
import { processTree } from './procfs.ts';
import { withRatios, type Figure, type Value } from './report.ts';
import type { Summary } from './stats.ts';
import type { Framework, ServerCreds } from './workers.ts';

const POLL_MS = 100;
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

export interface RoomTiming {
  room: string;
  /** Start of the clock (the kill, or the restart) → a new agent listed by the server. */
  listedMs?: number;
  /** → the user's ParticipantConnected for an agent. */
  seenMs?: number;
  /** → the user's first data message from an agent. */
  dataMs?: number;
  /** The job the new agent serves, as its data message says. */
  jobId?: string;
  /** The most agents the poll saw in the room at once, from the kill on. */
  mostAgentsAtOnce: number;
  /** Agents (sids) new to the server's list since the kill. */
  newAgents: number;
  /** Every agent the server listed: sid, identity, first listed (ms from the clock start). */
  agents: { sid: string; identity: string; listedMs: number }[];
}

/** One agentstate scenario, as bench/results/recovery.json holds it. */
export interface AgentstateRecovery {
  jobs: number;
  recovered: number;
  duplicates: number;
  dispatchedTwice: number;
  /** From the kill (Redis) or the restart (disk). */
  listedMs?: Summary;
  seenMs?: Summary;
  dataMs?: Summary;
  /** What the worker measured itself: abnormal end seen or orphan claimed → new job launched. */
  workerLatencyMs?: Summary;
  /** From the kill (Redis) or the restart (disk) to each `job dispatched again` record. */
  toDispatchedMs?: Summary;
  /** Disk: kill → restart spawned, and restart → registered. */
  killToRestartMs?: number;
  restartToRegisteredMs?: number;
  loadAverage: { before: number[]; after: number[] };
  rooms: RoomTiming[];
  error?: string;
}

/** One peer's kill. */
export interface PeerRecovery {
  jobs: number;
  /** Rooms with a new agent listed, or a data message, within `waitedMs` of the kill. */
  recovered: number;
  waitedMs: number;
  rooms: RoomTiming[];
  error?: string;
}

interface Watched {
  room: string;
  user: JoinedParticipant;
  /** Agent participants' joins as the user saw them (bench clock). */
  joins: { t: number; identity: string; sid: string }[];
  /** Data messages (topic `bench`) the user got (bench clock). */
  data: { t: number; jobId: string }[];
  /** Each agent sid the server listed, and when first. */
  sids: Map<string, number>;
  identities: Map<string, string>;
  /** The sids listed by a poll that began before the mark: the agents before the kill. */
  old: Set<string>;
  mostSince: number;
}

/** N rooms with a user each, the agent dispatched to each, until every user got its message. */
export async function roomsWithAgents(
  server: ServerCreds & { httpUrl: string },
  agentName: string,
  n: number,
  prefix: string,
  timeoutMs = 60_000,
): Promise<RoomsUnderTest> {
  const dispatch = new AgentDispatchClient(server.httpUrl, server.apiKey, server.apiSecret);
  const tag = Math.random().toString(36).slice(2, 7);
  const rooms: Watched[] = [];
  for (let i = 0; i < n; i++) {
    const room = `${prefix}-${tag}-${i}`;
    const user = await joinRoom(server, { room, identity: `user-${i}`, timeoutMs: 15_000 });
    const w: Watched = {
      room,
      user,
      joins: [],
      data: [],
      sids: new Map(),
      identities: new Map(),
      old: new Set(),
      mostSince: 0,
    };
    user.room.on(RoomEvent.ParticipantConnected, (p) => {
      if (p.kind === ParticipantKind.AGENT) {
        w.joins.push({ t: Date.now(), identity: p.identity, sid: p.sid ?? '' });
      }
    });
    user.room.on(RoomEvent.DataReceived, (payload, _from, _kind, topic) => {
      if (topic !== 'bench') return;
      const msg = JSON.parse(new TextDecoder().decode(payload)) as { jobId: string };
      w.data.push({ t: Date.now(), jobId: msg.jobId });
    });
    rooms.push(w);
    await dispatch.createDispatch(room, agentName);
  }
  const deadline = Date.now() + timeoutMs;
  while (rooms.some((w) => w.data.length === 0)) {
    if (Date.now() > deadline) {
      const missing = rooms.filter((w) => w.data.length === 0).map((w) => w.room);
      throw new Error(`no agent's message within ${timeoutMs} ms in ${missing.join(', ')}`);
    }
    await sleep(50);
  }
  return new RoomsUnderTest(server, rooms);
}

export class RoomsUnderTest {
  readonly #rooms: Watched[];
  readonly #client: RoomServiceClient;
  #polling: Promise<void> | undefined;
  #on = false;
  #since = 0;

  constructor(server: ServerCreds & { httpUrl: string }, rooms: Watched[]) {
    this.#rooms = rooms;
    this.#client = new RoomServiceClient(server.httpUrl, server.apiKey, server.apiSecret);
  }

  get names(): string[] {
    return this.#rooms.map((w) => w.room);
  }

  /**
   * Waits until the server lists each room's agent: every agent sid listed before the mark is
   * "old". The server lists (and announces) an agent a few seconds after it joined, later than
   * its first data message.
   */
  async watch(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.#pollOnce();
    while (this.#rooms.some((w) => w.sids.size === 0)) {
      if (Date.now() > deadline) {
        const missing = this.#rooms.filter((w) => w.sids.size === 0).map((w) => w.room);
        throw new Error(
          `the server listed no agent within ${timeoutMs} ms in ${missing.join(', ')}`,
        );
      }
      await sleep(POLL_MS);
      await this.#pollOnce();
    }
  }

  async #pollOnce(): Promise<void> {
    const beforeMark = this.#since === 0;
    await Promise.all(
      this.#rooms.map(async (w) => {
        const ps = await this.#client.listParticipants(w.room).catch(() => undefined);
        if (!ps) return;
        const t = Date.now();
        const agents = ps.filter(
          (p) => (p.kind as number) === (ParticipantInfo_Kind.AGENT as number),
        );
        for (const a of agents) {
          if (beforeMark) w.old.add(a.sid);
          if (w.sids.has(a.sid)) continue;
          w.sids.set(a.sid, t);
          w.identities.set(a.sid, a.identity);
        }
        if (this.#since > 0) w.mostSince = Math.max(w.mostSince, agents.length);
      }),
    );
  }

  /** Marks the start of the clock (what comes after it counts) and polls from then on. */
  mark(): number {
    this.#since = Date.now();
    this.#on = true;
    this.#polling = (async () => {
      while (this.#on) {
        await this.#pollOnce();
        await sleep(POLL_MS);
      }
    })();
    return this.#since;
  }

  /** Waits until every room has a new agent and a message after the mark, or `timeoutMs`. */
  async waitBack(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const back = (w: Watched) =>
      w.data.some((d) => d.t >= this.#since) && [...w.sids.keys()].some((sid) => !w.old.has(sid));
    while (Date.now() < deadline && !this.#rooms.every(back)) await sleep(50);
  }

  /** Keeps watching `ms` more (a late second agent would show), then stops. */
  async stop(afterMs = 0): Promise<void> {
    await sleep(afterMs);
    this.#on = false;
    await this.#polling;
  }

  /** The timings from `from` (the kill, or the restart) for each room. */
  timings(from: number): RoomTiming[] {
    const since = this.#since;
    return this.#rooms.map((w) => {
      const newSids = [...w.sids].filter(([sid]) => !w.old.has(sid)).map(([, t]) => t);
      const listed = newSids.length ? Math.min(...newSids) : undefined;
      // The server announces an agent to the others ~3 s after it joined: an old agent's late
      // announcement is not the new one.
      const seen = w.joins.find((j) => j.t >= since && !w.old.has(j.sid))?.t;
      const data = w.data.find((d) => d.t >= since);
      return {
        room: w.room,
        ...(listed !== undefined ? { listedMs: listed - from } : {}),
        ...(seen !== undefined ? { seenMs: seen - from } : {}),
        ...(data ? { dataMs: data.t - from, jobId: data.jobId } : {}),
        mostAgentsAtOnce: w.mostSince,
        newAgents: newSids.length,
        agents: [...w.sids].map(([sid, t]) => ({
          sid,
          identity: w.identities.get(sid) ?? '',
          listedMs: t - from,
        })),
      };
    });
  }

  async leave(): Promise<void> {
    this.#on = false;
    await this.#polling;
    await Promise.all(
      this.#rooms.map((w) =>
        withDeadline(w.user.leave(), 10_000, `leaving ${w.room}`).catch(() => undefined),
      ),
    );
  }
}

/** SIGKILLs a process and everything under it at once (a machine's OOM kill, a crash). */
export function killTree(pid: number): number[] {
  const pids = processTree(pid).map((p) => p.pid);
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return pids;
}

/** agentstate's JSON log lines with this message (from a worker's output). */
export function logLines(output: string, message: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{') || !line.includes(message)) continue;
    try {
      const rec = JSON.parse(line) as Record<string, unknown>;
      if (rec.message === message) out.push(rec);
    } catch {
      // not JSON
    }
  }
  return out;
}

/** bench/results/recovery.json, as bench/recovery.ts writes it. */
export interface RecoveryReport {
  measuredAt: string;
  config: { jobs: number; peerWaitMs: number };
  redis?: AgentstateRecovery;
  disk?: AgentstateRecovery;
  peers: Partial<Record<Exclude<Framework, 'agentstate'>, PeerRecovery>>;
  errors: Record<string, string>;
}

/**
 * Runs bench/recovery.ts in a process of its own (its own livekit-server and Redis, its own
 * rtc-node users), writing `outDir`/recovery.{json,md}; resolves with the report, or undefined
 * when it failed or took longer than `timeoutMs`.
 */
export async function runRecoveryBench(
  jobs: number,
  outDir: string,
  log: (s: string) => void,
  timeoutMs = 10 * 60_000,
): Promise<RecoveryReport | undefined> {
  const child = fork(
    fileURLToPath(new URL('../recovery.ts', import.meta.url)),
    ['--jobs', String(jobs), '--out', outDir],
    { execArgv: ['--import', import.meta.resolve('tsx')], stdio: 'inherit' },
  );
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((done) => child.once('exit', (c) => done(c)));
  clearTimeout(timer);
  if (code !== 0) {
    log(`bench/recovery.ts exited with ${code}`);
    return undefined;
  }
  return JSON.parse(readFileSync(join(outDir, 'recovery.json'), 'utf8')) as RecoveryReport;
}

/** The recovery figures of latest.{json,md}. */
export function recoveryFigures(r: RecoveryReport | undefined): Figure[] {
  const N = r?.config.jobs ?? 0;
  const peerCell = (fw: Exclude<Framework, 'agentstate'>): Value => {
    const p = r?.peers[fw];
    if (!p) return { unavailable: `not run: ${r?.errors[fw] ?? 'the recovery bench failed'}` };
    return {
      unavailable: `not recovered: ${p.recovered} of ${p.jobs} agents back within ${Math.round(p.waitedMs / 1000)} s of the same kill (measured)`,
    };
  };
  const peerCount = (fw: Exclude<Framework, 'agentstate'>): Value => {
    const p = r?.peers[fw];
    return p ? { value: p.recovered } : peerCell(fw);
  };
  const ours = (
    scenario: 'redis' | 'disk',
    pick: (s: AgentstateRecovery) => Value | undefined,
  ): Value => {
    const s = r?.[scenario];
    if (!s)
      return { unavailable: `not run: ${r?.errors[scenario] ?? 'the recovery bench failed'}` };
    return pick(s) ?? { unavailable: 'no agent came back' };
  };
  const row = (
    scenario: 'redis' | 'disk',
    id: string,
    figure: string,
    unit: string,
    better: 'lower' | 'higher',
    pick: (s: AgentstateRecovery) => Value | undefined,
    peers: (fw: Exclude<Framework, 'agentstate'>) => Value,
    note: string,
  ): Figure =>
    withRatios({
      id: `recovery_${scenario}_${id}`,
      figure,
      unit,
      better,
      runs: N,
      frameworks: {
        agentstate: ours(scenario, pick),
        'agents-js': peers('agents-js'),
        'livekit-agents': peers('livekit-agents'),
      },
      note,
    });
  const redis = `two agentstate workers sharing a Redis (default recovery options), ${N} jobs on worker A, A and its job processes SIGKILLed; timed from the kill`;
  const disk = `one agentstate worker with a state directory, SIGKILLed under ${N} jobs and started again at once; timed from the restart`;
  const peersNote =
    'The peers: the same kill of their worker, a fresh worker of the same agent name started at once; rooms with an agent back within 30 s counted (bench/recovery.ts). bench/results/recovery.md has the method.';
  return [
    row(
      'redis',
      'recovered',
      `recovery, Redis: jobs recovered of ${N}`,
      'count',
      'higher',
      (s) => ({ value: s.recovered }),
      peerCount,
      `${redis}. ${peersNote}`,
    ),
    row(
      'redis',
      'listed',
      'recovery, Redis: kill → agent back (listed by the server)',
      'ms',
      'lower',
      (s) => s.listedMs,
      peerCell,
      `${redis}: the server lists a new agent participant (listParticipants polled every 100 ms); when the user sees it join (ParticipantConnected) is in recovery.json (seenMs).`,
    ),
    row(
      'redis',
      'data',
      "recovery, Redis: kill → the user's data message again",
      'ms',
      'lower',
      (s) => s.dataMs,
      peerCell,
      `${redis}: the recovered agent's data message (the bench agent sends one once it has joined and found the user).`,
    ),
    row(
      'redis',
      'duplicates',
      'recovery, Redis: duplicates (two agents at once in a room, or a job dispatched twice)',
      'count',
      'lower',
      (s) => ({ value: s.duplicates + s.dispatchedTwice }),
      peerCell,
      `${redis}.`,
    ),
    row(
      'disk',
      'recovered',
      `recovery, disk journal: jobs recovered of ${N}`,
      'count',
      'higher',
      (s) => ({ value: s.recovered }),
      peerCount,
      `${disk}. ${peersNote}`,
    ),
    row(
      'disk',
      'listed',
      'recovery, disk journal: restart → agent back (listed by the server)',
      'ms',
      'lower',
      (s) => s.listedMs,
      peerCell,
      `${disk}.`,
    ),
    row(
      'disk',
      'data',
      "recovery, disk journal: restart → the user's data message again",
      'ms',
      'lower',
      (s) => s.dataMs,
      peerCell,
      `${disk}.`,
    ),
    row(
      'disk',
      'duplicates',
      'recovery, disk journal: duplicates (two agents at once in a room, or a job dispatched twice)',
      'count',
      'lower',
      (s) => ({ value: s.duplicates + s.dispatchedTwice }),
      peerCell,
      `${disk}.`,
    ),
  ];
}

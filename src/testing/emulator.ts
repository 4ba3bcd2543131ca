/**
 * The agent-dispatch emulator: the server side of the LiveKit agent worker protocol
 * (livekit-server v1.13.5) on a real socket at 127.0.0.1, with rooms, dispatches and
 * participants driven from test code, and faults a real server rarely produces on demand.
 *
 * ```ts
 * const emu = await startEmulator({ availabilityTimeoutMs: 300 });
 * // …start a worker against emu.url with emu.apiKey / emu.apiSecret…
 * const worker = await emu.waitForWorker();
 * emu.createRoom('demo');
 * const job = await emu.waitForJob((j) => j.room === 'demo' && j.status === 'running');
 * await emu.close();
 * ```
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ServerMessage } from '@livekit/protocol';
import { AccessToken } from 'livekit-server-sdk';
import { WebSocketServer } from 'ws';
import { AgentStateError } from '../errors.ts';
import { WorkerConnection } from './connection.ts';
import type { ConnectionHost, EventInput, WorkerState } from './connection.ts';
import { Dispatcher } from './dispatcher.ts';
import { handleWorkerMessage } from './handlers.ts';
import { guid } from './tokens.ts';
import { decideAgentRequest, rawHttpResponse } from './upgrade.ts';
import { RoomApi } from './room-api.ts';
import { Waits } from './waits.ts';
import { EventLog } from './events.ts';
import type {
  EmulatorEvent,
  EmulatorEventType,
  EmulatorOptions,
  JobSnapshot,
  JobStatusName,
  WorkerSnapshot,
} from './types.ts';

/** Deadline of one wait; without `timeoutMs` the emulator's `defaultWaitMs` applies. */
export interface WaitOptions {
  timeoutMs?: number;
}

interface WorkerEntry {
  state: WorkerState;
  conn: WorkerConnection;
}

/** Starts an emulator on 127.0.0.1 at a free port. Close it with {@link Emulator.close}. */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const emu = new Emulator(options);
  await emu.listen();
  return emu;
}

/** A running emulator. Create it with {@link startEmulator}. */
export class Emulator extends RoomApi {
  /** First API key of `keys` (default `devkey`). */
  readonly apiKey: string;
  /** Its secret (default `secret`). */
  readonly apiSecret: string;
  /** `ServerInfo.nodeId` sent at registration. */
  readonly nodeId: string;

  private readonly keys: Record<string, string>;
  private readonly opts: Required<Omit<EmulatorOptions, 'keys' | 'nodeId'>>;
  private readonly server: Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly sockets = new Set<Socket>();
  private readonly conns = new Set<WorkerConnection>();
  protected readonly dispatcher: Dispatcher;
  private readonly workerEntries = new Map<string, WorkerEntry>();
  private readonly waits = new Waits(() => this.log.describeRecent());
  private readonly log: EventLog;
  private connSeq = 0;
  private port = 0;
  private closing: Promise<void> | undefined;

  /** @internal Use {@link startEmulator}. */
  constructor(options: EmulatorOptions) {
    const keys = options.keys ?? { devkey: 'secret' };
    const first = Object.entries(keys)[0];
    if (first === undefined) throw new AgentStateError('emulator needs at least one API key');
    super();
    const random = options.random ?? Math.random;
    const opts = {
      registerTimeoutMs: options.registerTimeoutMs ?? 10_000,
      availabilityTimeoutMs: options.availabilityTimeoutMs ?? 3_000,
      jobLinkDelayMs: options.jobLinkDelayMs ?? 0,
      simulateJobTimeoutMs: options.simulateJobTimeoutMs ?? 10_000,
      pingIntervalMs: options.pingIntervalMs ?? 10_000,
      targetLoad: options.targetLoad ?? 0.7,
      defaultWaitMs: options.defaultWaitMs ?? 5_000,
      random,
      region: options.region ?? '',
      maxEvents: options.maxEvents ?? 10_000,
    };
    this.dispatcher = new Dispatcher({
      emit: (event) => this.emit(event),
      connections: () => [...this.conns].filter((c) => c.worker !== undefined && !c.closed),
      secretOf: (apiKey) => keys[apiKey] ?? '',
      targetLoad: opts.targetLoad,
      availabilityTimeoutMs: opts.availabilityTimeoutMs,
      jobLinkDelayMs: opts.jobLinkDelayMs,
      simulateJobTimeoutMs: opts.simulateJobTimeoutMs,
      random,
    });
    this.keys = { ...keys };
    this.apiKey = first[0];
    this.apiSecret = first[1];
    this.nodeId = options.nodeId ?? guid('ND_');
    this.opts = opts;
    this.log = new EventLog(opts.maxEvents, () => this.waits.poke());
    this.server = createServer((req, res) => {
      const d = decideAgentRequest(req, this.keys, false);
      const status = d.ok ? 404 : d.status;
      this.emit({
        type: 'http-refused',
        status,
        path: d.ok ? '/agent' : d.path,
        reason: d.ok ? 'not a websocket upgrade' : d.reason,
      });
      res
        .writeHead(status, { 'content-type': 'text/plain; charset=utf-8' })
        .end(d.ok ? 'not found' : d.reason);
    });
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.upgrade(req, socket, head),
    );
  }

  /** @internal Binds the port; called by {@link startEmulator}. */
  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** `ws://127.0.0.1:PORT` — the LiveKit URL to give a worker (it appends `/agent`). */
  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** Every registered worker, connected or not, in registration order. */
  get workers(): WorkerSnapshot[] {
    return [...this.workerEntries.values()].map((e) => this.workerSnapshot(e));
  }

  /** Every job created so far, in creation order. */
  get jobs(): JobSnapshot[] {
    return [...this.dispatcher.jobs.values()].map((j) => this.dispatcher.snapshot(j));
  }

  /** Every event so far (at most `maxEvents`, oldest dropped), oldest first. */
  get events(): readonly EmulatorEvent[] {
    return this.log.all();
  }

  /** `seq` of the latest event (0 before any); pass it as `after` to wait only for newer events. */
  get lastSeq(): number {
    return this.log.lastSeq;
  }

  /** The worker with this id, if it ever registered. */
  worker(workerId: string): WorkerSnapshot | undefined {
    const e = this.workerEntries.get(workerId);
    return e && this.workerSnapshot(e);
  }

  /** The job with this id, if it exists. */
  job(jobId: string): JobSnapshot | undefined {
    const j = this.dispatcher.jobs.get(jobId);
    return j && this.dispatcher.snapshot(j);
  }

  /** Subscribes to every event as it happens; returns the unsubscribe function. */
  on(_type: 'event', listener: (event: EmulatorEvent) => void): () => void {
    return this.log.add(listener);
  }

  /** Removes a listener added with {@link on}. */
  off(_type: 'event', listener: (event: EmulatorEvent) => void): void {
    this.log.remove(listener);
  }

  /**
   * Mints a worker JWT for this emulator (`video.agent` true unless `agent: false`), e.g. for a
   * raw client: `new WebSocket(emu.url + '/agent', { headers: { authorization: 'Bearer ' + t } })`.
   */
  async workerToken(
    opts: { apiKey?: string; apiSecret?: string; agent?: boolean } = {},
  ): Promise<string> {
    const at = new AccessToken(opts.apiKey ?? this.apiKey, opts.apiSecret ?? this.apiSecret, {
      ttl: 3600,
    });
    at.addGrant({ agent: opts.agent ?? true });
    return at.toJwt();
  }

  // ── jobs and faults ──────────────────────────────────────────────────────────────────────

  /**
   * Sends `JobTermination` for a running job. `requested` (default) is what `DeleteDispatch`
   * does and records success; `agent-left` records failure "agent worker left the room".
   * Returns false when the server would send nothing (job not running on a connected worker).
   */
  terminateJob(jobId: string, reason: 'requested' | 'agent-left' = 'requested'): boolean {
    return this.dispatcher.terminate(jobId, reason);
  }

  /** Closes the worker's socket without a close frame (the client sees 1006), as the server does. */
  dropWorker(workerId: string): void {
    this.entry(workerId).conn.kill('dropped by test');
  }

  /** Stops reading from and writing to the worker for `ms`; writes are delivered afterwards. */
  stallWorker(workerId: string, ms: number): void {
    this.entry(workerId).conn.stall(ms);
  }

  /** Sends a frame as is: bytes as a binary frame, a string as a text frame (e.g. garbage). */
  sendRaw(workerId: string, frame: Uint8Array | string): void {
    this.entry(workerId).conn.sendRaw(frame);
  }

  /** Sends any server message (e.g. an unsolicited termination) in the worker's framing. */
  send(workerId: string, msg: ServerMessage): void {
    this.entry(workerId).conn.send(msg);
  }

  // ── waits (each has a deadline) ──────────────────────────────────────────────────────────

  /**
   * Resolves with the first truthy value of `probe`, re-evaluated after every event. Rejects
   * with `EmulatorWaitError` at the deadline (message lists recent events) or on close.
   */
  waitFor<T>(
    probe: () => T | undefined | null | false,
    opts: WaitOptions & { description?: string } = {},
  ): Promise<T> {
    return this.waits.until(probe, this.timeout(opts), opts.description ?? 'a condition');
  }

  /**
   * Resolves with the first event of `type` matching `pred`, searching the log from the start
   * (or only events with `seq > after`), then future events.
   */
  waitForEvent<K extends EmulatorEventType>(
    type: K,
    pred: (event: Extract<EmulatorEvent, { type: K }>) => boolean = () => true,
    opts: WaitOptions & { after?: number } = {},
  ): Promise<Extract<EmulatorEvent, { type: K }>> {
    const after = opts.after ?? 0;
    let scanned = 0;
    return this.waits.until(
      () => {
        // Only look at events not seen by an earlier call of this probe.
        const from = Math.max(after, scanned);
        scanned = this.log.lastSeq;
        return this.log.find(
          from,
          (e): e is Extract<EmulatorEvent, { type: K }> =>
            e.type === type && pred(e as Extract<EmulatorEvent, { type: K }>),
        );
      },
      this.timeout(opts),
      `event ${type}`,
    );
  }

  /** Resolves with the first connected worker matching `pred` (any connected worker by default). */
  waitForWorker(
    pred: (w: WorkerSnapshot) => boolean = () => true,
    opts: WaitOptions = {},
  ): Promise<WorkerSnapshot> {
    return this.waitFor(() => this.workers.find((w) => w.connected && pred(w)), {
      ...opts,
      description: 'a matching worker',
    });
  }

  /** Resolves with the first job matching `pred` (any job by default). */
  waitForJob(
    pred: (j: JobSnapshot) => boolean = () => true,
    opts: WaitOptions = {},
  ): Promise<JobSnapshot> {
    return this.waitFor(() => this.jobs.find(pred), { ...opts, description: 'a matching job' });
  }

  /** Resolves when job `jobId` has (one of) the given status(es). */
  waitForJobStatus(
    jobId: string,
    status: JobStatusName | readonly JobStatusName[],
    opts: WaitOptions = {},
  ): Promise<JobSnapshot> {
    const wanted: readonly JobStatusName[] = typeof status === 'string' ? [status] : status;
    return this.waitFor(
      () => {
        const j = this.job(jobId);
        return j !== undefined && wanted.includes(j.status) ? j : undefined;
      },
      { ...opts, description: `job ${jobId} to be ${wanted.join('|')}` },
    );
  }

  /** Closes every socket and the server, rejects pending waits, clears every timer. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────

  private async shutdown(): Promise<void> {
    this.dispatcher.close();
    this.waits.close();
    this.log.silence();
    for (const c of this.conns) {
      c.dispose();
      c.kill('emulator closed');
    }
    for (const ws of this.wss.clients) ws.terminate();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => {
      this.wss.close(() => this.server.close(() => resolve()));
    });
    // Sockets closed above still fire 'close' callbacks; make sure none left a timer behind.
    for (const c of this.conns) c.dispose();
  }

  private timeout(opts: WaitOptions): number {
    return opts.timeoutMs ?? this.opts.defaultWaitMs;
  }

  private entry(workerId: string): WorkerEntry {
    const e = this.workerEntries.get(workerId);
    if (e === undefined) throw new AgentStateError(`emulator has no worker ${workerId}`);
    return e;
  }

  private workerSnapshot({ state: w, conn }: WorkerEntry): WorkerSnapshot {
    return {
      id: w.id,
      connectionId: conn.id,
      agentName: w.agentName,
      namespace: w.namespace,
      type: w.type,
      version: w.version,
      deployment: w.deployment,
      protocol: conn.protocol,
      apiKey: conn.apiKey,
      permissions: { ...w.permissions },
      status: w.status,
      load: w.load,
      jobCount: w.jobCount,
      runningJobs: [...w.runningJobs],
      connected: !conn.closed,
      jsonMode: conn.jsonMode,
      stalled: conn.stalled,
    };
  }

  protected emit(input: EventInput): void {
    this.log.emit(input);
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const isUpgrade = (req.headers.upgrade ?? '').toLowerCase() === 'websocket';
    const d = decideAgentRequest(req, this.keys, isUpgrade);
    if (!d.ok || this.closing !== undefined) {
      const status = d.ok ? 404 : d.status;
      const reason = d.ok ? 'emulator closed' : d.reason;
      this.emit({ type: 'http-refused', status, path: d.ok ? '/agent' : d.path, reason });
      socket.end(rawHttpResponse(status, reason));
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (this.closing !== undefined) {
        ws.terminate();
        return;
      }
      const conn = new WorkerConnection(ws, this.host(), {
        id: `conn-${++this.connSeq}`,
        apiKey: d.apiKey,
        protocol: d.protocol,
      });
      this.conns.add(conn);
      this.emit({
        type: 'connection-opened',
        connectionId: conn.id,
        apiKey: d.apiKey,
        protocol: d.protocol,
      });
    });
  }

  private host(): ConnectionHost {
    return {
      registerTimeoutMs: this.opts.registerTimeoutMs,
      pingIntervalMs: this.opts.pingIntervalMs,
      emit: (e) => this.emit(e),
      onMessage: (conn, msg) =>
        handleWorkerMessage(conn, msg, {
          dispatcher: this.dispatcher,
          emit: (e) => this.emit(e),
          serverInfo: { nodeId: this.nodeId, region: this.opts.region },
          onRegistered: (state) => {
            this.workerEntries.set(state.id, { state, conn });
            this.emit({ type: 'worker-registered', worker: this.workerSnapshot({ state, conn }) });
          },
        }),
      onClose: (conn, code) => {
        this.conns.delete(conn);
        const forgotten = conn.worker ? this.dispatcher.onWorkerClosed(conn.worker) : [];
        this.emit({
          type: 'worker-disconnected',
          connectionId: conn.id,
          workerId: conn.worker?.id,
          code,
          forgottenJobs: forgotten,
        });
      },
    };
  }
}

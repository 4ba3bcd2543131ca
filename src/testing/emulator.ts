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
import type { ServerMessage } from '@livekit/protocol';
import { AccessToken } from 'livekit-server-sdk';
import { AgentStateError } from '../errors.ts';
import type { ConnectionHost, EventInput, WorkerConnection, WorkerState } from './connection.ts';
import { Dispatcher } from './dispatcher.ts';
import { AgentEndpoint } from './endpoint.ts';
import { handleWorkerMessage } from './handlers.ts';
import { jobSnapshot } from './job-records.ts';
import { guid } from './tokens.ts';
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

  private readonly opts: Required<Omit<EmulatorOptions, 'keys' | 'nodeId'>>;
  private readonly endpoint: AgentEndpoint;
  protected readonly dispatcher: Dispatcher;
  private readonly workerEntries = new Map<string, WorkerEntry>();
  private readonly waits = new Waits(() => this.log.describeRecent());
  private readonly log: EventLog;
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
      connections: () =>
        [...this.endpoint.conns].filter((c) => c.worker !== undefined && !c.closed),
      secretOf: (apiKey) => keys[apiKey] ?? '',
      targetLoad: opts.targetLoad,
      availabilityTimeoutMs: opts.availabilityTimeoutMs,
      jobLinkDelayMs: opts.jobLinkDelayMs,
      simulateJobTimeoutMs: opts.simulateJobTimeoutMs,
      random,
    });
    this.apiKey = first[0];
    this.apiSecret = first[1];
    this.nodeId = options.nodeId ?? guid('ND_');
    this.opts = opts;
    this.log = new EventLog(opts.maxEvents, () => this.waits.poke());
    this.endpoint = new AgentEndpoint({ ...keys }, (e) => this.emit(e), this.connectionHost());
  }

  /** @internal Binds the port; called by {@link startEmulator}. */
  listen(): Promise<void> {
    return this.endpoint.listen();
  }

  /** `ws://127.0.0.1:PORT` — the LiveKit URL to give a worker (it appends `/agent`). */
  get url(): string {
    return this.endpoint.url;
  }

  /** Every registered worker, connected or not, in registration order. */
  get workers(): WorkerSnapshot[] {
    return [...this.workerEntries.values()].map((e) => this.workerSnapshot(e));
  }

  /** Every job created so far, in creation order. */
  get jobs(): JobSnapshot[] {
    return [...this.dispatcher.jobs.values()].map(jobSnapshot);
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
    return j && jobSnapshot(j);
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
    await this.endpoint.close();
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

  /** What the emulator does with its connections' messages and closes. */
  private connectionHost(): ConnectionHost {
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

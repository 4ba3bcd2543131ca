/**
 * `JobContext`: what a job's `entrypointFnc(ctx)` receives inside its own process. It owns the
 * job's `Room`, knows how the job may end (shutdown, room disconnect, publisher leaving) and
 * collects the shutdown callbacks; the job runtime (`runtime.ts`) decides when the job ends and
 * tears it down.
 */
import { withDeadline } from '../clock.ts';
import type { ParticipantInfo } from '@livekit/protocol';
import { Job, JobType } from './livekit-protocol.ts';
import {
  DisconnectReason,
  ParticipantKind,
  Room,
  RoomEvent,
  type RemoteParticipant,
} from '@livekit/rtc-node';
import { JobError } from '../errors.ts';
import type { JobProcess } from './process.ts';
import type { JobOutcome, RunningJobInfo } from '../../machines/jobProcess.contract.ts';
import type { JobRecoveryInfo } from '../../machines/jobRequest.contract.ts';
import type { JsonValue } from '@bufbuild/protobuf';

/** The largest checkpoint `ctx.checkpoint()` takes: its JSON text, in UTF-8 bytes. */
export const MAX_CHECKPOINT_BYTES = 64 * 1024;

/** How a job ended: `success` unless the entrypoint threw. */
export interface JobEnd {
  outcome: JobOutcome;
  reason: string;
}

/** A function run when the job ends; receives the end reason. */
export type ShutdownCallback = (reason: string) => void | Promise<void>;

export interface ConnectOptions {
  /** Subscribe to every published track automatically. Default `true`. */
  autoSubscribe?: boolean;
}

export interface WaitForParticipantOptions {
  /** Give up after this many milliseconds (rejects with a `JobError`). Default: no deadline besides the job's end. */
  timeout?: number;
  /** Give up when this signal aborts. */
  signal?: AbortSignal;
}

/** What the runtime gives a context: the job, its process, and where to say that the job should end. */
export interface JobContextInit {
  info: RunningJobInfo;
  proc: JobProcess;
  /** Called (possibly more than once; the first call wins) when something ends the job. */
  onEnd: (end: JobEnd) => void;
  /** Resolves when the job has ended, so pending waits can give up. */
  ended: Promise<JobEnd>;
  /** For tests: a room stand-in. */
  room?: Room;
  /** Where `ctx.checkpoint()` sends its value (the worker's job journal). None: kept nowhere. */
  checkpoint?: (value: JsonValue) => void;
  /** Told when `connect()` starts (with the server URL); what it returns is told how it ended. */
  onConnect?: (url: string) => (error?: unknown) => void;
}

/** The end reason when the participant a job is for leaves, by job type (ROOM jobs have none). */
const TARGET_LEFT: Partial<Record<JobType, string>> = {
  [JobType.JT_PUBLISHER]: 'publisher left',
  [JobType.JT_PARTICIPANT]: 'participant left',
};

export class JobContext {
  /** This job's process, with whatever `prewarmFnc` put in `proc.userdata`. */
  readonly proc: JobProcess;
  /** What the worker launched this job with (token included; never log it). */
  readonly info: RunningJobInfo;

  readonly #onEnd: (end: JobEnd) => void;
  readonly #checkpoint: ((value: JsonValue) => void) | undefined;
  readonly #onConnect: JobContextInit['onConnect'];
  readonly #ended: Promise<JobEnd>;
  readonly #callbacks: ShutdownCallback[] = [];
  /** The connection in progress or made; `undefined` until `connect()` (or after it failed). */
  #connecting: Promise<void> | undefined;
  #detachRoom: (() => void) | undefined;
  // Built on first use, not in the constructor: the entrypoint is called as soon as the context
  // exists, and an agent that does other work before it reads the job or touches the room does
  // not wait ~0.3 ms for both to be built first.
  #job: Job | undefined;
  #room: Room | undefined;

  constructor(init: JobContextInit) {
    this.info = init.info;
    this.proc = init.proc;
    this.#room = init.room;
    this.#onEnd = init.onEnd;
    this.#ended = init.ended;
    this.#checkpoint = init.checkpoint;
    this.#onConnect = init.onConnect;
  }

  /**
   * Set when this job replaces one that ended abnormally (its process crashed or was killed, or
   * its worker died) and was dispatched again by job recovery: the previous job's id, this
   * attempt's number (2 for the first recovery), when the first attempt started, and the last
   * value it passed to `checkpoint()`. `undefined` on a first attempt.
   */
  get recovery(): Readonly<JobRecoveryInfo> | undefined {
    return this.info.acceptArguments.recovery;
  }

  /**
   * Stores a small JSON value (at most 64 KiB as JSON text) in the worker's job journal, so that
   * if this job ends abnormally, the job that recovers it finds it in `ctx.recovery.checkpoint`.
   * Each call replaces the last. Throws a `JobError` for a value that is not JSON or is too big;
   * the previous checkpoint is kept then.
   */
  checkpoint(value: unknown): void {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (cause) {
      throw new JobError('ctx.checkpoint: the value is not JSON-serialisable', { cause });
    }
    if (text === undefined) {
      throw new JobError('ctx.checkpoint: the value is not JSON-serialisable');
    }
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > MAX_CHECKPOINT_BYTES) {
      throw new JobError(
        `ctx.checkpoint: the value is ${bytes} bytes as JSON, over the limit of ${MAX_CHECKPOINT_BYTES}`,
      );
    }
    // What crosses the process boundary is the JSON's value (no class instances, no undefined).
    this.#checkpoint?.(JSON.parse(text) as JsonValue);
  }

  /** The job's room. Not connected until `connect()`; attach handlers before connecting if you need every event. */
  get room(): Room {
    return (this.#room ??= new Room());
  }

  /** The server's job description (room, participant for PUBLISHER jobs, metadata, …). */
  get job(): Job {
    return (this.#job ??= Job.fromJson(this.info.job, { ignoreUnknownFields: true }));
  }

  /** The id of this job. */
  get jobId(): string {
    return this.info.jobId;
  }

  /** The name of the job's room. */
  get roomName(): string {
    return this.job.room?.name ?? '';
  }

  /** The id of the worker that accepted the job. */
  get workerId(): string {
    return this.info.workerId;
  }

  /**
   * For PUBLISHER jobs, the participant the job is for: the live `RemoteParticipant` once the
   * room is connected and the participant is in it, else the server's `ParticipantInfo`.
   * `undefined` for ROOM jobs.
   */
  get publisher(): RemoteParticipant | ParticipantInfo | undefined {
    return this.participant;
  }

  /**
   * The participant the job is for (PARTICIPANT jobs: the one that joined; PUBLISHER jobs: the
   * publisher): the live `RemoteParticipant` once the room is connected and the participant is
   * in it, else the server's `ParticipantInfo` from the job (see `participantInfo`).
   * `undefined` for ROOM jobs.
   */
  get participant(): RemoteParticipant | ParticipantInfo | undefined {
    const info = this.job.participant;
    if (!info) return undefined;
    return this.room.remoteParticipants.get(info.identity) ?? info;
  }

  /**
   * The server's description of the participant the job is for, as it was when the job was
   * created (identity, name, metadata, attributes, kind). `undefined` for ROOM jobs.
   */
  get participantInfo(): ParticipantInfo | undefined {
    return this.job.participant;
  }

  /**
   * True once `connect()` was called (and has not failed). The runtime uses it: an entrypoint
   * that returns without ever connecting has nothing left to keep the job alive.
   */
  get connectionRequested(): boolean {
    return this.#connecting !== undefined;
  }

  /**
   * Joins the job's room with the assignment's URL and token. Idempotent: later calls return
   * the same connection. After it, a room disconnect ends the job (and, for PUBLISHER and
   * PARTICIPANT jobs, so does the participant it is for leaving).
   */
  connect(opts: ConnectOptions = {}): Promise<void> {
    if (this.#connecting) return this.#connecting;
    const connected = this.#onConnect?.(this.info.url);
    const attempt = this.#connect(opts.autoSubscribe ?? true);
    this.#connecting = attempt;
    if (connected) attempt.then(() => connected(), connected);
    // A failed attempt does not count as connected; the caller still gets the error.
    attempt.catch(() => {
      if (this.#connecting === attempt) this.#connecting = undefined;
    });
    return attempt;
  }

  async #connect(autoSubscribe: boolean): Promise<void> {
    this.#watchRoom();
    try {
      await this.room.connect(this.info.url, this.info.token, { autoSubscribe, dynacast: false });
    } catch (cause) {
      this.#detachRoom?.();
      throw new JobError(`could not connect to room ${JSON.stringify(this.roomName)}`, { cause });
    }
  }

  /**
   * Ends the job when the room goes away or, for PUBLISHER and PARTICIPANT jobs, when the
   * participant it is for leaves.
   */
  #watchRoom(): void {
    const onDisconnected = (reason: DisconnectReason) => {
      this.#onEnd({
        outcome: 'success',
        reason: `room disconnected (${DisconnectReason[reason] ?? reason})`,
      });
    };
    const leaving = TARGET_LEFT[this.job.type];
    const targetIdentity = leaving ? this.job.participant?.identity : undefined;
    const onParticipantLeft = (p: RemoteParticipant) => {
      if (leaving && targetIdentity !== undefined && p.identity === targetIdentity) {
        this.#onEnd({ outcome: 'success', reason: leaving });
      }
    };
    this.room.on(RoomEvent.Disconnected, onDisconnected);
    this.room.on(RoomEvent.ParticipantDisconnected, onParticipantLeft);
    this.#detachRoom = () => {
      this.room.off(RoomEvent.Disconnected, onDisconnected);
      this.room.off(RoomEvent.ParticipantDisconnected, onParticipantLeft);
      this.#detachRoom = undefined;
    };
  }

  /**
   * Resolves with the first remote participant (not another agent) in the room, or the one
   * with `identity`. Requires a connected room. Rejects when the room disconnects, the job
   * ends, the optional timeout passes or the signal aborts.
   */
  waitForParticipant(
    identity?: string,
    opts: WaitForParticipantOptions = {},
  ): Promise<RemoteParticipant> {
    if (!this.room.isConnected) {
      return Promise.reject(new JobError('room is not connected: await ctx.connect() first'));
    }
    const matches = (p: RemoteParticipant) =>
      identity === undefined ? p.kind !== ParticipantKind.AGENT : p.identity === identity;
    for (const p of this.room.remoteParticipants.values()) {
      if (matches(p)) return Promise.resolve(p);
    }
    return new Promise<RemoteParticipant>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      const cleanup = () => {
        this.room.off(RoomEvent.ParticipantConnected, onJoined);
        this.room.off(RoomEvent.Disconnected, onDisconnected);
        opts.signal?.removeEventListener('abort', onAbort);
        if (timer) clearTimeout(timer);
        settled = true; // makes the `ended` continuation below a no-op
      };
      const fail = (message: string) => {
        cleanup();
        reject(new JobError(message));
      };
      const onJoined = (p: RemoteParticipant) => {
        if (!matches(p)) return;
        cleanup();
        resolve(p);
      };
      const onDisconnected = () => fail('room disconnected while waiting for a participant');
      const onAbort = () => fail('waiting for a participant was aborted');
      if (opts.signal?.aborted) return onAbort();
      this.room.on(RoomEvent.ParticipantConnected, onJoined);
      this.room.on(RoomEvent.Disconnected, onDisconnected);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.timeout !== undefined) {
        timer = setTimeout(
          () => fail(`no participant joined within ${opts.timeout} ms`),
          opts.timeout,
        );
      }
      void this.#ended.then(() => {
        if (!settled) fail('the job ended while waiting for a participant');
      });
    });
  }

  /**
   * Runs `fn(reason)` when the job ends, however it ends (also when the entrypoint threw),
   * before the room is left. Callbacks run side by side, each with its own time budget.
   */
  addShutdownCallback(fn: ShutdownCallback): void {
    if (typeof fn !== 'function') throw new JobError('addShutdownCallback expects a function');
    this.#callbacks.push(fn);
  }

  /** The registered callbacks, in order (for the runtime). */
  get shutdownCallbacks(): readonly ShutdownCallback[] {
    return this.#callbacks;
  }

  /**
   * Ends the job (successfully): shutdown callbacks run, the room is left, and the process exits
   * (or, with `jobsPerProcess` above 1, may take the next job).
   */
  shutdown(reason = 'shutdown requested by the job'): void {
    this.#onEnd({ outcome: 'success', reason });
  }

  /**
   * Leaves the room (if connected) within `budgetMs`, and stops watching it. For the runtime.
   * False when the disconnect failed or overran the budget (the process is then not reused).
   */
  async leaveRoom(budgetMs: number): Promise<boolean> {
    this.#detachRoom?.();
    if (!this.#connecting) return true;
    return withDeadline(this.room.disconnect(), budgetMs, 'leaving the room').then(
      () => true,
      () => false,
    );
  }
}

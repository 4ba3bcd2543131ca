/**
 * One worker socket, server side: framing (binary protobuf, or proto3 JSON after a text frame,
 * as `wsprotocol.go` does), the register deadline, WebSocket ping control frames, and the
 * faults tests inject (stall, raw frames, abrupt drop). Protocol decisions live in the emulator.
 */
import { ServerMessage, WorkerMessage } from '@livekit/protocol';
import type { JobType } from '@livekit/protocol';
import type { WebSocket } from 'ws';
import type { EmulatorEvent, JobKind, WorkerPermissionsSnapshot } from './types.ts';

/** An event before the emulator stamps `seq` and `at`. */
export type EventInput = EmulatorEvent extends infer T
  ? T extends EmulatorEvent
    ? Omit<T, 'seq' | 'at'>
    : never
  : never;

/** Server-side state of a registered worker. */
export interface WorkerState {
  id: string;
  agentName: string;
  namespace: string | undefined;
  type: JobKind;
  jobType: JobType;
  version: string;
  deployment: string;
  permissions: WorkerPermissionsSnapshot;
  status: 'available' | 'full';
  load: number;
  jobCount: number;
  /** Jobs assigned to this worker and not ended (the server's `runningJobs`). */
  runningJobs: Set<string>;
  /** Availability requests waiting for this worker's answer, by job id. */
  pending: Map<string, (answer: WorkerMessage['message'] | 'closed') => void>;
}

/** What a connection needs from the emulator. */
export interface ConnectionHost {
  readonly registerTimeoutMs: number;
  readonly pingIntervalMs: number;
  emit(event: EventInput): void;
  /** Handles one decoded message; throwing {@link ProtocolViolation} closes the socket. */
  onMessage(conn: WorkerConnection, msg: WorkerMessage): void;
  onClose(conn: WorkerConnection, code: number): void;
}

/** A message the server answers by closing the connection without a reply. */
export class ProtocolViolation extends Error {
  override name = 'ProtocolViolation';
}

export class WorkerConnection {
  readonly id: string;
  readonly apiKey: string;
  readonly protocol: number;
  worker: WorkerState | undefined;
  jsonMode = false;
  closed = false;
  private stallTimer: NodeJS.Timeout | undefined;
  private readonly queued: (Uint8Array | string)[] = [];
  private registerTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly host: ConnectionHost,
    init: { id: string; apiKey: string; protocol: number },
  ) {
    this.id = init.id;
    this.apiKey = init.apiKey;
    this.protocol = init.protocol;
    ws.on('message', (data: Buffer, isBinary: boolean) => this.receive(data, isBinary));
    ws.on('close', (code: number) => this.handleClose(code));
    // A socket error is always followed by 'close'; the listener only keeps it from throwing.
    ws.on('error', () => undefined);
    this.registerTimer = setTimeout(
      () => this.kill('no register within the register deadline'),
      host.registerTimeoutMs,
    );
    if (host.pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => {
        if (this.stallTimer === undefined && !this.closed) this.ws.ping();
      }, host.pingIntervalMs);
    }
  }

  get stalled(): boolean {
    return this.stallTimer !== undefined;
  }

  /** Registration succeeded: the server clears the read deadline. */
  registered(worker: WorkerState): void {
    this.worker = worker;
    clearTimeout(this.registerTimer);
    this.registerTimer = undefined;
  }

  /** Sends a server message in the connection's current framing (JSON after a text frame). */
  send(msg: ServerMessage): void {
    if (this.closed) return;
    const kase = msg.message.case ?? 'empty';
    this.host.emit({
      type: 'message-sent',
      connectionId: this.id,
      workerId: this.worker?.id,
      case: kase,
      json: this.jsonMode,
    });
    this.write(this.jsonMode ? msg.toJsonString() : msg.toBinary());
  }

  /** Sends bytes (binary frame) or a string (text frame) untouched. */
  sendRaw(frame: Uint8Array | string): void {
    if (!this.closed) this.write(frame);
  }

  /** Stops reading and writing for `ms`; writes are queued and flushed in order afterwards. */
  stall(ms: number): void {
    if (this.closed) return;
    clearTimeout(this.stallTimer);
    this.ws.pause();
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      if (this.closed) return;
      this.ws.resume();
      for (const frame of this.queued.splice(0)) this.write(frame);
    }, ms);
  }

  /**
   * Closes the TCP connection without a close frame, as the server does on any handling error;
   * a `ws` client sees code 1006.
   */
  kill(reason: string): void {
    if (this.closed) return;
    this.host.emit({
      type: 'connection-closed-by-server',
      connectionId: this.id,
      workerId: this.worker?.id,
      reason,
    });
    this.ws.terminate();
  }

  /** Clears every timer; used by close paths. */
  dispose(): void {
    clearTimeout(this.registerTimer);
    clearTimeout(this.stallTimer);
    clearInterval(this.pingTimer);
    this.registerTimer = this.stallTimer = this.pingTimer = undefined;
    this.queued.length = 0;
  }

  private write(frame: Uint8Array | string): void {
    if (this.stallTimer !== undefined) {
      this.queued.push(frame);
      return;
    }
    // A failed write surfaces as 'close'; nothing else to do here.
    this.ws.send(frame, { binary: typeof frame !== 'string' }, () => undefined);
  }

  private receive(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    let msg: WorkerMessage;
    try {
      // The framing of the last frame decides the reply framing, both ways.
      this.jsonMode = !isBinary;
      msg = isBinary
        ? WorkerMessage.fromBinary(data)
        : WorkerMessage.fromJsonString(data.toString());
    } catch {
      this.emitReceived('malformed');
      this.kill('malformed frame');
      return;
    }
    this.emitReceived(msg.message.case ?? 'empty');
    try {
      this.host.onMessage(this, msg);
    } catch (err) {
      if (!(err instanceof ProtocolViolation)) throw err;
      this.kill(err.message);
    }
  }

  private emitReceived(kase: string): void {
    this.host.emit({
      type: 'message-received',
      connectionId: this.id,
      workerId: this.worker?.id,
      case: kase,
      json: this.jsonMode,
    });
  }

  private handleClose(code: number): void {
    if (this.closed) return;
    this.closed = true;
    this.dispose();
    this.host.onClose(this, code);
  }
}

/**
 * Public types of the agent-dispatch emulator: options, snapshots of workers/jobs/rooms, and
 * the events it records. Snapshots are plain frozen-in-time objects: reading them never races
 * with the emulator, and asserting on them in tests gives readable diffs.
 */

/** Which kind of job a worker takes; mirrors `livekit.JobType` with readable names. */
export type JobKind = 'room' | 'publisher' | 'participant';

/**
 * Lifecycle of a job as the emulator's server side sees it.
 * - `pending`: an `AvailabilityRequest` is out (or about to be) and no worker has accepted yet;
 * - `running`: a worker accepted and got its `JobAssignment`;
 * - `success` / `failed`: ended by `UpdateJobStatus`, by a termination, or by `terminate: true`;
 * - `lost`: the availability budget ran out (the real server drops the job the same way);
 * - `rejected`: every candidate worker declined (or left) and none was left to ask.
 */
export type JobStatusName = 'pending' | 'running' | 'success' | 'failed' | 'lost' | 'rejected';

/** Options of {@link startEmulator}. Every duration is in milliseconds. */
export interface EmulatorOptions {
  /** API keys the server accepts (`key → secret`). Default `{ devkey: 'secret' }` like `--dev`. */
  keys?: Record<string, string>;
  /** How long a new connection has to send `register`. Default 10 000 (server `RegisterTimeout`). */
  registerTimeoutMs?: number;
  /**
   * How long one job may wait for an accepting `AvailabilityResponse`, across all the workers it
   * is offered to. Default 3 000: the real server's psrpc client timeout, not the nominal 10 s.
   */
  availabilityTimeoutMs?: number;
  /**
   * How long after an assignment the room learns which agent participant runs the job. The real
   * server links them only when its whole `LaunchJob` returns, which takes up to ~5 s while its
   * agent-name cache is cold (it is dropped on every worker registration) and ~0 when warm
   * (test/e2e/SERVER-FACTS.md). Until then the agent leaving sends no termination, and a deleted
   * dispatch's termination waits for the link. Default 0: linked at assignment.
   */
  jobLinkDelayMs?: number;
  /** Budget of a `SimulateJobRequest` job (the server uses the nominal 10 s there). Default 10 000. */
  simulateJobTimeoutMs?: number;
  /** Interval of WebSocket ping control frames; `0` disables them. Default 10 000. */
  pingIntervalMs?: number;
  /** `agents.target_load`: the affinity threshold below which a worker counts as having room. Default 0.7. */
  targetLoad?: number;
  /** Deadline of `waitFor*` helpers when none is given. Default 5 000. */
  defaultWaitMs?: number;
  /** Random source for the weighted worker choice, in [0, 1). Default `Math.random`. */
  random?: () => number;
  /** `ServerInfo.nodeId`. Default a fresh `ND_…` id. */
  nodeId?: string;
  /** `ServerInfo.region`. Default empty, as a server without `--region`. */
  region?: string;
  /** Keep at most this many events in {@link Emulator.events} (oldest dropped). Default 10 000. */
  maxEvents?: number;
}

/** The permissions a worker registered with (defaults filled in as the server does). */
export interface WorkerPermissionsSnapshot {
  canSubscribe: boolean;
  canPublish: boolean;
  canPublishData: boolean;
  canUpdateMetadata: boolean;
  canSubscribeMetrics: boolean;
  hidden: boolean;
  agent: boolean;
}

/** A registered worker, connected or not (disconnected workers stay listed with `connected: false`). */
export interface WorkerSnapshot {
  /** `AW_…`, as sent in `RegisterWorkerResponse.workerId`. */
  id: string;
  /** Id of the socket, also used in events before registration. */
  connectionId: string;
  agentName: string;
  namespace: string | undefined;
  type: JobKind;
  version: string;
  deployment: string;
  /** `?protocol=` of the upgrade request (default 1). */
  protocol: number;
  /** API key of the worker's JWT; job tokens are signed with it. */
  apiKey: string;
  permissions: WorkerPermissionsSnapshot;
  /** Last reported status (initially `available`, like the server's zero value). */
  status: 'available' | 'full';
  /** Last reported load (initially 0; every `updateWorker` overwrites it). */
  load: number;
  /** Last reported `jobCount` (the server ignores it; recorded for assertions). */
  jobCount: number;
  /** Ids of jobs the server considers running on this worker. */
  runningJobs: string[];
  connected: boolean;
  /** True while the worker speaks proto3 JSON text frames. */
  jsonMode: boolean;
  /** True while {@link Emulator.stallWorker} holds the socket. */
  stalled: boolean;
}

/** What a worker answered when it accepted a job. */
export interface JobAcceptSnapshot {
  identity: string;
  name: string;
  metadata: string;
  attributes: Record<string, string>;
  supportsResume: boolean;
}

/** A job the emulator created and offered to at least one worker. */
export interface JobSnapshot {
  /** `AJ_…` */
  id: string;
  /** `AD_…` of the dispatch that launched it (empty for simulated jobs). */
  dispatchId: string;
  type: JobKind;
  room: string;
  agentName: string;
  namespace: string;
  deployment: string;
  /** Dispatch metadata, as carried in `Job.metadata`. */
  metadata: string;
  /** Identity of the target participant (`job.participant`) for publisher/participant jobs. */
  participant: string | undefined;
  /** Identity the accepting worker chose for its agent (`JobState.participantIdentity`). */
  participantIdentity: string | undefined;
  /** Worker last asked, and once accepted, the worker running it. */
  workerId: string | undefined;
  status: JobStatusName;
  /** Error reported by the worker (`UpdateJobStatus.error`) or set by the server on termination. */
  error: string;
  /** The accepting `AvailabilityResponse`, if any. */
  accept: JobAcceptSnapshot | undefined;
  /** Worker ids asked, in order. */
  tries: string[];
  /**
   * True once the room knows the job's agent participant (`jobLinkDelayMs` after assignment):
   * only then does that participant leaving terminate the job.
   */
  linked: boolean;
  /** The job token of the assignment (HS256, signed with the worker's API key). */
  token: string | undefined;
  /** Created by the worker's `SimulateJobRequest`. */
  simulated: boolean;
  createdAt: number;
  endedAt: number | undefined;
}

/** A participant of an emulated room. */
export interface ParticipantSnapshot {
  identity: string;
  sid: string;
  /** Participant kind; `agent` and `egress` never trigger jobs. */
  kind: ParticipantKindName;
  published: boolean;
}

export type ParticipantKindName =
  'standard' | 'ingress' | 'egress' | 'sip' | 'agent' | 'connector' | 'bridge';

/** An agent dispatch (`AD_…`) of a room. */
export interface DispatchSnapshot {
  id: string;
  room: string;
  agentName: string;
  metadata: string;
  deployment: string;
  attributes: Record<string, string>;
  /** Jobs launched for this dispatch so far. */
  jobIds: string[];
}

/** An emulated room. */
export interface RoomSnapshot {
  name: string;
  sid: string;
  metadata: string;
  dispatches: DispatchSnapshot[];
  participants: ParticipantSnapshot[];
}

/** Why a dispatch produced no job (the real server only logs these). */
export type NotDispatchedReason =
  /** No connected worker is registered with the dispatch's key when the trigger fires. */
  | 'no-worker'
  /** Every matching worker is full or at/above the target load (affinity 0). */
  | 'no-capacity';

/** Why the server sent a `JobTermination`. */
export type TerminationReason =
  /** `DeleteDispatch` or {@link Emulator.terminateJob}; the server records `JS_SUCCESS`. */
  | 'requested'
  /** The agent participant left the room; the server records `JS_FAILED`. */
  | 'agent-left';

type E<T extends string, P> = { type: T; seq: number; at: number } & P;

/**
 * Everything the emulator observed or did, in order. `seq` increases by one per event; `at`
 * is `Date.now()` when it happened.
 */
export type EmulatorEvent =
  | E<'http-refused', { status: 401 | 404; path: string; reason: string }>
  | E<'connection-opened', { connectionId: string; apiKey: string; protocol: number }>
  | E<
      'message-received',
      {
        connectionId: string;
        workerId: string | undefined;
        /** Decoded oneof case; `empty` for an unset oneof, `malformed` when decoding failed. */
        case: string;
        json: boolean;
      }
    >
  | E<
      'message-sent',
      { connectionId: string; workerId: string | undefined; case: string; json: boolean }
    >
  | E<'worker-registered', { worker: WorkerSnapshot }>
  | E<
      'connection-closed-by-server',
      { connectionId: string; workerId: string | undefined; reason: string }
    >
  | E<
      'worker-disconnected',
      { connectionId: string; workerId: string | undefined; code: number; forgottenJobs: string[] }
    >
  | E<'worker-updated', { workerId: string; status: 'available' | 'full'; load: number }>
  | E<'room-created', { room: string }>
  | E<'dispatch-created', { dispatch: DispatchSnapshot }>
  | E<'dispatch-deleted', { dispatch: DispatchSnapshot }>
  | E<'participant-joined', { room: string; identity: string; kind: ParticipantKindName }>
  | E<'track-published', { room: string; identity: string; first: boolean }>
  | E<'participant-left', { room: string; identity: string }>
  | E<
      'job-not-dispatched',
      {
        room: string;
        agentName: string;
        jobType: JobKind;
        participant: string | undefined;
        reason: NotDispatchedReason;
      }
    >
  | E<'job-created', { job: JobSnapshot }>
  | E<'availability-sent', { jobId: string; workerId: string }>
  | E<
      'availability-answered',
      { jobId: string; workerId: string; available: boolean; terminate: boolean }
    >
  | E<'availability-timed-out', { jobId: string; workerId: string }>
  /** An `AvailabilityResponse` for a job the worker is not being asked about (late or bogus). */
  | E<'availability-ignored', { jobId: string; workerId: string }>
  | E<'job-assigned', { jobId: string; workerId: string; participantIdentity: string }>
  /** The room now links the job's agent participant to the job (see `jobLinkDelayMs`). */
  | E<'job-linked', { jobId: string; room: string; participantIdentity: string }>
  | E<
      'job-status',
      { jobId: string; workerId: string | undefined; status: JobStatusName; error: string }
    >
  /** An `UpdateJobStatus` for a job not running on that worker; the server only logs it. */
  | E<'job-update-ignored', { jobId: string; workerId: string }>
  | E<'job-terminated', { jobId: string; workerId: string; reason: TerminationReason }>;

/** The `type` of an {@link EmulatorEvent}. */
export type EmulatorEventType = EmulatorEvent['type'];

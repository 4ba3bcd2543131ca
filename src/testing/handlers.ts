/**
 * What the server does with each `WorkerMessage`, before and after registration
 * (`pkg/agent/worker.go` of livekit-server v1.13.5). Anything the server does not handle
 * throws {@link ProtocolViolation}, which closes the socket without a reply.
 */
import {
  JobType,
  RegisterWorkerResponse,
  ServerInfo,
  ServerInfo_Edition,
  ServerMessage,
  WorkerPong,
  WorkerStatus,
} from '@livekit/protocol';
import type { RegisterWorkerRequest, WorkerMessage, WorkerPing } from '@livekit/protocol';
import { ProtocolViolation } from './connection.ts';
import type { EventInput, WorkerConnection, WorkerState } from './connection.ts';
import type { Dispatcher } from './dispatcher.ts';
import { guid } from './tokens.ts';
import type { JobKind, WorkerPermissionsSnapshot } from './types.ts';

/** `ServerInfo.version` / `protocol` / `agentProtocol` of livekit-server v1.13.5. */
export const SERVER_VERSION = '1.13.5';
export const SIGNAL_PROTOCOL = 17;
export const AGENT_PROTOCOL = 1;

export interface HandlerContext {
  dispatcher: Dispatcher;
  emit(event: EventInput): void;
  serverInfo: { nodeId: string; region: string };
  onRegistered(state: WorkerState): void;
}

const KIND_OF: Partial<Record<JobType, JobKind>> = {
  [JobType.JT_ROOM]: 'room',
  [JobType.JT_PUBLISHER]: 'publisher',
  [JobType.JT_PARTICIPANT]: 'participant',
};

export function handleWorkerMessage(
  conn: WorkerConnection,
  msg: WorkerMessage,
  ctx: HandlerContext,
): void {
  const m = msg.message;
  const worker = conn.worker;
  if (worker === undefined) {
    // Before registration the server only embeds the ping handler next to register.
    if (m.case === 'register') return register(conn, m.value, ctx);
    if (m.case === 'ping') return pong(conn, m.value);
    if (m.case === undefined) throw new ProtocolViolation('unknown worker signal');
    throw new ProtocolViolation(`unimplemented worker signal before register: ${m.case}`);
  }
  switch (m.case) {
    case 'ping':
      return pong(conn, m.value);
    case 'availability':
      return ctx.dispatcher.onAvailability(conn, m.value);
    case 'updateWorker': {
      const u = m.value;
      // Status only when present; load always (so a status-only update resets load to 0).
      if (u.status !== undefined)
        worker.status = u.status === WorkerStatus.WS_FULL ? 'full' : 'available';
      worker.load = u.load;
      worker.jobCount = u.jobCount;
      ctx.emit({
        type: 'worker-updated',
        workerId: worker.id,
        status: worker.status,
        load: worker.load,
      });
      return;
    }
    case 'updateJob':
      return ctx.dispatcher.onUpdateJob(conn, m.value);
    case 'simulateJob':
      return ctx.dispatcher.simulate(conn, m.value);
    case 'migrateJob':
      // Not implemented in OSS: accepted and ignored.
      return;
    case 'register':
      throw new ProtocolViolation('unimplemented worker signal: second register');
    case undefined:
      throw new ProtocolViolation('unknown worker signal');
  }
}

function pong(conn: WorkerConnection, ping: WorkerPing): void {
  conn.send(
    new ServerMessage({
      message: {
        case: 'pong',
        value: new WorkerPong({ lastTimestamp: ping.timestamp, timestamp: BigInt(Date.now()) }),
      },
    }),
  );
}

/** `ValidateDeployment`: empty, or ≤ 64 bytes with no `_`, no control/space byte, no DEL. */
export function isValidDeployment(deployment: string): boolean {
  const bytes = Buffer.from(deployment, 'utf8');
  if (bytes.length > 64) return false;
  return bytes.every((b) => b > 0x20 && b !== 0x7f && b !== 0x5f);
}

function register(conn: WorkerConnection, req: RegisterWorkerRequest, ctx: HandlerContext): void {
  const type = KIND_OF[req.type];
  if (type === undefined)
    throw new ProtocolViolation(`invalid register: unknown job type ${req.type}`);
  if (!isValidDeployment(req.deployment)) {
    throw new ProtocolViolation(
      `invalid register: bad deployment ${JSON.stringify(req.deployment)}`,
    );
  }
  const p = req.allowedPermissions;
  const permissions: WorkerPermissionsSnapshot = p
    ? {
        canSubscribe: p.canSubscribe,
        canPublish: p.canPublish,
        canPublishData: p.canPublishData,
        canUpdateMetadata: p.canUpdateMetadata,
        canSubscribeMetrics: p.canSubscribeMetrics,
        hidden: p.hidden,
        agent: p.agent,
      }
    : // The server's defaults when the worker sends none.
      {
        canSubscribe: true,
        canPublish: true,
        canPublishData: true,
        canUpdateMetadata: true,
        canSubscribeMetrics: false,
        hidden: false,
        agent: false,
      };
  const state: WorkerState = {
    id: guid('AW_'),
    agentName: req.agentName,
    namespace: req.namespace,
    type,
    jobType: req.type,
    version: req.version,
    deployment: req.deployment,
    permissions,
    // Zero values: a worker is dispatchable before its first status update.
    status: 'available',
    load: 0,
    jobCount: 0,
    runningJobs: new Set(),
    pending: new Map(),
  };
  conn.registered(state);
  conn.send(
    new ServerMessage({
      message: {
        case: 'register',
        value: new RegisterWorkerResponse({
          workerId: state.id,
          serverInfo: new ServerInfo({
            edition: ServerInfo_Edition.Standard,
            version: SERVER_VERSION,
            protocol: SIGNAL_PROTOCOL,
            agentProtocol: AGENT_PROTOCOL,
            region: ctx.serverInfo.region,
            nodeId: ctx.serverInfo.nodeId,
          }),
        }),
      },
    }),
  );
  ctx.onRegistered(state);
}

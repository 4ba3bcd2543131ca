/**
 * Translation between the chart's vocabulary and `@livekit/protocol` messages, in both
 * directions. Pure functions; the socket lives in `server-link.ts`.
 */
import {
  JobStatus,
  JobType,
  ParticipantPermission,
  ServerMessage,
  TrackSource,
  UpdateJobStatus,
  UpdateWorkerStatus,
  WorkerMessage,
  WorkerStatus,
  AvailabilityResponse,
  RegisterWorkerRequest,
  SimulateJobRequest,
  Room,
  ParticipantInfo,
} from '@livekit/protocol';
import type { ServerLinkCommand, ServerLinkReport } from '../../machines/serverLink.contract.ts';
import {
  WorkerType,
  type WorkerPermissions,
  type TrackSourceName,
} from '../options/worker-options.ts';

export interface RegistrationFields {
  workerType: WorkerType;
  agentName: string;
  version: string;
  permissions: WorkerPermissions;
  deployment: string;
}

/** The protocol's job type for each worker type. */
export const JOB_TYPES: Record<WorkerType, JobType> = {
  [WorkerType.ROOM]: JobType.JT_ROOM,
  [WorkerType.PUBLISHER]: JobType.JT_PUBLISHER,
  [WorkerType.PARTICIPANT]: JobType.JT_PARTICIPANT,
};

const SOURCES: Record<TrackSourceName, TrackSource> = {
  camera: TrackSource.CAMERA,
  microphone: TrackSource.MICROPHONE,
  screen_share: TrackSource.SCREEN_SHARE,
  screen_share_audio: TrackSource.SCREEN_SHARE_AUDIO,
};

export function registerMessage(f: RegistrationFields): WorkerMessage {
  return new WorkerMessage({
    message: {
      case: 'register',
      value: new RegisterWorkerRequest({
        type: JOB_TYPES[f.workerType],
        agentName: f.agentName,
        version: f.version,
        deployment: f.deployment,
        allowedPermissions: new ParticipantPermission({
          canPublish: f.permissions.canPublish,
          canSubscribe: f.permissions.canSubscribe,
          canPublishData: f.permissions.canPublishData,
          canUpdateMetadata: f.permissions.canUpdateMetadata,
          canPublishSources: f.permissions.canPublishSources.map((s) => SOURCES[s]),
          hidden: f.permissions.hidden,
          agent: true,
        }),
      }),
    },
  });
}

/** The wire message for a chart command, or `undefined` for commands that are not messages. */
export function commandMessage(cmd: ServerLinkCommand): WorkerMessage | undefined {
  switch (cmd.type) {
    case 'AVAILABILITY_ANSWERED': {
      const a = cmd.acceptArguments;
      return new WorkerMessage({
        message: {
          case: 'availability',
          value: new AvailabilityResponse({
            jobId: cmd.jobId,
            available: a !== undefined,
            ...(a
              ? {
                  participantIdentity: a.identity,
                  participantName: a.name,
                  participantMetadata: a.metadata,
                  participantAttributes: a.attributes,
                }
              : {}),
          }),
        },
      });
    }
    case 'WORKER_STATUS_REPORTED':
      return new WorkerMessage({
        message: {
          case: 'updateWorker',
          value: new UpdateWorkerStatus({
            status: cmd.status === 'available' ? WorkerStatus.WS_AVAILABLE : WorkerStatus.WS_FULL,
            load: cmd.load,
            jobCount: cmd.jobCount,
          }),
        },
      });
    case 'JOB_STATUS_REPORTED':
      return new WorkerMessage({
        message: {
          case: 'updateJob',
          value: new UpdateJobStatus({
            jobId: cmd.jobId,
            status:
              cmd.outcome === 'running'
                ? JobStatus.JS_RUNNING
                : cmd.outcome === 'success'
                  ? JobStatus.JS_SUCCESS
                  : JobStatus.JS_FAILED,
            error: cmd.error,
          }),
        },
      });
    case 'JOB_SIMULATION_REQUESTED':
      return new WorkerMessage({
        message: {
          case: 'simulateJob',
          value: new SimulateJobRequest({
            type: cmd.participantIdentity ? JobType.JT_PUBLISHER : JobType.JT_ROOM,
            room: new Room({ name: cmd.roomName }),
            ...(cmd.participantIdentity
              ? { participant: new ParticipantInfo({ identity: cmd.participantIdentity }) }
              : {}),
          }),
        },
      });
    default:
      return undefined;
  }
}

/**
 * What a decoded server message means for the chart. `register` is handled by the link itself
 * (it completes the handshake), `pong` only proves liveness.
 */
export function serverReport(msg: ServerMessage): ServerLinkReport | undefined {
  const m = msg.message;
  switch (m.case) {
    case 'availability':
      return m.value.job ? { type: 'AVAILABILITY_REQUESTED', job: m.value.job } : undefined;
    case 'assignment':
      return m.value.job
        ? { type: 'JOB_ASSIGNED', job: m.value.job, token: m.value.token, url: m.value.url }
        : undefined;
    case 'termination':
      return { type: 'JOB_TERMINATED', jobId: m.value.jobId };
    default:
      return undefined;
  }
}

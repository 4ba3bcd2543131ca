/**
 * The server's side of an accepted offer (`AvailabilityResponse.available`): the agent
 * participant the worker chose is recorded on the job, a job token is signed for it with the
 * worker's API key, and `JobAssignment` goes to the worker, which now runs the job.
 */
import { JobAssignment, JobState, ServerMessage } from '@livekit/protocol';
import type { AvailabilityResponse } from '@livekit/protocol';
import type { WorkerConnection, WorkerState } from './connection.ts';
import type { JobRecord } from './job-records.ts';
import { signJobToken } from './tokens.ts';

export function sendAssignment(
  conn: WorkerConnection,
  w: WorkerState,
  job: JobRecord,
  res: AvailabilityResponse,
  apiSecret: string,
): void {
  job.accept = {
    identity: res.participantIdentity,
    name: res.participantName,
    metadata: res.participantMetadata,
    attributes: { ...res.participantAttributes },
    supportsResume: res.supportsResume,
  };
  job.participantIdentity = res.participantIdentity;
  const state = job.proto.state ?? new JobState();
  state.participantIdentity = res.participantIdentity;
  job.proto.state = state;
  job.token = signJobToken({
    apiKey: conn.apiKey,
    apiSecret,
    room: job.room,
    identity: res.participantIdentity,
    name: res.participantName,
    metadata: res.participantMetadata,
    attributes: res.participantAttributes,
    agentName: w.agentName,
    permissions: w.permissions,
  });
  conn.send(
    new ServerMessage({
      message: {
        case: 'assignment',
        value: new JobAssignment({ job: job.proto.clone(), token: job.token }),
      },
    }),
  );
  w.runningJobs.add(job.id);
  job.status = 'running';
}

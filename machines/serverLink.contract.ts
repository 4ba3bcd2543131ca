/**
 * The contract between the worker chart and the `serverLink` actor (src/protocol), which owns
 * one WebSocket to the LiveKit server at a time. The link only speaks the protocol; every
 * decision (when to reconnect, what to answer) is the chart's.
 */
import type { Job } from '@livekit/protocol';
import type { JobOutcome } from './jobProcess.contract.ts';
import type { ResolvedAcceptArguments } from './jobRequest.contract.ts';

/** What the worker tells the server about itself (`WorkerStatus`: `WS_AVAILABLE` / `WS_FULL`). */
export type WorkerAvailability = 'available' | 'full';

export interface ServerLinkInput {
  url: string;
}

/** serverLink → worker. */
export type ServerLinkReport =
  | { type: 'REGISTERED'; workerId: string; serverVersion: string }
  | { type: 'AVAILABILITY_REQUESTED'; job: Job }
  | { type: 'JOB_ASSIGNED'; job: Job; token: string; url: string | undefined }
  /**
   * The server ended a job, or (with a `reason` of its own) job recovery did: another worker
   * claimed it while this one was frozen or cut off past its lease (src/recovery/recoverer.ts).
   */
  | { type: 'JOB_TERMINATED'; jobId: string; reason?: string }
  /** The connection failed or dropped; worth retrying. */
  | { type: 'SERVER_LOST'; reason: string }
  /** The server (or URL) said no in a way retrying cannot fix: 401/403/404, unknown host. */
  | { type: 'SERVER_REFUSED'; reason: string };

/** worker → serverLink. */
export type ServerLinkCommand =
  | { type: 'CONNECT_REQUESTED' }
  | { type: 'DISCONNECT_REQUESTED' }
  /** `SimulateJobRequest`: the server creates a job for this worker in that room. */
  | { type: 'JOB_SIMULATION_REQUESTED'; roomName: string; participantIdentity: string | undefined }
  | {
      type: 'AVAILABILITY_ANSWERED';
      jobId: string;
      acceptArguments: ResolvedAcceptArguments | undefined;
    }
  | { type: 'WORKER_STATUS_REPORTED'; status: WorkerAvailability; load: number; jobCount: number }
  | {
      type: 'JOB_STATUS_REPORTED';
      jobId: string;
      outcome: 'running' | JobOutcome;
      error: string;
    };

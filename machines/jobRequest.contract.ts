/**
 * The contract between the worker chart and each spawned `jobRequest` actor, and between that
 * chart and its `decideRequest` actor (the user's `requestFnc`, provided from `src/worker`):
 * the input, what the decision resolves with, and the reports sent back to the worker.
 */
import type { Job } from '@livekit/protocol';
import type { JsonValue } from '@bufbuild/protobuf';

/** What a recovered job knows of the attempts before it (`ctx.recovery`). */
export interface JobRecoveryInfo {
  /** The id of the job this one replaces (the last attempt). */
  previousJobId: string;
  /** This attempt's number: 2 for the first recovery. */
  attempt: number;
  /** When the first attempt started (ms since the epoch). */
  firstStartedAt: number;
  /** The last value the previous attempt passed to `ctx.checkpoint()`, if any. */
  checkpoint: JsonValue | undefined;
}

/** The agent participant's identity for an accepted job, with LiveKit's defaults applied. */
export interface ResolvedAcceptArguments {
  name: string;
  identity: string;
  metadata: string;
  attributes: Record<string, string>;
  /**
   * Set when the offer is the re-dispatch of a job that ended abnormally (`src/recovery/`): the
   * identity above is then that job's, and the job process gives this to `ctx.recovery`.
   */
  recovery?: JobRecoveryInfo;
}

export interface JobRequestInput {
  job: Job;
  requestTimeout: number;
  assignmentTimeout: number;
}

/** The `decideRequest` actor's input. */
export interface DecideRequestInput {
  job: Job;
}

/** What `decideRequest` resolves with. A rejection (a thrown `requestFnc`) is the `error` decision. */
export type JobRequestDecision =
  | { accepted: true; acceptArguments: ResolvedAcceptArguments }
  | { accepted: false; reason: string };

/** Why `requestFnc` led to a "no": it said so, it ran past its budget, or it threw. */
export type RequestDeclineDecision = 'rejected' | 'timeout' | 'error';

/** jobRequest → worker. */
export type JobRequestReport =
  | { type: 'REQUEST_ACCEPTED'; jobId: string; acceptArguments: ResolvedAcceptArguments }
  | { type: 'REQUEST_DECLINED'; jobId: string; decision: RequestDeclineDecision; reason: string }
  | { type: 'ASSIGNMENT_TIMED_OUT'; jobId: string };

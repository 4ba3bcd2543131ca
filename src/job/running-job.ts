/**
 * What the worker hands to a job process when it launches a job: serialisable (it crosses IPC),
 * and complete enough for the child to build a `JobContext` without asking back.
 */
import type { JsonValue } from '@bufbuild/protobuf';

export interface ResolvedAcceptArguments {
  name: string;
  identity: string;
  metadata: string;
  attributes: Record<string, string>;
}

export interface RunningJobInfo {
  jobId: string;
  /** The server's `Job` message as proto3 JSON (`Job.toJson()`); rebuild with `Job.fromJson`. */
  job: JsonValue;
  acceptArguments: ResolvedAcceptArguments;
  /** Where the job's room connection goes: the assignment's URL, else the worker's. */
  url: string;
  /** The assignment's token for the agent participant. Secret: never log it. */
  token: string;
  workerId: string;
}

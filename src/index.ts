/**
 * agentstate: LiveKit agent workers as XState v5 statecharts. The public surface is this list;
 * anything not exported here is internal and may change.
 */
export {
  WorkerOptions,
  WorkerPermissions,
  WorkerType,
  type ElasticIdleProcessesInit,
  type TrackSourceName,
  type RecoveryOptions,
  type RecoveryOptionsInit,
  type WorkerLoadView,
  type WorkerOptionsInit,
  type WorkerPermissionsInit,
} from './options/worker-options.ts';
export type { ResolvedRecovery, ResolvedWorkerOptions } from './options/resolve.ts';
export type { AcceptArguments } from './worker/job-request.ts';
export {
  Worker,
  type ActiveJob,
  type JobProcessView,
  type WorkerListener,
  type WorkerRecord,
  type WorkerRunConfig,
  type WorkerStatusName,
} from './worker/worker.ts';
export type { AnswerDecision, WorkerEmitted } from '../machines/worker.contract.ts';
export type { JobEnding } from '../machines/jobProcess.contract.ts';
export type { JobRecoveryInfo } from '../machines/jobRequest.contract.ts';
export type { RecoveryRecord, RecoveryStatus } from './recovery/recoverer.ts';
export type { RecoveryDeclineReason } from './recovery/journal.ts';
export type { Clock } from './clock.ts';
export {
  WorkerGroup,
  type GroupActiveJob,
  type WorkerGroupAgent,
  type WorkerGroupRunConfig,
} from './group/worker-group.ts';
export { WorkerGroupOptions, type WorkerGroupOptionsInit } from './group/group-options.ts';
export { JobRequest } from './worker/job-request.ts';
export {
  JobContext,
  MAX_CHECKPOINT_BYTES,
  type ConnectOptions,
  type ShutdownCallback,
  type WaitForParticipantOptions,
} from './job-process/context.ts';
export { JobProcess } from './job-process/process.ts';
export { cli, runApp } from './cli/run-app.ts';
export { AgentStateError, InvalidOptionError, JobError, ServerRefusedError } from './errors.ts';
export {
  configureLogging,
  createLogger,
  getLogLevel,
  parseLogLevel,
  type LogFields,
  type LogFormat,
  type Logger,
  type LoggingConfig,
  type LogLevelName,
  type LogRecord,
} from './log/logger.ts';
export { startHealthServer, type HealthServer, type HealthServerOptions } from './http/server.ts';
export { createWorkerMetrics, type WorkerMetrics } from './http/metrics.ts';
export { workerInfo, type WorkerInfo } from './http/worker-info.ts';
export { createGroupMetrics, workerGroupInfo, type WorkerGroupInfo } from './http/group-info.ts';
export { VERSION } from './version.ts';

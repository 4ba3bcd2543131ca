/**
 * The attribute names of agentstate's spans, on both sides of the process boundary
 * (`./job-traces.ts`, `./job-spans.ts`). OpenTelemetry's semantic conventions are used where one
 * fits (`process.pid`, `error.type`, `url.full`); the rest are agentstate's own, under its name.
 */
export const ATTR = {
  jobId: 'agentstate.job.id',
  roomName: 'agentstate.room.name',
  agentName: 'agentstate.agent.name',
  workerId: 'agentstate.worker.id',
  decision: 'agentstate.decision',
  decisionReason: 'agentstate.decision.reason',
  outcome: 'agentstate.job.outcome',
  reason: 'agentstate.job.reason',
  ending: 'agentstate.job.ending',
  endRequested: 'agentstate.job.end_requested',
  procId: 'agentstate.process.id',
  /** The pid of the job process that ran the job (on the worker's span, whose process is the worker). */
  jobPid: 'agentstate.job.pid',
} as const;

/**
 * Workers for e2e tests: the real `agent` bin running test/fixtures/e2e/agent.ts against a real
 * server, configured through the environment (see the fixture's header), plus readers for what the
 * fixture's jobs log.
 *
 *   const a = await startFixtureWorker(server, 'a', { env: { E2E_LOAD: '0.6' } });
 *   const report = await jobReport(a, 'room-1');
 */
import { startAgent, type AgentProcess, type LogRecord } from './agent-process.ts';
import type { ServerCredentials } from './participants.ts';

export const FIXTURE_AGENT = 'test/fixtures/e2e/agent.ts';

export interface FixtureWorker extends AgentProcess {
  label: string;
  /** Its `AW_…` id, from the registration log. */
  workerId: string;
}

/** What a fixture job logs once connected (`e2e job report`). */
export interface JobReport extends LogRecord {
  jobId: string;
  room: string;
  agentName: string;
  metadata: string;
  publisher: string | null;
  /** `ctx.participant?.identity` (PARTICIPANT and PUBLISHER jobs). */
  participant: string | null;
  /** Whether `ctx.participant` was the live rtc-node `RemoteParticipant`. */
  participantLive: boolean;
  participantAttributes: Record<string, string> | null;
  /** The job's protocol `JobType` (0 room, 1 publisher, 2 participant). */
  jobType: number;
  userdata: Record<string, unknown>;
  procPid: number;
  pid: number;
  /** FFI events with native log records that reached the job's JavaScript during its connect. */
  nativeLogEvents: number;
}

export interface FixtureWorkerOptions {
  /** The fixture's `E2E_*` settings (and any other variable; `undefined` removes one). */
  env?: Record<string, string | undefined>;
  /** Extra CLI flags. */
  args?: string[];
  /** `--num-idle-processes`; default 1. A worker that never runs a job can use 0 (less CPU). */
  idleProcesses?: number;
  /** In its own process group, for group signals (`StartAgentOptions.detached`). */
  detached?: boolean;
  /** The agent file to run; default the fixture agent (`FIXTURE_AGENT`). */
  agentFile?: string;
}

/** Starts a fixture worker (`agent start`, JSON logs) and resolves once it has registered. */
export async function startFixtureWorker(
  server: ServerCredentials,
  label: string,
  {
    env = {},
    args = [],
    idleProcesses = 1,
    detached = false,
    agentFile = FIXTURE_AGENT,
  }: FixtureWorkerOptions = {},
): Promise<FixtureWorker> {
  const agent = startAgent(
    ['start', agentFile, '--num-idle-processes', String(idleProcesses), ...args],
    {
      LIVEKIT_URL: server.url,
      LIVEKIT_API_KEY: server.apiKey,
      LIVEKIT_API_SECRET: server.apiSecret,
      E2E_LABEL: label,
      ...env,
    },
    { detached },
  );
  const registered = await agent.waitForLog(
    (r) => r.message === 'registered with the server',
    `${label} registering`,
    30_000,
  );
  return Object.assign(agent, { label, workerId: String(registered.workerId) });
}

/** Waits for the report of this worker's job in `room`. */
export async function jobReport(
  worker: AgentProcess,
  room: string,
  timeoutMs = 20_000,
): Promise<JobReport> {
  const record = await worker.waitForLog(
    (r) => r.message === 'e2e job report' && r.room === room,
    `a job report from room ${room}`,
    timeoutMs,
  );
  return record as JobReport;
}

/** Waits for the worker's `job ended` record of `jobId`. */
export function jobEnded(
  worker: AgentProcess,
  jobId: string,
  timeoutMs = 20_000,
): Promise<LogRecord> {
  return worker.waitForLog(
    (r) => r.message === 'job ended' && r.jobId === jobId,
    `job ${jobId} ending`,
    timeoutMs,
  );
}

/** Every availability answer (`job accepted` / `job declined`) the worker logged so far. */
export function answers(worker: AgentProcess): LogRecord[] {
  return worker.records.filter((r) => r.message === 'job accepted' || r.message === 'job declined');
}

/**
 * Stops workers the way an orchestrator does: SIGTERM (drain), then SIGKILL for any still
 * running after `graceMs`. Resolves with each exit code or signal.
 */
export async function stopWorkers(
  workers: readonly AgentProcess[],
  graceMs = 10_000,
): Promise<(number | string)[]> {
  return Promise.all(
    workers.map(async (w) => {
      if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
      const timer = setTimeout(() => w.kill(), graceMs);
      try {
        return await w.exited;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
}

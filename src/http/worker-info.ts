/**
 * The `/worker` document: what an operator or a probe reads to know which worker this is and
 * what it holds. Keys follow LiveKit's `/worker` (snake_case, `protocol_version: 1`) so tools
 * written for its frameworks read it too; `status`, `jobs` and `idle_processes` are ours.
 */
import { WorkerType } from '../options/worker-options.ts';
import { VERSION } from '../version.ts';
import type { Worker } from '../worker/worker.ts';

/** The protocol's name of each worker type, as LiveKit's `/worker` spells it. */
const WORKER_TYPE_NAMES = {
  [WorkerType.ROOM]: 'JT_ROOM',
  [WorkerType.PUBLISHER]: 'JT_PUBLISHER',
  [WorkerType.PARTICIPANT]: 'JT_PARTICIPANT',
} as const satisfies Record<WorkerType, string>;

export interface WorkerInfo {
  id: string | null;
  agent_name: string;
  status: string;
  load: number;
  worker_type: 'JT_ROOM' | 'JT_PUBLISHER' | 'JT_PARTICIPANT';
  active_jobs: number;
  jobs: {
    id: string;
    room: string;
    participant_identity: string | null;
    phase: string;
    pid: number | null;
    /** Set for a job that job recovery dispatched again: its attempt and the job it replaces. */
    recovered: { attempt: number; previous_job_id: string } | null;
  }[];
  /**
   * Job recovery: its store (`disk`, `redis`, `none`), whether it works now and why not; `null`
   * when `recovery: false`.
   */
  recovery: { store: string; up: boolean; problem: string | null } | null;
  idle_processes: number;
  processes: number;
  version: string;
  sdk_version: string;
  project_type: 'nodejs';
  protocol_version: 1;
}

/** Processes by phase (zeros before `run()`). */
export function processCounts(
  worker: Worker,
): Record<'prewarming' | 'idle' | 'running' | 'exiting', number> {
  const counts = { prewarming: 0, idle: 0, running: 0, exiting: 0 };
  for (const p of worker.processes) counts[p.phase] += 1;
  return counts;
}

export function workerInfo(worker: Worker): WorkerInfo {
  const procs = processCounts(worker);
  const jobs = worker.activeJobs.map((j) => ({
    id: j.id,
    room: j.roomName,
    participant_identity: j.participantIdentity ?? null,
    phase: j.phase,
    pid: j.pid ?? null,
    recovered: j.recovered
      ? { attempt: j.recovered.attempt, previous_job_id: j.recovered.previousJobId }
      : null,
  }));
  const recovery = worker.recovery;
  return {
    id: worker.id ?? null,
    agent_name: worker.resolvedOptions.agentName,
    status: worker.status,
    load: worker.load,
    worker_type: WORKER_TYPE_NAMES[worker.options.workerType],
    active_jobs: jobs.length,
    jobs,
    idle_processes: procs.idle,
    processes: procs.prewarming + procs.idle + procs.running + procs.exiting,
    recovery: recovery
      ? { store: recovery.store, up: recovery.up, problem: recovery.problem ?? null }
      : null,
    version: VERSION,
    sdk_version: VERSION,
    project_type: 'nodejs',
    protocol_version: 1,
  };
}

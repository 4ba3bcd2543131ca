/**
 * Jobs, server side: launching them from dispatches, the availability round-trip with retries
 * and the overall budget, assignment with its token, `UpdateJobStatus`, terminations, and
 * forgetting a lost worker's jobs. Mirrors livekit-server v1.13.5 (`agentservice.go`,
 * `pkg/agent/worker.go`); what was checked against the real server is in
 * test/e2e/SERVER-FACTS.md.
 */
import {
  AvailabilityRequest,
  Job,
  JobState,
  JobStatus,
  JobTermination,
  ServerMessage,
} from '@livekit/protocol';
import type { AvailabilityResponse, SimulateJobRequest, UpdateJobStatus } from '@livekit/protocol';
import { sendAssignment } from './assignment.ts';
import type { EventInput, WorkerConnection, WorkerState } from './connection.ts';
import {
  JOB_TYPES,
  jobSnapshot,
  newJobRecord,
  nowNs,
  servesKey,
  STATUS_NAMES,
  type JobOrigin,
  type JobRecord,
} from './job-records.ts';
import { participantProto, roomProto } from './rooms.ts';
import type { DispatchState, ParticipantState, RoomState } from './rooms.ts';
import { affinity, pickWeighted } from './selection.ts';
import { guid } from './tokens.ts';
import type { JobKind, JobStatusName, TerminationReason } from './types.ts';

/** The error the server records when the agent participant leaves (`AGENT_LEFT_ROOM`). */
export const AGENT_LEFT_ERROR = 'agent worker left the room';

export interface DispatcherHost {
  emit(event: EventInput): void;
  /** Registered, open connections. */
  connections(): WorkerConnection[];
  secretOf(apiKey: string): string;
  readonly targetLoad: number;
  readonly availabilityTimeoutMs: number;
  readonly jobLinkDelayMs: number;
  readonly simulateJobTimeoutMs: number;
  readonly random: () => number;
}

type Answer = 'timeout' | 'closed' | AvailabilityResponse;

export class Dispatcher {
  readonly jobs = new Map<string, JobRecord>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closing = false;

  constructor(private readonly host: DispatcherHost) {}

  /**
   * A trigger fired (room created, dispatch added, first publish, join): launch one job per
   * namespace of matching workers, unless none is registered or none has capacity. Decided
   * now, never retroactively.
   */
  launch(
    room: RoomState,
    dispatch: DispatchState,
    type: JobKind,
    participant?: ParticipantState,
  ): void {
    const jobType = JOB_TYPES[type];
    const dispatchKey = {
      agentName: dispatch.agentName,
      jobType,
      deployment: dispatch.deployment,
    };
    const matching = this.host.connections().filter((c) => servesKey(c.worker, dispatchKey));
    const notDispatched = (reason: 'no-worker' | 'no-capacity'): void =>
      this.host.emit({
        type: 'job-not-dispatched',
        room: room.name,
        agentName: dispatch.agentName,
        jobType: type,
        participant: participant?.identity,
        reason,
      });
    if (matching.length === 0) return notDispatched('no-worker');
    const namespaces = new Set(matching.map((c) => c.worker?.namespace ?? ''));
    for (const namespace of namespaces) {
      const workers = matching
        .map((c) => c.worker)
        .filter((w): w is WorkerState => (w?.namespace ?? '') === namespace);
      if (affinity(workers, this.host.targetLoad) <= 0) {
        notDispatched('no-capacity');
        continue;
      }
      const proto = new Job({
        id: guid('AJ_'),
        dispatchId: dispatch.id,
        type: jobType,
        room: roomProto(room),
        participant: participant && participantProto(participant),
        namespace,
        metadata: dispatch.metadata,
        agentName: dispatch.agentName,
        deployment: dispatch.deployment,
        attributes: { ...dispatch.attributes },
      });
      const key = { ...dispatchKey, namespace };
      const origin = { type, room: room.name, participant: participant?.identity, key };
      const job = this.create(proto, { ...origin, simulated: false });
      dispatch.jobIds.push(job.id);
      void this.offer(job, this.host.availabilityTimeoutMs, undefined);
    }
  }

  /** `SimulateJobRequest`: offered to the requesting worker only, no affinity, no retry. */
  simulate(conn: WorkerConnection, req: SimulateJobRequest): void {
    const w = conn.worker;
    if (w === undefined) return;
    // The server ignores the request's `type`: a participant makes it a publisher job.
    const type: JobKind = req.participant ? 'publisher' : 'room';
    const proto = new Job({
      id: guid('AJ_'),
      type: JOB_TYPES[type],
      room: req.room?.clone(),
      participant: req.participant?.clone(),
      namespace: w.namespace ?? '',
      agentName: w.agentName,
    });
    const key = {
      agentName: w.agentName,
      namespace: w.namespace ?? '',
      jobType: proto.type,
      deployment: w.deployment,
    };
    const job = this.create(proto, {
      type,
      room: req.room?.name ?? '',
      participant: req.participant?.identity,
      key,
      simulated: true,
    });
    void this.offer(job, this.host.simulateJobTimeoutMs, conn);
  }

  /** An `AvailabilityResponse`: resolves the matching request, or is ignored (late/unknown). */
  onAvailability(conn: WorkerConnection, resp: AvailabilityResponse): void {
    const w = conn.worker;
    if (w === undefined) return;
    const resolve = w.pending.get(resp.jobId);
    if (resolve === undefined) {
      this.host.emit({ type: 'availability-ignored', jobId: resp.jobId, workerId: w.id });
      return;
    }
    w.pending.delete(resp.jobId);
    this.host.emit({
      type: 'availability-answered',
      jobId: resp.jobId,
      workerId: w.id,
      available: resp.available,
      terminate: resp.terminate,
    });
    resolve({ case: 'availability', value: resp });
  }

  /** `UpdateJobStatus`: only for jobs running on that worker; end states drop the job. */
  onUpdateJob(conn: WorkerConnection, upd: UpdateJobStatus): void {
    const w = conn.worker;
    const job = this.jobs.get(upd.jobId);
    if (w === undefined) return;
    if (job === undefined || !w.runningJobs.has(upd.jobId)) {
      this.host.emit({ type: 'job-update-ignored', jobId: upd.jobId, workerId: w.id });
      return;
    }
    const state = job.proto.state ?? new JobState();
    state.status = upd.status;
    state.error = upd.error;
    state.updatedAt = nowNs();
    job.proto.state = state;
    const ended = upd.status === JobStatus.JS_SUCCESS || upd.status === JobStatus.JS_FAILED;
    if (ended) {
      state.endedAt = state.updatedAt;
      w.runningJobs.delete(job.id);
    }
    this.setStatus(job, STATUS_NAMES[upd.status] ?? 'running', upd.error, ended);
  }

  /**
   * Sends `JobTermination` for a job still running on a connected worker and records the end
   * the server records for that reason. Returns false when the server would not send one.
   */
  terminate(jobId: string, reason: TerminationReason): boolean {
    const job = this.jobs.get(jobId);
    if (job === undefined || job.simulated || job.workerId === undefined) return false;
    const conn = this.host.connections().find((c) => c.worker?.id === job.workerId);
    const w = conn?.worker;
    if (conn === undefined || w === undefined || !w.runningJobs.has(jobId)) return false;
    conn.send(
      new ServerMessage({
        message: { case: 'termination', value: new JobTermination({ jobId }) },
      }),
    );
    w.runningJobs.delete(jobId);
    this.host.emit({ type: 'job-terminated', jobId, workerId: w.id, reason });
    if (reason === 'requested') this.setStatus(job, 'success', '', true);
    else this.setStatus(job, 'failed', AGENT_LEFT_ERROR, true);
    return true;
  }

  /**
   * `DeleteDispatch` for one of its jobs: terminated now if the room has linked it, else as soon
   * as it is (the real server applies the deletion after the job's launch returns).
   */
  terminateForDeletedDispatch(jobId: string): void {
    const job = this.jobs.get(jobId);
    if (job === undefined) return;
    if (job.linked) this.terminate(jobId, 'requested');
    else if (job.status === 'pending' || job.status === 'running') job.terminateOnLink = true;
  }

  /** The worker is gone: its pending requests fail over, its running jobs are just forgotten. */
  onWorkerClosed(w: WorkerState): string[] {
    const forgotten = [...w.runningJobs];
    w.runningJobs.clear();
    for (const resolve of [...w.pending.values()]) resolve('closed');
    w.pending.clear();
    return forgotten;
  }

  close(): void {
    this.closing = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private create(proto: Job, origin: JobOrigin): JobRecord {
    const job = newJobRecord(proto, origin);
    this.jobs.set(job.id, job);
    this.host.emit({ type: 'job-created', job: jobSnapshot(job) });
    return job;
  }

  /** The connected workers this job may be offered to. */
  private candidates(job: JobRecord): WorkerConnection[] {
    return this.host.connections().filter((c) => servesKey(c.worker, job.key));
  }

  /**
   * The availability loop of one job: ask a weighted-random worker, move on after a refusal or
   * a lost worker, stop at the first acceptance, `terminate`, or when the budget runs out.
   */
  private async offer(
    job: JobRecord,
    budgetMs: number,
    only: WorkerConnection | undefined,
  ): Promise<void> {
    const deadline = Date.now() + budgetMs;
    const tried = new Set<string>();
    for (;;) {
      if (this.closing) return;
      let conn: WorkerConnection | undefined;
      if (only === undefined) {
        const pool = this.candidates(job);
        const picked = pickWeighted(
          pool.flatMap((c) => (c.worker ? [c.worker] : [])),
          tried,
          this.host.random,
        );
        conn = pool.find((c) => c.worker === picked);
      } else if (!only.closed && tried.size === 0) {
        conn = only;
      }
      const w = conn?.worker;
      if (conn === undefined || w === undefined) {
        this.setStatus(job, 'rejected', 'no workers with sufficient capacity', true);
        return;
      }
      tried.add(w.id);
      job.tries.push(w.id);
      job.workerId = w.id;
      const now = nowNs();
      job.proto.state = new JobState({
        status: JobStatus.JS_RUNNING,
        workerId: w.id,
        startedAt: now,
        updatedAt: now,
      });
      conn.send(
        new ServerMessage({
          message: {
            case: 'availability',
            value: new AvailabilityRequest({ job: job.proto.clone() }),
          },
        }),
      );
      this.host.emit({ type: 'availability-sent', jobId: job.id, workerId: w.id });
      const answer = await this.awaitAnswer(w, job.id, deadline - Date.now());
      if (this.closing) return;
      if (answer === 'timeout') {
        this.host.emit({ type: 'availability-timed-out', jobId: job.id, workerId: w.id });
        this.setStatus(job, 'lost', 'context deadline exceeded', true);
        return;
      }
      if (answer === 'closed') continue;
      if (answer.terminate) {
        this.setStatus(job, 'success', '', true);
        return;
      }
      if (!answer.available) continue;
      this.assign(conn, w, job, answer);
      return;
    }
  }

  private awaitAnswer(w: WorkerState, jobId: string, ms: number): Promise<Answer> {
    return new Promise<Answer>((resolve) => {
      const timer = setTimeout(
        () => {
          this.timers.delete(timer);
          w.pending.delete(jobId);
          resolve('timeout');
        },
        Math.max(0, ms),
      );
      this.timers.add(timer);
      w.pending.set(jobId, (answer) => {
        clearTimeout(timer);
        this.timers.delete(timer);
        if (answer === 'closed') resolve('closed');
        else if (answer.case === 'availability') resolve(answer.value);
      });
    });
  }

  private assign(
    conn: WorkerConnection,
    w: WorkerState,
    job: JobRecord,
    res: AvailabilityResponse,
  ): void {
    sendAssignment(conn, w, job, res, this.host.secretOf(conn.apiKey));
    this.host.emit({
      type: 'job-assigned',
      jobId: job.id,
      workerId: w.id,
      participantIdentity: res.participantIdentity,
    });
    this.scheduleLink(job);
  }

  /** The room learns the job's agent participant `jobLinkDelayMs` after the assignment. */
  private scheduleLink(job: JobRecord): void {
    const link = (): void => {
      if (this.closing) return;
      job.linked = true;
      this.host.emit({
        type: 'job-linked',
        jobId: job.id,
        room: job.room,
        participantIdentity: job.participantIdentity ?? '',
      });
      if (job.terminateOnLink) this.terminate(job.id, 'requested');
    };
    if (this.host.jobLinkDelayMs <= 0) return link();
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      link();
    }, this.host.jobLinkDelayMs);
    this.timers.add(timer);
  }

  private setStatus(job: JobRecord, status: JobStatusName, error: string, ended: boolean): void {
    job.status = status;
    job.error = error;
    if (ended) job.endedAt = Date.now();
    this.host.emit({ type: 'job-status', jobId: job.id, workerId: job.workerId, status, error });
  }
}

/**
 * The worker's side of a job's trace: one trace per job, from its offer to its end, made by
 * following the worker chart from outside (its emitted records and its snapshots' job phases,
 * `machines/worker.contract.ts`), never from inside the chart. Spans:
 *
 *     agentstate.job                 offer → end (declined: → the answer), with its outcome
 *     ├─ agentstate.job.offer        the decision and its reason
 *     ├─ agentstate.job.assignment   accepted → the server's assignment
 *     ├─ agentstate.job.queued       assigned → handed to a process (only when none was idle)
 *     ├─ agentstate.job.handoff      handed to a process → its entrypoint runs
 *     └─ (job process) agentstate.job.launch, .entrypoint, .connect, .end  (./job-spans.ts)
 *
 * The job process's spans hang under `agentstate.job` through the W3C trace context the launch
 * carries (`carrier`). Every entry point catches what the SDK or a user's provider might throw:
 * tracing never reaches the chart.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import type { JobPhase, WorkerContext, WorkerEmitted } from '../../machines/worker.contract.ts';
import type { Logger } from '../log/logger.ts';
import type { TraceCarrier } from './otel-config.ts';
import { injectCarrier } from './otel-sdk.ts';
import type { LoopStall } from './loop-stall.ts';
import { ATTR } from './attributes.ts';

const MAX_ENDED = 64;

type PhaseSpan = 'offer' | 'assignment' | 'queued' | 'handoff';

interface TracedJob {
  root: Span;
  rootCtx: Context;
  carrier: TraceCarrier | undefined;
  phase: { name: PhaseSpan; span: Span } | undefined;
  /** The chart's record of the job has been seen (a record that vanishes unreported was dropped). */
  seen: boolean;
  lastPhase: JobPhase | undefined;
}

export interface JobTracesInit {
  tracer: Tracer;
  agentName: string;
  workerId: () => string | undefined;
  log: Logger;
}

/** The traces of the jobs this worker holds. */
export class JobTraces {
  readonly #jobs = new Map<string, TracedJob>();
  /** The trace context of jobs just ended, for the records that follow their end. */
  readonly #ended = new Map<string, TraceCarrier>();
  readonly #init: JobTracesInit;
  #broken = false;

  constructor(init: JobTracesInit) {
    this.#init = init;
  }

  /** Follows one of the worker's records. */
  onRecord(ev: WorkerEmitted): void {
    this.#guard(() => this.#record(ev));
  }

  /** Follows a snapshot of the worker chart's context (the job phases). */
  onSnapshot(ctx: WorkerContext): void {
    if (this.#jobs.size === 0) return;
    this.#guard(() => this.#snapshot(ctx));
  }

  /** A loop stall of the worker or of a job's process, as an event on the job's span. */
  onLoopStall(s: LoopStall): void {
    this.#guard(() => {
      const attrs = { 'agentstate.process.kind': s.process, 'agentstate.stalled_ms': s.stalledMs };
      if (s.jobId) this.#jobs.get(s.jobId)?.root.addEvent('event loop stalled', attrs);
    });
  }

  /** The trace context a job's launch carries into its process (the job's span). */
  carrier(jobId: string): TraceCarrier | undefined {
    return this.#jobs.get(jobId)?.carrier ?? this.#ended.get(jobId);
  }

  /** Ends every span still open (the worker is stopping). */
  endAll(reason: string): void {
    this.#guard(() => {
      for (const [jobId, t] of this.#jobs) {
        this.#endPhase(t);
        t.root.setAttribute(ATTR.reason, reason);
        t.root.end();
        this.#forget(jobId, t);
      }
    });
  }

  #guard(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      // A tracer that throws (a user's provider) is reported once, not on every event.
      if (!this.#broken) this.#init.log.warn('tracing a job failed', { error });
      this.#broken = true;
    }
  }

  #record(ev: WorkerEmitted): void {
    switch (ev.type) {
      case 'availabilityRequested': {
        const attrs: Attributes = {
          [ATTR.jobId]: ev.jobId,
          [ATTR.roomName]: ev.roomName,
          [ATTR.agentName]: this.#init.agentName,
        };
        const workerId = this.#init.workerId();
        if (workerId) attrs[ATTR.workerId] = workerId;
        const root = this.#init.tracer.startSpan(
          'agentstate.job',
          { kind: SpanKind.CONSUMER, attributes: attrs },
          ROOT_CONTEXT,
        );
        const rootCtx = trace.setSpan(ROOT_CONTEXT, root);
        const t: TracedJob = {
          root,
          rootCtx,
          carrier: injectCarrier(rootCtx),
          phase: undefined,
          seen: false,
          lastPhase: undefined,
        };
        this.#jobs.set(ev.jobId, t);
        this.#startPhase(t, 'offer', { [ATTR.jobId]: ev.jobId });
        return;
      }
      case 'requestAnswered': {
        const t = this.#jobs.get(ev.jobId);
        if (!t) return;
        const decided = { [ATTR.decision]: ev.decision, [ATTR.decisionReason]: ev.reason };
        if (t.phase?.name === 'offer') t.phase.span.setAttributes(decided);
        t.root.setAttributes(decided);
        if (ev.decision === 'accepted') {
          this.#startPhase(t, 'assignment');
          return;
        }
        this.#endPhase(t);
        t.root.setAttribute(ATTR.reason, ev.reason);
        t.root.end();
        this.#forget(ev.jobId, t);
        return;
      }
      case 'jobLaunched': {
        const t = this.#jobs.get(ev.jobId);
        if (t) this.#startPhase(t, 'handoff', { [ATTR.procId]: ev.procId });
        return;
      }
      case 'jobRetried': {
        const t = this.#jobs.get(ev.jobId);
        if (!t) return;
        t.root.addEvent('job retried on another process', {
          [ATTR.procId]: ev.procId,
          [ATTR.reason]: ev.reason,
        });
        this.#startPhase(t, 'queued');
        return;
      }
      case 'jobEnded': {
        const t = this.#jobs.get(ev.jobId);
        if (!t) return;
        this.#endPhase(t);
        t.root.setAttributes({
          [ATTR.outcome]: ev.outcome,
          [ATTR.reason]: ev.reason,
          [ATTR.ending]: ev.ending,
          [ATTR.endRequested]: ev.endRequested,
        });
        if (ev.outcome === 'failed') {
          t.root.setAttribute('error.type', ev.ending);
          t.root.setStatus({ code: SpanStatusCode.ERROR, message: ev.reason });
        }
        t.root.end();
        this.#forget(ev.jobId, t);
        return;
      }
      default:
        return;
    }
  }

  #snapshot(ctx: WorkerContext): void {
    for (const [jobId, t] of this.#jobs) {
      const rec = ctx.jobs[jobId];
      if (!rec) {
        // Gone without its end: an accepted job whose assignment never came, or one the server
        // terminated before it was assigned. Its end was no job's end, so no outcome is set.
        if (t.seen) {
          this.#endPhase(t);
          t.root.setAttribute(ATTR.reason, 'dropped before it was assigned');
          t.root.end();
          this.#forget(jobId, t);
        }
        continue;
      }
      t.seen = true;
      if (rec.phase === t.lastPhase) continue;
      t.lastPhase = rec.phase;
      if (rec.phase === 'queued' && t.phase?.name !== 'queued') this.#startPhase(t, 'queued');
      else if (rec.phase === 'running' && t.phase?.name === 'handoff') {
        const pid = rec.procId ? ctx.procs[rec.procId]?.pid : undefined;
        if (pid !== undefined) t.root.setAttribute(ATTR.jobPid, pid);
        this.#endPhase(t);
      }
    }
  }

  #forget(jobId: string, t: TracedJob): void {
    this.#jobs.delete(jobId);
    if (!t.carrier) return;
    // A few records follow a job's end (its process's exit); a bounded memory of them suffices.
    if (this.#ended.size >= MAX_ENDED) this.#ended.delete(this.#ended.keys().next().value!);
    this.#ended.set(jobId, t.carrier);
  }

  #startPhase(t: TracedJob, name: PhaseSpan, attributes: Attributes = {}): void {
    this.#endPhase(t);
    const span = this.#init.tracer.startSpan(`agentstate.job.${name}`, { attributes }, t.rootCtx);
    t.phase = { name, span };
  }

  #endPhase(t: TracedJob): void {
    t.phase?.span.end();
    t.phase = undefined;
  }
}

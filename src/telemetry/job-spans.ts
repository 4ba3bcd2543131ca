/**
 * The job process's side of a job's trace (the worker's side is `./job-traces.ts`): imported
 * only when tracing is on. Its spans hang under the worker's `agentstate.job` span through the
 * trace context the launch carried (`machines/jobIpc.contract.ts`), and the entrypoint runs
 * inside its span's context, so the user's own `@opentelemetry/api` spans are its children.
 *
 *     agentstate.job.launch       the launch message → the entrypoint called
 *     agentstate.job.entrypoint   the entrypoint's run (its promise settled)
 *     └─ agentstate.job.connect   `ctx.connect()`
 *     agentstate.job.end          the job's end: shutdown callbacks and leaving the room
 */
import {
  context,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import type { RunningJobInfo } from '../../machines/jobProcess.contract.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { JobSpanHooks } from '../job-process/runtime.ts';
import type { OtelWanted, TraceCarrier } from './otel-config.ts';
import { ATTR } from './attributes.ts';
import {
  extractCarrier,
  startTracing,
  TRACER_NAME,
  type Tracing,
  type TracingInit,
} from './otel-sdk.ts';
import { VERSION } from '../version.ts';

/** What a job process traces with, set up once at its prewarm. */
export interface JobTracing {
  /** The hooks of one job, under the span its launch carried. */
  forJob(info: RunningJobInfo, carrier: TraceCarrier): JobSpanHooks;
  /** Sends what is batched (at the job's end, and before the process exits). */
  flush(): Promise<void>;
}

/** Sets up the job process's tracing; `undefined` when traces are not wanted or it failed. */
export async function startJobTracing(
  wanted: OtelWanted,
  provider: TracingInit['provider'],
  log: Logger,
  forward: TracingInit['forward'],
): Promise<JobTracing | undefined> {
  const tracing = await startTracing({
    wanted,
    provider,
    processKind: 'job',
    log,
    ...(forward ? { forward } : {}),
  });
  if (!tracing) return undefined;
  const tracer = tracing.provider.getTracer(TRACER_NAME, VERSION);
  return {
    forJob: (info, carrier) => jobHooks(tracer, tracing, info, carrier, log),
    flush: () => tracing.flush(),
  };
}

function fail(span: Span, error: unknown): void {
  span.setAttribute('error.type', error instanceof Error ? error.name : typeof error);
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(error) });
}

function jobHooks(
  tracer: Tracer,
  tracing: Tracing,
  info: RunningJobInfo,
  carrier: TraceCarrier,
  log: Logger,
): JobSpanHooks {
  const parent = extractCarrier(carrier);
  const job = info.job as { room?: { name?: string } } | null;
  const attrs: Attributes = {
    [ATTR.jobId]: info.jobId,
    [ATTR.workerId]: info.workerId,
    'process.pid': process.pid,
  };
  if (job?.room?.name) attrs[ATTR.roomName] = job.room.name;
  let broken = false;
  // Tracing never fails a job: whatever the tracer throws is logged once and dropped.
  const guard = <T>(what: () => T, fallback: T): T => {
    try {
      return what();
    } catch (error) {
      if (!broken) log.warn('tracing the job failed', { error });
      broken = true;
      return fallback;
    }
  };
  const launch = guard(
    () => tracer.startSpan('agentstate.job.launch', { attributes: attrs }, parent),
    undefined,
  );
  let entrypoint: Span | undefined;
  return {
    runEntrypoint(call) {
      entrypoint = guard(
        () => tracer.startSpan('agentstate.job.entrypoint', { attributes: attrs }, parent),
        undefined,
      );
      const inSpan = entrypoint ? trace.setSpan(parent, entrypoint) : parent;
      try {
        return context.with(inSpan, call);
      } finally {
        guard(() => launch?.end(), undefined);
      }
    },
    entrypointSettled(error) {
      guard(() => {
        if (error !== undefined) fail(entrypoint!, error);
        entrypoint?.end();
      }, undefined);
    },
    logFields() {
      const sc = entrypoint?.spanContext() ?? launch?.spanContext();
      return sc ? { traceId: sc.traceId, spanId: sc.spanId } : {};
    },
    connectStarted(url) {
      const ctx = entrypoint ? trace.setSpan(parent, entrypoint) : parent;
      const span = guard(
        () =>
          tracer.startSpan(
            'agentstate.job.connect',
            { attributes: { ...attrs, 'url.full': url } },
            ctx,
          ),
        undefined,
      );
      return (error) =>
        guard(() => {
          if (span && error !== undefined) fail(span, error);
          span?.end();
        }, undefined);
    },
    endStarted(end) {
      const span = guard(
        () =>
          tracer.startSpan(
            'agentstate.job.end',
            { attributes: { ...attrs, [ATTR.outcome]: end.outcome, [ATTR.reason]: end.reason } },
            parent,
          ),
        undefined,
      );
      return (teardown) => {
        guard(() => {
          if (!span) return;
          span.setAttribute('agentstate.job.teardown_clean', teardown.clean);
          if (teardown.outcome === 'failed') {
            span.setStatus({ code: SpanStatusCode.ERROR, message: teardown.reason });
          }
          span.end();
        }, undefined);
        // Sent now, not at the next scheduled batch: the process may be stopped right after.
        void tracing.flush();
      };
    },
  };
}

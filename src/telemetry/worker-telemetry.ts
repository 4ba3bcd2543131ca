/**
 * OpenTelemetry in the worker process, imported (dynamically, by src/worker/worker.ts) only when
 * `./otel-config.ts` says something is wanted: the job traces (`./job-traces.ts`), and the OTLP
 * logs when `OTEL_LOGS_EXPORTER` asks for them (`./otel-logs.ts`, imported only then). The OTLP
 * metrics are the health server's (src/http/server.ts, `./otel-metrics.ts`): the registry that
 * `/metrics` serves.
 */
import type { TracerProvider } from '@opentelemetry/api';
import type { Actor } from 'xstate';
import type { WorkerEmitted } from '../../machines/worker.contract.ts';
import type { ForwardedSpans } from '../../machines/jobIpc.contract.ts';
import type { workerMachine } from '../../machines/worker.machine.ts';
import type { Logger } from '../log/logger.ts';
import { VERSION } from '../version.ts';
import { onLoopStall } from './loop-stall.ts';
import type { OtelWanted } from './otel-config.ts';
import { startTracing, TRACER_NAME } from './otel-sdk.ts';
import { JobTraces } from './job-traces.ts';

export interface WorkerTelemetry {
  /** The job traces, when traces are on. */
  readonly traces: JobTraces | undefined;
  /** Exports the spans a job process forwarded. */
  onForwardedSpans(m: ForwardedSpans): void;
  /** Follows one of the chart's records (before it is logged, so the log line has its trace). */
  onRecord(ev: WorkerEmitted): void;
  /** Starts following the running chart's snapshots. */
  follow(actor: Actor<typeof workerMachine>): void;
  /** Ends open spans and flushes every exporter, within their deadlines. Idempotent. */
  stop(reason: string): Promise<void>;
}

export interface WorkerTelemetryInit {
  wanted: OtelWanted;
  /** The user's `tracerProvider` option. */
  tracerProvider: TracerProvider | undefined;
  agentName: string;
  workerId: () => string | undefined;
  log: Logger;
}

/** Sets up what `wanted` asks for; what fails is logged and left off, never thrown. */
export async function startWorkerTelemetry(init: WorkerTelemetryInit): Promise<WorkerTelemetry> {
  const { wanted, log } = init;
  const tracing = wanted.traces
    ? await startTracing({
        wanted,
        provider: init.tracerProvider,
        processKind: 'worker',
        log,
      })
    : undefined;
  const traces = tracing
    ? new JobTraces({
        tracer: tracing.provider.getTracer(TRACER_NAME, VERSION),
        agentName: init.agentName,
        workerId: init.workerId,
        log,
      })
    : undefined;
  const stopStalls = traces ? onLoopStall((s) => traces.onLoopStall(s)) : () => {};
  const stops: (() => Promise<void>)[] = [];
  if (wanted.logs) {
    try {
      const { startOtlpLogs } = await import('./otel-logs.ts');
      stops.push(startOtlpLogs(log));
    } catch (error) {
      log.warn('OTLP logs could not be set up; continuing without them', { error });
    }
  }
  let unsubscribe = () => {};
  let stopped: Promise<void> | undefined;
  return {
    traces,
    onRecord: (ev) => traces?.onRecord(ev),
    onForwardedSpans: (m) => {
      try {
        tracing?.exportForwarded?.(m);
      } catch (error) {
        log.debug('forwarded spans not exported', { error });
      }
    },
    follow(actor) {
      if (!traces) return;
      const sub = actor.subscribe({
        next: (snap) => traces.onSnapshot(snap.context),
        error: () => undefined,
      });
      unsubscribe = () => sub.unsubscribe();
    },
    stop(reason) {
      stopped ??= (async () => {
        unsubscribe();
        stopStalls();
        traces?.endAll(reason);
        await Promise.all([tracing?.shutdown(), ...stops.map((s) => s())]);
      })();
      return stopped;
    },
  };
}

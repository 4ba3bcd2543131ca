/**
 * Log records over OTLP (`OTEL_LOGS_EXPORTER=otlp`), from the worker process: every record it
 * prints, its job processes' included (they arrive over IPC and are printed here), goes to the
 * OTLP logs exporter as well. A record of a traced job carries `traceId` and `spanId` fields
 * (src/job-process/job-dialogue.ts, src/worker/emitted-log.ts); the OTLP record gets them as
 * its trace context, so a backend links it to the span. Imported only when asked for.
 */
import {
  ROOT_CONTEXT,
  SeverityNumber,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
} from '@opentelemetry/api';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { withDeadline } from '../clock.ts';
import { setLogExporter, type Logger, type LogRecord } from '../log/logger.ts';
import { VERSION } from '../version.ts';
import { otelResource, TRACER_NAME } from './otel-sdk.ts';

const SEVERITY: Record<LogRecord['level'], SeverityNumber> = {
  DEBUG: SeverityNumber.DEBUG,
  INFO: SeverityNumber.INFO,
  WARNING: SeverityNumber.WARN,
  ERROR: SeverityNumber.ERROR,
  CRITICAL: SeverityNumber.FATAL,
};

/** Starts sending the log records; returns the stop, which flushes within its deadline. */
export function startOtlpLogs(log: Logger): () => Promise<void> {
  const provider = new LoggerProvider({
    resource: otelResource('worker'),
    processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter() })],
  });
  const otelLogger = provider.getLogger(TRACER_NAME, VERSION);
  setLogExporter((r) => {
    const { traceId, spanId, ...rest } = r.fields;
    otelLogger.emit({
      timestamp: new Date(r.timestamp),
      severityNumber: SEVERITY[r.level],
      severityText: r.level,
      body: r.message,
      attributes: attributesOf(rest),
      context: traceContext(traceId, spanId),
    });
  });
  log.debug('sending log records over OTLP');
  return () => {
    setLogExporter(undefined);
    return withDeadline(provider.shutdown(), 2_000, 'flushing OTLP logs').catch(() => undefined);
  };
}

function traceContext(traceId: unknown, spanId: unknown): Context | undefined {
  if (typeof traceId !== 'string' || typeof spanId !== 'string') return undefined;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId,
    spanId,
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  });
}

/** Fields as OTLP attributes: strings, numbers and booleans as they are, anything else as JSON. */
function attributesOf(fields: Record<string, unknown>): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
    else if (v !== undefined) out[k] = JSON.stringify(v);
  }
  return out;
}

/**
 * Whether OpenTelemetry is asked for, read from the standard environment variables only
 * (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/) and the
 * `tracerProvider` option. Loaded in both processes, so it imports nothing of OpenTelemetry: the
 * SDK (`./otel-sdk.ts`) is imported only once this says it is wanted, and with nothing
 * configured no `@opentelemetry/*` module is loaded at all (test/package/imports.test.ts).
 */
import type { TraceCarrier } from '../../machines/jobIpc.contract.ts';
import { InvalidOptionError } from '../errors.ts';

/** What is to be sent where; `undefined` from `otelWanted` when nothing is. */
export interface OtelWanted {
  /** Spans: to OTLP, to the console (`OTEL_TRACES_EXPORTER=console`), or to the user's provider. */
  traces: 'otlp' | 'console' | 'provider' | undefined;
  /** The worker's metrics over OTLP (`OTEL_METRICS_EXPORTER=otlp`). */
  metrics: boolean;
  /** Log records over OTLP (`OTEL_LOGS_EXPORTER=otlp`). */
  logs: boolean;
}

/** The comma-separated exporter list of `name` (lower case), `undefined` when unset or empty. */
function exporters(env: NodeJS.ProcessEnv, name: string): string[] | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  return raw
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

function checkExporters(name: string, list: string[] | undefined, allowed: string[]): void {
  for (const e of list ?? []) {
    if (!allowed.includes(e)) {
      throw new InvalidOptionError(
        name,
        `exporter ${JSON.stringify(e)} is not supported here: use ${allowed.join(', ')}`,
      );
    }
  }
}

/**
 * Reads what the environment (and the user's `tracerProvider`) ask for. Traces are on when
 * `OTEL_TRACES_EXPORTER` names `otlp` or `console`, or, as the specification's default exporter
 * is `otlp`, when it is unset and an OTLP endpoint is given (`OTEL_EXPORTER_OTLP_ENDPOINT`,
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`). `OTEL_SDK_DISABLED=true` turns everything off. Throws
 * `InvalidOptionError` naming the variable for a value this worker cannot honour (the gRPC
 * or JSON protocols, an exporter it does not ship).
 */
export function otelWanted(env: NodeJS.ProcessEnv, hasProvider: boolean): OtelWanted | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  const tracesList = exporters(env, 'OTEL_TRACES_EXPORTER');
  const metricsList = exporters(env, 'OTEL_METRICS_EXPORTER');
  const logsList = exporters(env, 'OTEL_LOGS_EXPORTER');
  checkExporters('OTEL_TRACES_EXPORTER', tracesList, ['otlp', 'console', 'none']);
  checkExporters('OTEL_METRICS_EXPORTER', metricsList, ['otlp', 'none']);
  checkExporters('OTEL_LOGS_EXPORTER', logsList, ['otlp', 'none']);
  const endpointGiven = Boolean(
    env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim(),
  );
  let traces: OtelWanted['traces'];
  if (hasProvider) traces = 'provider';
  else if (tracesList === undefined) traces = endpointGiven ? 'otlp' : undefined;
  else if (tracesList.includes('otlp')) traces = 'otlp';
  else if (tracesList.includes('console')) traces = 'console';
  const metrics = metricsList?.includes('otlp') ?? false;
  const logs = logsList?.includes('otlp') ?? false;
  if (traces === undefined && !metrics && !logs) return undefined;
  checkProtocol(env);
  return { traces, metrics, logs };
}

/** OTLP over HTTP with protobuf (the specification's default) is what the exporters speak. */
function checkProtocol(env: NodeJS.ProcessEnv): void {
  for (const name of [
    'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
    'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL',
    'OTEL_EXPORTER_OTLP_LOGS_PROTOCOL',
    'OTEL_EXPORTER_OTLP_PROTOCOL',
  ]) {
    const raw = env[name]?.trim();
    if (!raw) continue;
    if (raw !== 'http/protobuf') {
      throw new InvalidOptionError(
        name,
        `${JSON.stringify(raw)} is not supported: use http/protobuf (the default, port 4318)`,
      );
    }
  }
}

export type { TraceCarrier };

/** The trace and span id of a `traceparent`, for log records (`traceId`, `spanId`). */
export function traceLogFields(carrier: TraceCarrier | undefined): {
  traceId?: string;
  spanId?: string;
} {
  const m =
    carrier && /^[\da-f]{2}-([\da-f]{32})-([\da-f]{16})-[\da-f]{2}$/.exec(carrier.traceparent);
  return m ? { traceId: m[1]!, spanId: m[2]! } : {};
}

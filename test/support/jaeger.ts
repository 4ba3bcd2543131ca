/**
 * Starts a real Jaeger (all-in-one `cmd/jaeger`, built by `scripts/jaeger.sh`) for one test file,
 * as the OTLP backend of the trace tests:
 *
 *   const jaeger = await startJaeger({ name: 'traces' });
 *   afterAll(() => jaeger.stop());
 *
 * In-memory storage, an OTLP/HTTP receiver and the query API, each on a free loopback port (and
 * nothing on Jaeger's fixed default ports, its own telemetry included), so files can run side by
 * side. Jaeger keeps traces only; the OTLP metrics it receives are served by its Prometheus
 * exporter (`metricsUrl`), and the OTLP log records are printed by its debug exporter into its
 * log (`logText()`), so the tests read those signals back from a real OTLP receiver too. Logs go to `test-artifacts/jaeger/`. Stopped on every path: `stop()` (idempotent),
 * process exit, a terminating signal (managed-process.ts). A missing binary is an error, never a
 * skip.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeTcpPort, safeTail, sleep, startManagedProcess } from './managed-process.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The pinned version; its only source is `scripts/jaeger.version`. */
export const JAEGER_VERSION: string = readFileSync(
  join(repoRoot, 'scripts/jaeger.version'),
  'utf8',
).trim();

export class JaegerError extends Error {
  override name = 'JaegerError';
}

export interface Jaeger {
  /** `http://127.0.0.1:PORT`: what `OTEL_EXPORTER_OTLP_ENDPOINT` points at (OTLP over HTTP). */
  otlpEndpoint: string;
  /** `http://127.0.0.1:PORT`: the query service (`/api/traces`, `/api/services`). */
  queryUrl: string;
  /** `http://127.0.0.1:PORT/metrics`: the OTLP metrics received, in Prometheus text. */
  metricsUrl: string;
  logFile: string;
  /** Jaeger's log so far (the debug exporter's print of each OTLP log record received). */
  logText(): string;
  /** Traces of `service`, newest first, as Jaeger's HTTP API gives them. */
  traces(service: string, tags?: Record<string, string>): Promise<JaegerTrace[]>;
  stop(): Promise<void>;
}

/** A trace as `/api/traces` returns it (the fields the tests read). */
export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string; tags: JaegerTag[] }>;
}

export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: { refType: string; traceID: string; spanID: string }[];
  startTime: number;
  duration: number;
  tags: JaegerTag[];
  processID: string;
  logs: { timestamp: number; fields: JaegerTag[] }[];
}

export interface JaegerTag {
  key: string;
  type: string;
  value: unknown;
}

/** `JAEGER_BIN` if set, else the cache path `scripts/jaeger.sh` fills; throws when absent. */
export function resolveJaegerBinary(): string {
  const fromEnv = process.env.JAEGER_BIN;
  if (fromEnv) {
    if (!existsSync(fromEnv)) {
      throw new JaegerError(
        `JAEGER_BIN=${fromEnv} does not exist. Unset it, or run scripts/jaeger.sh.`,
      );
    }
    return fromEnv;
  }
  const cacheRoot = process.env.AGENTSTATE_CACHE ?? join(homedir(), '.cache/agentstate');
  const cached = join(cacheRoot, 'jaeger', JAEGER_VERSION, 'jaeger');
  if (!existsSync(cached)) {
    throw new JaegerError(
      `jaeger ${JAEGER_VERSION} not found at ${cached}. Run scripts/jaeger.sh (builds it with Go, ~10 min) or set JAEGER_BIN.`,
    );
  }
  return cached;
}

type Ports = { otlp: number; query: number; queryGrpc: number; prometheus: number };

function config(ports: Ports): string {
  // Only what the tests use: traces in, kept in memory, read back over HTTP. Jaeger's own
  // metrics would listen on a fixed port (8888), so they are off.
  return `
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
    metrics:
      receivers: [otlp]
      exporters: [prometheus]
    logs:
      receivers: [otlp]
      exporters: [debug]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:${ports.query}
    grpc:
      endpoint: 127.0.0.1:${ports.queryGrpc}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${ports.otlp}
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
  prometheus:
    endpoint: 127.0.0.1:${ports.prometheus}
  debug:
    verbosity: detailed
`;
}

export async function startJaeger(options: { name?: string } = {}): Promise<Jaeger> {
  const binary = resolveJaegerBinary();
  const ports: Ports = {
    otlp: await freeTcpPort(),
    query: await freeTcpPort(),
    queryGrpc: await freeTcpPort(),
    prometheus: await freeTcpPort(),
  };
  const name = (options.name ?? 'jaeger').replace(/[^\w.-]+/g, '_');
  const dir = join(repoRoot, 'test-artifacts', 'jaeger');
  mkdirSync(dir, { recursive: true });
  const configFile = join(dir, `${name}-${ports.query}.yaml`);
  writeFileSync(configFile, config(ports));
  const logFile = join(dir, `${name}-${ports.query}.log`);
  const proc = startManagedProcess(binary, [`--config=file:${configFile}`], { logFile });
  const queryUrl = `http://127.0.0.1:${ports.query}`;
  const otlpEndpoint = `http://127.0.0.1:${ports.otlp}`;
  try {
    await Promise.race([
      waitUntilUp(queryUrl, otlpEndpoint, 30_000),
      proc.exited.then(({ code, signal }) => {
        throw new JaegerError(
          `jaeger exited before it was ready (code ${code}, signal ${signal}); log ${logFile}:\n${safeTail(logFile)}`,
        );
      }),
      proc.spawnFailed.then((error) => {
        throw new JaegerError(`cannot start ${binary}: ${error.message}`, { cause: error });
      }),
    ]);
  } catch (error) {
    await proc.stop();
    throw error instanceof JaegerError
      ? error
      : new JaegerError(`jaeger did not come up; log ${logFile}:\n${safeTail(logFile)}`, {
          cause: error,
        });
  }
  return {
    otlpEndpoint,
    queryUrl,
    metricsUrl: `http://127.0.0.1:${ports.prometheus}/metrics`,
    logFile,
    logText: () => readFileSync(logFile, 'utf8'),
    async traces(service, tags) {
      const q = new URLSearchParams({ service, limit: '100', lookback: '1h' });
      if (tags) q.set('tags', JSON.stringify(tags));
      const res = await fetch(`${queryUrl}/api/traces?${q.toString()}`, {
        signal: AbortSignal.timeout(5_000),
      });
      if (!res.ok)
        throw new JaegerError(`GET /api/traces: HTTP ${res.status}: ${await res.text()}`);
      const body = (await res.json()) as { data: JaegerTrace[] | null };
      return body.data ?? [];
    },
    stop: () => proc.stop(),
  };
}

/** Both the query API and the OTLP receiver answer (a POST of no spans is a valid export). */
async function waitUntilUp(queryUrl: string, otlp: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const q = await fetch(`${queryUrl}/api/services`, { signal: AbortSignal.timeout(1_000) });
      await q.body?.cancel();
      const o = await fetch(`${otlp}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"resourceSpans":[]}',
        signal: AbortSignal.timeout(1_000),
      });
      await o.body?.cancel();
      if (q.ok && o.ok) return;
      lastError = new Error(`query HTTP ${q.status}, OTLP HTTP ${o.status}`);
    } catch (error) {
      lastError = error;
    }
    await sleep(100);
  }
  throw new Error(`jaeger did not answer within ${timeoutMs} ms`, { cause: lastError });
}

/** The value of a span's tag, `undefined` when it has none. */
export function tagOf(span: JaegerSpan, key: string): unknown {
  return span.tags.find((t) => t.key === key)?.value;
}

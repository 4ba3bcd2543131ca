/**
 * The worker's health and metrics HTTP server (`agent start`; off in `dev` unless `--port`):
 *
 * - `GET /`        liveness: 200 while the process serves requests (a reconnecting worker with
 *                  live calls must not be restarted by a liveness probe).
 * - `GET /ready`   readiness: 200 only while the worker is registered and can take a job
 *                  (status `available`); 503 with the status while connecting, reconnecting,
 *                  full, draining or stopped.
 * - `GET /worker`  JSON about the worker (see worker-info.ts).
 * - `GET /metrics` Prometheus text (see metrics.ts).
 *
 * A `WorkerGroup` (several agents in one process) is served the same way: `/ready` is 200
 * while every agent is registered, `/worker` lists each agent, and the metrics carry an
 * `agent` label (see group-info.ts).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AgentStateError } from '../errors.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import { WorkerGroup } from '../group/worker-group.ts';
import type { Worker } from '../worker/worker.ts';
import { createGroupMetrics, groupReadiness, workerGroupInfo } from './group-info.ts';
import { createWorkerMetrics, type WorkerMetrics } from './metrics.ts';
import { workerInfo } from './worker-info.ts';
import { otelWanted } from '../telemetry/otel-config.ts';

/** What the endpoints read from the served worker or group. */
interface Served {
  readiness(): { ready: boolean; body: string };
  info(): unknown;
  metrics: WorkerMetrics;
}

function servedWorker(worker: Worker): Served {
  return {
    readiness: () => {
      const status = worker.status;
      return { ready: status === 'available', body: `${status}\n` };
    },
    info: () => workerInfo(worker),
    metrics: createWorkerMetrics(worker),
  };
}

function servedGroup(group: WorkerGroup): Served {
  return {
    readiness: () => groupReadiness(group),
    info: () => workerGroupInfo(group),
    metrics: createGroupMetrics(group),
  };
}

export interface HealthServerOptions {
  /** Default: the worker's `host` option (0.0.0.0). */
  host?: string;
  /** Default: the worker's `port` option (8081); `0` picks a free port. */
  port?: number;
  logger?: Logger;
}

export interface HealthServer {
  readonly host: string;
  /** The bound port (the real one when `0` was asked for). */
  readonly port: number;
  /** `undefined` until a running worker is served. */
  readonly metrics: WorkerMetrics | undefined;
  /** Stops listening, ends open connections, stops following the worker. Idempotent. */
  close(): Promise<void>;
}

/** A bound server that does not serve a worker yet (`/ready` says `starting`). */
export interface BoundHealthServer extends HealthServer {
  /** Starts serving `target`, which must be running (`run()` called). */
  serve(target: Worker | WorkerGroup): void;
}

/**
 * Serves health, readiness, `/worker` and `/metrics` for a running worker or group (call after
 * `run()`). Rejects if the address cannot be bound (e.g. the port is taken).
 */
export async function startHealthServer(
  target: Worker | WorkerGroup,
  options: HealthServerOptions = {},
): Promise<HealthServer> {
  const defaults = target instanceof WorkerGroup ? target.options : target.resolvedOptions;
  const server = await bindHealthServer({
    host: options.host ?? defaults.host,
    port: options.port ?? defaults.port,
    logger: options.logger,
  });
  server.serve(target);
  return server;
}

/**
 * Binds the address first, so that a taken port fails before the worker connects or starts
 * any process; `serve(worker)` then attaches the running worker.
 */
export async function bindHealthServer(
  options: Required<Pick<HealthServerOptions, 'host' | 'port'>> & { logger?: Logger },
): Promise<BoundHealthServer> {
  const { host, port } = options;
  const log = options.logger ?? createLogger();
  let served: Served | undefined;
  // Imported here, not at the top: every job process loads this module (the package's entry
  // exports it) and never serves HTTP; node:http would cost each of them a few ms to start.
  const { createServer } = await import('node:http');
  const server = createServer((req, res) => {
    handle(served, req, res).catch((err: unknown) => {
      log.warn('health server request failed', { path: req.url, error: err });
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  });
  try {
    await listen(server, host, port);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? String(cause);
    throw new AgentStateError(
      `cannot serve health/metrics on ${host}:${port} (${code}); pick another --port, or 0 for a free one`,
      { cause },
    );
  }
  const bound = (server.address() as AddressInfo).port;
  log.info('health server listening', { host, port: bound });
  let closing: Promise<void> | undefined;
  // `/metrics`'s registry also goes out over OTLP when the standard environment asks for it
  // (OTEL_METRICS_EXPORTER=otlp); the SDK is imported only then.
  let stopOtlp: (() => Promise<void>) | undefined;
  const exportOverOtlp = (metrics: WorkerMetrics) => {
    void stopOtlp?.();
    stopOtlp = undefined;
    let wanted: boolean;
    try {
      wanted = otelWanted(process.env, false)?.metrics ?? false;
    } catch (error) {
      log.warn('OTLP metrics not sent: the OpenTelemetry environment is invalid', { error });
      return;
    }
    if (!wanted) return;
    const pending = import('../telemetry/otel-metrics.ts').then(
      ({ startOtlpMetrics }) => startOtlpMetrics(metrics.registry, log),
      (error: unknown) => {
        log.warn('OTLP metrics could not be set up; continuing without them', { error });
        return undefined;
      },
    );
    stopOtlp = () => pending.then((stop) => stop?.());
  };
  return {
    host,
    port: bound,
    get metrics() {
      return served?.metrics;
    },
    serve(target) {
      if (closing) return;
      served?.metrics.dispose();
      served = target instanceof WorkerGroup ? servedGroup(target) : servedWorker(target);
      exportOverOtlp(served.metrics);
    },
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        // The last export reads the registry, so it goes before the registry is cleared.
        const otlpDone = stopOtlp?.() ?? Promise.resolve();
        void otlpDone.then(() => served?.metrics.dispose());
        // Keep-alive connections would hold close() open; nothing is served after stop.
        server.closeAllConnections();
        server.close(() => void otlpDone.then(() => resolve()));
      })),
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

async function handle(
  served: Served | undefined,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, 'text/plain', 'method not allowed\n');
    return;
  }
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/') {
    send(res, 200, 'text/plain', 'OK\n');
    return;
  }
  if (path !== '/ready' && path !== '/worker' && path !== '/metrics') {
    send(res, 404, 'text/plain', 'not found\n');
    return;
  }
  if (!served) {
    send(res, 503, 'text/plain', 'starting\n');
    return;
  }
  if (path === '/ready') {
    const { ready, body } = served.readiness();
    send(res, ready ? 200 : 503, 'text/plain', body);
  } else if (path === '/worker') {
    send(res, 200, 'application/json', `${JSON.stringify(served.info())}\n`);
  } else {
    const text = await served.metrics.text();
    send(res, 200, served.metrics.registry.contentType, text);
  }
}

function send(res: ServerResponse, code: number, type: string, body: string): void {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

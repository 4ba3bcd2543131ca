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
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, type Logger } from '../log.ts';
import type { Worker } from '../worker/worker.ts';
import { createWorkerMetrics, type WorkerMetrics } from './metrics.ts';
import { workerInfo } from './worker-info.ts';

export interface HealthServerOptions {
  /** Default: the worker's resolved `host` (0.0.0.0). */
  host?: string;
  /** Default: the worker's resolved `port` (8081); `0` picks a free port. */
  port?: number;
  logger?: Logger;
}

export interface HealthServer {
  readonly host: string;
  /** The bound port (the real one when `0` was asked for). */
  readonly port: number;
  readonly metrics: WorkerMetrics;
  /** Stops listening, ends open connections, stops following the worker. Idempotent. */
  close(): Promise<void>;
}

/**
 * Serves health, readiness, `/worker` and `/metrics` for a worker that is running (call after
 * `worker.run()`). Rejects if the address cannot be bound (e.g. the port is taken).
 */
export async function startHealthServer(
  worker: Worker,
  options: HealthServerOptions = {},
): Promise<HealthServer> {
  const host = options.host ?? worker.resolvedOptions?.host ?? worker.options.host;
  const port = options.port ?? worker.resolvedOptions?.port ?? worker.options.port;
  const log = options.logger ?? createLogger();
  const metrics = createWorkerMetrics(worker);
  const server = createServer((req, res) => {
    handle(worker, metrics, req, res).catch((err: unknown) => {
      log.warn('health server request failed', { path: req.url, error: err });
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  });
  try {
    await listen(server, host, port);
  } catch (err) {
    metrics.dispose();
    throw err;
  }
  const bound = (server.address() as AddressInfo).port;
  log.info('health server listening', { host, port: bound });
  let closing: Promise<void> | undefined;
  return {
    host,
    port: bound,
    metrics,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        metrics.dispose();
        // Keep-alive connections would hold close() open; nothing is served after stop.
        server.closeAllConnections();
        server.close(() => resolve());
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
  worker: Worker,
  metrics: WorkerMetrics,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, 'text/plain', 'method not allowed\n');
    return;
  }
  const path = (req.url ?? '/').split('?')[0];
  switch (path) {
    case '/':
      send(res, 200, 'text/plain', 'OK\n');
      return;
    case '/ready': {
      const status = worker.status;
      send(res, status === 'available' ? 200 : 503, 'text/plain', `${status}\n`);
      return;
    }
    case '/worker':
      send(res, 200, 'application/json', `${JSON.stringify(workerInfo(worker))}\n`);
      return;
    case '/metrics':
      send(res, 200, metrics.registry.contentType, await metrics.text());
      return;
    default:
      send(res, 404, 'text/plain', 'not found\n');
  }
}

function send(res: ServerResponse, code: number, type: string, body: string): void {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

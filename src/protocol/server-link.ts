/**
 * The `serverLink` actor: one WebSocket to the LiveKit server's `/agent` endpoint at a time.
 * It registers on every (re)connect, translates frames into chart events, sends what the chart
 * asks, and watches liveness with a heartbeat. It never decides to reconnect: it reports
 * `SERVER_LOST` / `SERVER_REFUSED` and the chart chooses (with backoff) when to ask again.
 * Malformed frames are logged and dropped; nothing here throws into the actor system.
 */
import { errorMessage } from '../errors.ts';
import { ServerMessage, WorkerMessage, WorkerPing } from '@livekit/protocol';
import { HttpsProxyAgent } from 'https-proxy-agent';
import WebSocket from 'ws';
import { fromCallback } from 'xstate';
import type {
  ServerLinkCommand,
  ServerLinkInput,
  ServerLinkReport,
} from '../../machines/serverLink.contract.ts';
import { systemClock, type Clock } from '../clock.ts';
import { startHeartbeat, type Heartbeat } from '../heartbeat.ts';
import type { Logger } from '../log/logger.ts';
import { agentEndpoint } from './agent-url.ts';
import {
  commandMessage,
  registerMessage,
  serverReport,
  type RegistrationFields,
} from './messages.ts';
import { redactProxyUrl, type ResolvedProxy } from '../options/proxy.ts';
import { workerToken } from './worker-token.ts';

export interface ServerLinkOptions {
  apiKey: string;
  apiSecret: string;
  registration: RegistrationFields;
  logger: Logger;
  /** How often liveness is checked (WorkerPing + WS ping). Default 10 s. */
  heartbeatInterval?: number;
  /** Silence longer than interval + this ends the connection. Default 5 s. */
  heartbeatTimeout?: number;
  /** Bound on the HTTP upgrade. Default 10 s. */
  handshakeTimeout?: number;
  /** Tunnel through this HTTP(S) proxy (CONNECT), see `src/options/proxy.ts`. */
  proxy?: ResolvedProxy;
  /** Time of the heartbeat. Default: the system clock. */
  clock?: Clock;
}

/** HTTP statuses that retrying cannot fix: bad credentials or not an agent endpoint. */
const FATAL_STATUSES = new Set([400, 401, 403, 404]);
/** Proxy answers to CONNECT that retrying cannot fix: credentials missing or wrong, forbidden. */
const FATAL_PROXY_STATUSES = new Set([401, 403, 407]);
const FATAL_ERRORS = new Set(['ENOTFOUND', 'EAI_NONAME', 'ERR_INVALID_URL']);

export function createServerLink(opts: ServerLinkOptions) {
  const interval = opts.heartbeatInterval ?? 10_000;
  const timeout = opts.heartbeatTimeout ?? 5_000;
  const clock = opts.clock ?? systemClock;
  const log = opts.logger;

  return fromCallback<ServerLinkCommand, ServerLinkInput>(({ input, sendBack, receive }) => {
    let current: Connection | undefined;
    let registeredOnce = false;

    const report = (r: ServerLinkReport) => sendBack(r);

    receive((cmd) => {
      switch (cmd.type) {
        case 'CONNECT_REQUESTED':
          current?.close();
          current = connect();
          return;
        case 'DISCONNECT_REQUESTED':
          current?.close();
          current = undefined;
          return;
        default: {
          const msg = commandMessage(cmd);
          if (!msg) return;
          if (!current?.send(msg)) {
            log.debug('server link down; message not sent', { message: cmd.type });
          }
        }
      }
    });

    function connect(): Connection {
      const endpoint = agentEndpoint(input.url);
      const proxy = opts.proxy;
      const via = proxy
        ? ` through the proxy ${redactProxyUrl(proxy.url)} (from ${proxy.source})`
        : '';
      const conn = new Connection();
      // Only the newest connection may report; a closed one goes quiet.
      const reportIfCurrent = (r: ServerLinkReport) => {
        if (current === conn && !conn.ended) report(r);
      };
      const lose = (reason: string, fatal = false) => {
        if (current !== conn || conn.ended) return;
        conn.close();
        report({ type: fatal ? 'SERVER_REFUSED' : 'SERVER_LOST', reason });
      };

      void workerToken(opts.apiKey, opts.apiSecret).then(
        (token) => {
          if (conn.ended) return;
          // The proxy's answer to CONNECT, so that its refusal is not mistaken for the server's.
          let tunnel: { status: number; text: string } | undefined;
          let agent: HttpsProxyAgent<string> | undefined;
          let ws: WebSocket;
          try {
            if (proxy) {
              agent = new HttpsProxyAgent(proxy.url);
              agent.once('proxyConnect', (res: { statusCode: number; statusText: string }) => {
                tunnel = { status: res.statusCode, text: res.statusText };
              });
            }
            ws = new WebSocket(endpoint, {
              headers: { authorization: `Bearer ${token}` },
              handshakeTimeout: opts.handshakeTimeout ?? 10_000,
              ...(agent ? { agent } : {}),
            });
          } catch (err) {
            lose(`cannot connect to ${endpoint.href}${via}: ${errorMessage(err)}`, true);
            return;
          }
          conn.attach(ws, agent);
          ws.on('unexpected-response', (req, res) => {
            const status = res.statusCode ?? 0;
            res.resume();
            req.destroy();
            if (proxy && tunnel && tunnel.status !== 200) {
              lose(
                `the proxy ${redactProxyUrl(proxy.url)} (from ${proxy.source}) refused the tunnel to ${endpoint.host} [HTTP ${tunnel.status}${tunnel.text ? ` ${tunnel.text}` : ''}]${tunnel.status === 407 ? ': it wants credentials (http://user:password@host:port)' : ''}`,
                FATAL_PROXY_STATUSES.has(tunnel.status),
              );
              return;
            }
            const why =
              status === 401 || status === 403
                ? 'the server rejected the API key/secret (check LIVEKIT_API_KEY and LIVEKIT_API_SECRET)'
                : status === 404
                  ? `${endpoint.href} is not a LiveKit agent endpoint (check LIVEKIT_URL)`
                  : `unexpected HTTP response`;
            lose(`${why} [HTTP ${status}]`, FATAL_STATUSES.has(status));
          });
          ws.on('error', (err: NodeJS.ErrnoException) => {
            const fatal = !registeredOnce && FATAL_ERRORS.has(err.code ?? '');
            lose(`connection to ${endpoint.href}${via} failed: ${errorMessage(err)}`, fatal);
          });
          ws.on('close', (code, reason) => {
            lose(
              `connection closed by the server (code ${code}${reason.length ? `, ${reason.toString()}` : ''})`,
            );
          });
          ws.on('pong', () => conn.heartbeat?.heard());
          ws.on('open', () => {
            conn.send(registerMessage(opts.registration));
            conn.heartbeat = startHeartbeat({
              clock,
              intervalMs: interval,
              silenceLimitMs: interval + timeout,
              ping: () => {
                const ping = new WorkerPing({ timestamp: BigInt(clock.now()) });
                conn.send(new WorkerMessage({ message: { case: 'ping', value: ping } }));
                conn.ping();
              },
              onSilent: () => lose(`no answer from the server for ${interval + timeout} ms`),
            });
          });
          ws.on('message', (data, isBinary) => {
            conn.heartbeat?.heard();
            if (!isBinary) {
              log.warn('ignored a text frame from the server (expected binary protobuf)');
              return;
            }
            let msg: ServerMessage;
            try {
              msg = ServerMessage.fromBinary(toBytes(data));
            } catch (err) {
              log.warn('dropped a malformed frame from the server', { error: errorMessage(err) });
              return;
            }
            if (msg.message.case === 'register') {
              registeredOnce = true;
              reportIfCurrent({
                type: 'REGISTERED',
                workerId: msg.message.value.workerId,
                serverVersion: msg.message.value.serverInfo?.version ?? '',
              });
              return;
            }
            if (msg.message.case === 'pong') return;
            const r = serverReport(msg);
            if (r) reportIfCurrent(r);
            else log.debug('ignored a server message', { case: msg.message.case ?? 'empty' });
          });
        },
        (err: unknown) => lose(`cannot sign the worker token: ${errorMessage(err)}`, true),
      );
      return conn;
    }

    return () => {
      current?.close();
      current = undefined;
    };
  });
}

/** One socket's lifetime: its heartbeat (once open) and whether it has ended. */
class Connection {
  ended = false;
  heartbeat: Heartbeat | undefined;
  #ws: WebSocket | undefined;
  #agent: HttpsProxyAgent<string> | undefined;

  attach(ws: WebSocket, agent: HttpsProxyAgent<string> | undefined): void {
    this.#ws = ws;
    this.#agent = agent;
  }

  send(msg: WorkerMessage): boolean {
    if (this.ended || this.#ws?.readyState !== WebSocket.OPEN) return false;
    this.#ws.send(msg.toBinary());
    return true;
  }

  ping(): void {
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.ping();
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.heartbeat?.stop();
    // One agent per connection: closing it releases its listener and any pooled proxy socket.
    this.#agent?.removeAllListeners('proxyConnect');
    this.#agent?.destroy();
    const ws = this.#ws;
    if (!ws) return;
    // Keep an error listener: a socket closed mid-handshake may still emit one.
    ws.removeAllListeners();
    ws.on('error', () => undefined);
    if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'worker closing');
    else ws.terminate();
  }
}

function toBytes(data: WebSocket.RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

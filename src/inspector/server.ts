/**
 * The live inspector server: one page and a WebSocket on 127.0.0.1, fed by XState's `inspect`
 * stream. Loopback only and no CDN: context can hold job tokens, and `agent dev` must work
 * offline. Nothing here runs unless `startInspector` is called, and the feed does no
 * serializing while no page is open.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import type { InspectionEvent } from 'xstate';
import { createInspectorFeed } from './feed.ts';
import type { InspectorMessage } from './messages.ts';

export interface InspectorOptions {
  /** Default 0: a free port (printed by the CLI). */
  port?: number;
  /** Only loopback addresses are accepted: the page shows internals and has no login. */
  host?: '127.0.0.1' | 'localhost' | '::1';
  /** Literal values scrubbed from everything the page receives (e.g. the API secret). */
  secrets?: readonly string[];
  /** How long changes are batched before they are sent (ms). Default 50. */
  flushInterval?: number;
}

export interface Inspector {
  /** `http://127.0.0.1:<port>/` */
  url: string;
  /** Pass as `inspect` to `createActor` (or the `Worker`'s run config). */
  inspect: (ev: InspectionEvent) => void;
  close(): Promise<void>;
}

/** Static files of the page, by URL path. */
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  '/timeline.css': { file: 'timeline.css', type: 'text/css; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/views.js': { file: 'views.js', type: 'text/javascript; charset=utf-8' },
  '/timeline.js': { file: 'timeline.js', type: 'text/javascript; charset=utf-8' },
};
const PAGE_DIR = new URL('./page/', import.meta.url);

export async function startInspector(options: InspectorOptions = {}): Promise<Inspector> {
  const host = options.host ?? '127.0.0.1';
  if (!['127.0.0.1', 'localhost', '::1'].includes(host)) {
    throw new RangeError(`inspector host must be a loopback address, got ${String(host)}`);
  }
  const feed = createInspectorFeed({ secrets: options.secrets ?? [] });
  const startedAt = Date.now();
  let port = 0;
  // A request for another host name could come from a DNS-rebinding page; serve only ourselves.
  const isOwnHost = (h: string | undefined): boolean =>
    h === `127.0.0.1:${port}` || h === `localhost:${port}` || h === `[::1]:${port}`;

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const asset = ASSETS[path];
    if (!isOwnHost(req.headers.host) || req.method !== 'GET' || !asset) {
      res.writeHead(isOwnHost(req.headers.host) ? 404 : 403).end();
      return;
    }
    readFile(new URL(asset.file, PAGE_DIR)).then(
      (body) => {
        res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-store' }).end(body);
      },
      () => {
        res.writeHead(500).end();
      },
    );
  });
  const wss = new WebSocketServer({
    server,
    path: '/ws',
    verifyClient: ({ req, origin }: { req: http.IncomingMessage; origin: string }) =>
      isOwnHost(req.headers.host) && (!origin || isOwnHost(origin.replace(/^https?:\/\//, ''))),
  });

  // ws re-emits the HTTP server's errors on the WebSocketServer; without a listener a busy port
  // (EADDRINUSE) would crash the process instead of rejecting `listen` below.
  wss.on('error', () => undefined);

  const send = (ws: WebSocket, messages: readonly InspectorMessage[]): void => {
    if (ws.readyState !== WebSocket.OPEN) return;
    for (const m of messages) ws.send(JSON.stringify(m));
  };
  // Pages that have their picture: only they get the batched changes. A newcomer's picture is
  // built on the same chain as the flushes, so nothing newer reaches it before its history (the
  // page drops events older than the newest it has seen).
  const ready = new WeakSet<WebSocket>();
  const broadcast = (messages: readonly InspectorMessage[]): void => {
    for (const ws of wss.clients) if (ready.has(ws)) send(ws, messages);
  };

  // Changes are batched: a burst of transitions becomes one round of messages.
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();
  const flushNow = (): Promise<void> => {
    timer = undefined;
    flushing = flushing.then(async () => broadcast(await feed.flush())).catch(() => undefined);
    return flushing;
  };
  feed.onChange(() => {
    // Nobody watching: record only. The next page to connect triggers a flush itself.
    if (wss.clients.size === 0 || timer) return;
    timer = setTimeout(() => void flushNow(), options.flushInterval ?? 50);
  });

  wss.on('connection', (ws) => {
    ws.on('error', () => ws.terminate());
    // Bring existing pages up to date, then give the newcomer the whole current picture, before
    // any later flush can run.
    clearTimeout(timer);
    timer = undefined;
    flushing = flushing
      .then(async () => {
        broadcast(await feed.flush());
        send(ws, [{ t: 'hello', startedAt, pid: process.pid }, ...(await feed.picture())]);
        ready.add(ws);
      })
      .catch(() => ws.close(1011, 'inspector failed to build the picture'));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  const shownHost = host === '::1' ? '[::1]' : host;

  let closed: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${port}/`,
    inspect: (ev) => feed.inspect(ev),
    close() {
      closed ??= new Promise<void>((resolve) => {
        if (timer) clearTimeout(timer);
        timer = undefined;
        feed.onChange(() => undefined);
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      });
      return closed;
    },
  };
}

/**
 * The emulator's sockets: one HTTP server on 127.0.0.1 that refuses every plain request and
 * every upgrade but an authorised WebSocket one on `/agent` (`upgrade.ts` decides), and the
 * worker connections it accepted. What a connection says is the emulator's business
 * (`emulator.ts`, through the `ConnectionHost` it gives).
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { WorkerConnection } from './connection.ts';
import type { ConnectionHost, EventInput } from './connection.ts';
import { decideAgentRequest, rawHttpResponse } from './upgrade.ts';

export class AgentEndpoint {
  /** Open connections, registered or not. */
  readonly conns = new Set<WorkerConnection>();
  private readonly server: Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly sockets = new Set<Socket>();
  private connSeq = 0;
  private port = 0;
  private closing = false;

  constructor(
    private readonly keys: Readonly<Record<string, string>>,
    private readonly emit: (event: EventInput) => void,
    private readonly connectionHost: ConnectionHost,
  ) {
    this.server = createServer((req, res) => {
      const d = decideAgentRequest(req, this.keys, false);
      const status = d.ok ? 404 : d.status;
      this.emit({
        type: 'http-refused',
        status,
        path: d.ok ? '/agent' : d.path,
        reason: d.ok ? 'not a websocket upgrade' : d.reason,
      });
      res
        .writeHead(status, { 'content-type': 'text/plain; charset=utf-8' })
        .end(d.ok ? 'not found' : d.reason);
    });
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.upgrade(req, socket, head),
    );
  }

  /** Binds a free port on 127.0.0.1. */
  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** `ws://127.0.0.1:PORT`. */
  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** Kills every connection and socket and closes the server; later upgrades are refused. */
  async close(): Promise<void> {
    this.closing = true;
    for (const c of this.conns) {
      c.dispose();
      c.kill('emulator closed');
    }
    for (const ws of this.wss.clients) ws.terminate();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => {
      this.wss.close(() => this.server.close(() => resolve()));
    });
    // Sockets closed above still fire 'close' callbacks; make sure none left a timer behind.
    for (const c of this.conns) c.dispose();
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const isUpgrade = (req.headers.upgrade ?? '').toLowerCase() === 'websocket';
    const d = decideAgentRequest(req, this.keys, isUpgrade);
    if (!d.ok || this.closing) {
      const status = d.ok ? 404 : d.status;
      const reason = d.ok ? 'emulator closed' : d.reason;
      this.emit({ type: 'http-refused', status, path: d.ok ? '/agent' : d.path, reason });
      socket.end(rawHttpResponse(status, reason));
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (this.closing) {
        ws.terminate();
        return;
      }
      const conn = new WorkerConnection(
        ws,
        {
          ...this.connectionHost,
          onClose: (c, code) => {
            this.conns.delete(c);
            this.connectionHost.onClose(c, code);
          },
        },
        { id: `conn-${++this.connSeq}`, apiKey: d.apiKey, protocol: d.protocol },
      );
      this.conns.add(conn);
      this.emit({
        type: 'connection-opened',
        connectionId: conn.id,
        apiKey: d.apiKey,
        protocol: d.protocol,
      });
    });
  }
}

/**
 * A small TCP proxy on loopback that stands in for a load balancer in front of several
 * livekit-server nodes: each new client connection goes to the first upstream, in the given
 * order, that accepts a TCP connection; when either side closes, so does the other. A node that
 * dies therefore drops its clients, and their reconnects land on the next node.
 *
 *   const lb = await startTcpProxy([{ port: a.ports.http }, { port: b.ports.http }]);
 *   // worker: LIVEKIT_URL=lb.url … lb.connections shows which upstream each connection reached
 *   afterAll(() => lb.close());
 */
import { connect, createServer, type Socket } from 'node:net';

export interface Upstream {
  port: number;
  host?: string;
}

export interface ProxiedConnection {
  /** Index into the upstream list. */
  upstream: number;
  openedAt: number;
  closedAt: number | undefined;
}

export interface TcpProxy {
  /** `ws://127.0.0.1:PORT`: what a worker is given as its server URL. */
  url: string;
  port: number;
  /** Every connection passed through, in order of arrival. */
  connections: readonly ProxiedConnection[];
  /** Resolves with the next connection that reaches `upstream`, or rejects after `timeoutMs`. */
  waitForConnection(upstream: number, timeoutMs: number): Promise<ProxiedConnection>;
  /** Stops listening and drops every connection. Idempotent. */
  close(): Promise<void>;
}

export async function startTcpProxy(
  upstreams: readonly Upstream[],
  { connectTimeoutMs = 1_000 }: { connectTimeoutMs?: number } = {},
): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const connections: ProxiedConnection[] = [];
  const waiters = new Set<(c: ProxiedConnection) => void>();

  /** Connects to the first upstream that answers; undefined if none does. */
  const dial = async (): Promise<{ socket: Socket; index: number } | undefined> => {
    for (const [index, u] of upstreams.entries()) {
      const socket = await dialOne(u, connectTimeoutMs);
      if (socket) return { socket, index };
    }
    return undefined;
  };

  const server = createServer((client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    client.pause(); // hold the client's bytes until an upstream is there
    void dial().then((up) => {
      if (!up || client.destroyed) {
        up?.socket.destroy();
        client.destroy();
        return;
      }
      const { socket, index } = up;
      sockets.add(socket);
      const record: ProxiedConnection = {
        upstream: index,
        openedAt: Date.now(),
        closedAt: undefined,
      };
      connections.push(record);
      for (const w of waiters) w(record);
      const closeBoth = () => {
        record.closedAt ??= Date.now();
        client.destroy();
        socket.destroy();
      };
      socket.once('close', () => {
        sockets.delete(socket);
        closeBoth();
      });
      socket.on('error', closeBoth);
      client.once('close', closeBoth);
      client.pipe(socket);
      socket.pipe(client);
      client.resume();
    });
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', fail);
      done();
    });
  });
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('the proxy has no address');

  let closing: Promise<void> | undefined;
  return {
    url: `ws://127.0.0.1:${address.port}`,
    port: address.port,
    connections,
    waitForConnection: (upstream, timeoutMs) =>
      new Promise((done, fail) => {
        const timer = setTimeout(() => {
          waiters.delete(onConnection);
          fail(new Error(`no connection reached upstream ${upstream} within ${timeoutMs} ms`));
        }, timeoutMs);
        const onConnection = (c: ProxiedConnection) => {
          if (c.upstream !== upstream) return;
          clearTimeout(timer);
          waiters.delete(onConnection);
          done(c);
        };
        waiters.add(onConnection);
      }),
    close: () =>
      (closing ??= new Promise<void>((done) => {
        for (const s of sockets) s.destroy();
        server.close(() => done());
      })),
  };
}

/** A connected socket, or undefined when the upstream refuses or does not answer in time. */
function dialOne(u: Upstream, timeoutMs: number): Promise<Socket | undefined> {
  return new Promise((done) => {
    const socket = connect({ host: u.host ?? '127.0.0.1', port: u.port });
    const timer = setTimeout(() => fail(), timeoutMs);
    const fail = () => {
      clearTimeout(timer);
      socket.destroy();
      done(undefined);
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      done(socket);
    });
  });
}

/**
 * Starts a real `redis-server` (Debian's; `.ci/run` installs it when a test mentions it) on a free
 * loopback port, with no persistence, for the livekit-server nodes of one test file to share.
 * Resolves once it answers `PING`; stopped on every path like the other harness processes. A
 * missing binary or a server that does not come up is an error, never a skip.
 */
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeTcpPort, safeTail, sleep, startManagedProcess } from './managed-process.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface RedisServer {
  /** `127.0.0.1:PORT`, what livekit-server's `redis.address` takes. */
  address: string;
  port: number;
  pid: number;
  logFile: string;
  /** Sends one inline command (e.g. `HLEN nodes`) and resolves with its first reply line. */
  command(line: string): Promise<string>;
  /** SIGTERM, then SIGKILL. Idempotent. */
  stop(): Promise<void>;
}

export class RedisServerError extends Error {
  override name = 'RedisServerError';
}

/** `REDIS_SERVER_BIN` if set, else Debian's `/usr/bin/redis-server`; throws when absent. */
export function resolveRedisServerBinary(): string {
  const bin = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';
  if (!existsSync(bin)) {
    throw new RedisServerError(
      `redis-server not found at ${bin}. Install Debian's redis-server (apt-get install redis-server; .ci/run does it) or set REDIS_SERVER_BIN.`,
    );
  }
  return bin;
}

export async function startRedisServer(
  options: { name?: string; readyTimeoutMs?: number; port?: number } = {},
): Promise<RedisServer> {
  const binary = resolveRedisServerBinary();
  // A given port: a Redis started again where clients expect it (an outage, then a restart).
  const port = options.port ?? (await freeTcpPort());
  const name = (options.name ?? 'redis').replace(/[^\w.-]+/g, '_');
  const logFile = join(repoRoot, 'test-artifacts', 'redis-server', `${name}-${port}.log`);
  const proc = startManagedProcess(
    binary,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      // Nothing written to disk: each run starts empty and leaves no dump behind.
      '--save',
      '',
      '--appendonly',
      'no',
      '--logfile',
      '',
    ],
    { logFile },
  );
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  try {
    await Promise.race([
      waitForPong(port, readyTimeoutMs),
      proc.exited.then(({ code, signal }) => {
        throw new RedisServerError(
          `redis-server exited before it was ready (code ${code}, signal ${signal}); log ${logFile}:\n${safeTail(logFile)}`,
        );
      }),
      proc.spawnFailed.then((error) => {
        throw new RedisServerError(`cannot start ${binary}: ${error.message}`, { cause: error });
      }),
    ]);
  } catch (error) {
    await proc.stop();
    if (error instanceof RedisServerError) throw error;
    throw new RedisServerError(
      `redis-server did not answer PING on 127.0.0.1:${port} within ${readyTimeoutMs} ms; log ${logFile}:\n${safeTail(logFile)}`,
      { cause: error },
    );
  }
  return {
    address: `127.0.0.1:${port}`,
    port,
    pid: proc.pid,
    logFile,
    command: (line) => inlineCommand(port, line),
    stop: () => proc.stop(),
  };
}

async function waitForPong(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if ((await inlineCommand(port, 'PING')).startsWith('+PONG')) return;
      lastError = new Error('no +PONG');
    } catch (error) {
      lastError = error;
    }
    await sleep(50);
  }
  throw new Error(`no PONG from 127.0.0.1:${port} within ${timeoutMs} ms`, { cause: lastError });
}

/** One inline command over a fresh connection; resolves with the first reply line. */
function inlineCommand(port: number, line: string): Promise<string> {
  return new Promise((done, fail) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1_000, () => socket.destroy(new Error(`${line}: no reply within 1 s`)));
    let reply = '';
    socket.once('connect', () => socket.write(`${line}\r\n`));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) {
        socket.end();
        done(reply.slice(0, reply.indexOf('\r\n')));
      }
    });
    socket.once('error', fail);
    socket.once('close', () => fail(new Error('closed before a reply')));
  });
}

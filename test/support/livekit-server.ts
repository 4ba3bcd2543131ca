/**
 * Starts a real `livekit-server` for one test file.
 *
 *   const server = await startLiveKitServer({ name: 'server-protocol' });
 *   afterAll(() => server.stop());
 *
 * Each server gets its own free loopback ports (HTTP/WS, RTC TCP, RTC UDP) so test files can run in
 * parallel, logs to `test-artifacts/livekit-server/`, and is stopped on every path: `stop()`
 * (idempotent), process exit, or a terminating signal. A missing binary is an error, never a skip.
 * With `redisAddress` it is one node of a cluster (see livekit-cluster.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  freeTcpPort,
  freeUdpPort,
  safeTail,
  sleep,
  startManagedProcess,
} from './managed-process.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The pinned server version, e.g. `v1.13.5`; its only source is `scripts/livekit-server.version`. */
export const LIVEKIT_SERVER_VERSION: string = readFileSync(
  join(repoRoot, 'scripts/livekit-server.version'),
  'utf8',
).trim();

/** `--dev` mode's built-in key pair, spelled out in the config so it cannot drift. */
export const DEV_API_KEY = 'devkey';
export const DEV_API_SECRET = 'secret';

export interface LiveKitServerOptions {
  /** Names the log file; defaults to `livekit-server`. */
  name?: string;
  /** `agents.target_load`: workers at or above it get no jobs. Server default 0.7. */
  targetLoad?: number;
  /** `room.empty_timeout` in seconds. Small by default so rooms from earlier tests go away. */
  emptyTimeoutSeconds?: number;
  /** `room.departure_timeout` in seconds. */
  departureTimeoutSeconds?: number;
  /**
   * `host:port` of a Redis the node shares with other nodes: with it the server runs multi-node
   * (rooms, agent workers and job routing shared over Redis); without it, single-node.
   */
  redisAddress?: string;
  /** Extra YAML appended to the generated config body (top-level keys not set above). */
  extraConfigYaml?: string;
  /** How long to wait for the HTTP port to answer. */
  readyTimeoutMs?: number;
  /** How long `stop()` waits after SIGTERM before SIGKILL. */
  stopTimeoutMs?: number;
}

export interface LiveKitServer {
  /** `ws://127.0.0.1:PORT` — what SDKs and workers connect to. */
  url: string;
  /** `http://127.0.0.1:PORT` — what server API clients (RoomService, AgentDispatch) use. */
  httpUrl: string;
  apiKey: string;
  apiSecret: string;
  ports: { http: number; rtcTcp: number; rtcUdp: number };
  pid: number;
  /** The node's id (`ND_…`), as it logged it at start; `CreateRoom`'s `nodeId` pins a room to it. */
  nodeId: string;
  /** Absolute path of the server's combined stdout/stderr. */
  logFile: string;
  /** SIGTERM, then SIGKILL after `stopTimeoutMs`. Safe to call any number of times. */
  stop(): Promise<void>;
  /** SIGKILL now: the node crashes (for node-loss tests); resolves once it has exited. */
  kill(): Promise<void>;
}

/** Thrown when the binary is missing or the server does not come up. */
export class LiveKitServerError extends Error {
  override name = 'LiveKitServerError';
}

/**
 * `LIVEKIT_SERVER_BIN` if set, else the cache path that `scripts/livekit-server.sh` fills.
 * Throws (rather than letting tests skip) when the binary is not there.
 */
export function resolveLiveKitServerBinary(): string {
  const fromEnv = process.env.LIVEKIT_SERVER_BIN;
  if (fromEnv) {
    if (!existsSync(fromEnv)) {
      throw new LiveKitServerError(
        `LIVEKIT_SERVER_BIN=${fromEnv} does not exist. Unset it, or run scripts/livekit-server.sh and point it at the printed path.`,
      );
    }
    return fromEnv;
  }
  const cacheRoot = process.env.AGENTSTATE_CACHE ?? join(homedir(), '.cache/agentstate');
  const cached = join(cacheRoot, 'livekit-server', LIVEKIT_SERVER_VERSION, 'server');
  if (!existsSync(cached)) {
    throw new LiveKitServerError(
      `livekit-server ${LIVEKIT_SERVER_VERSION} not found at ${cached}. ` +
        `Run scripts/livekit-server.sh (builds it with Go, ~2 min) or set LIVEKIT_SERVER_BIN.`,
    );
  }
  return cached;
}

/** Starts a server and resolves once its HTTP port answers. */
export async function startLiveKitServer(
  options: LiveKitServerOptions = {},
): Promise<LiveKitServer> {
  const binary = resolveLiveKitServerBinary();
  // Free ports are found by binding port 0 and closing, so another process can grab one before the
  // server binds it. When that happens the server exits at once; retry with fresh ports.
  const attempts = 3;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await startOnce(binary, options);
    } catch (error) {
      lastError = error;
      if (!(error instanceof PortInUseError)) throw error;
    }
  }
  throw new LiveKitServerError(`livekit-server could not bind free ports in ${attempts} attempts`, {
    cause: lastError,
  });
}

class PortInUseError extends LiveKitServerError {}

async function startOnce(binary: string, options: LiveKitServerOptions): Promise<LiveKitServer> {
  const ports = {
    http: await freeTcpPort(),
    rtcTcp: await freeTcpPort(),
    rtcUdp: await freeUdpPort(),
    stun: await freeUdpPort(),
  };
  const name = (options.name ?? 'livekit-server').replace(/[^\w.-]+/g, '_');
  const logFile = join(repoRoot, 'test-artifacts', 'livekit-server', `${name}-${ports.http}.log`);
  const proc = startManagedProcess(
    binary,
    ['--dev', '--bind', '127.0.0.1', '--config-body', configBody(ports, options)],
    { logFile, stopTimeoutMs: options.stopTimeoutMs },
  );

  const httpUrl = `http://127.0.0.1:${ports.http}`;
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  let nodeId: string;
  try {
    await Promise.race([
      waitForHttp(httpUrl, readyTimeoutMs),
      proc.exited.then(({ code, signal }) => {
        const log = safeTail(logFile);
        const message = `livekit-server exited before it was ready (code ${code}, signal ${signal}); log ${logFile}:\n${log}`;
        throw /address already in use/i.test(log)
          ? new PortInUseError(message)
          : new LiveKitServerError(message);
      }),
      proc.spawnFailed.then((error) => {
        throw new LiveKitServerError(`cannot start ${binary}: ${error.message}`, { cause: error });
      }),
    ]);
    nodeId = readNodeId(logFile);
  } catch (error) {
    await proc.stop();
    if (error instanceof LiveKitServerError) throw error;
    throw new LiveKitServerError(
      `livekit-server did not answer on ${httpUrl} within ${readyTimeoutMs} ms; log ${logFile}:\n${safeTail(logFile)}`,
      { cause: error },
    );
  }

  return {
    url: `ws://127.0.0.1:${ports.http}`,
    httpUrl,
    apiKey: DEV_API_KEY,
    apiSecret: DEV_API_SECRET,
    ports,
    pid: proc.pid,
    nodeId,
    logFile,
    stop: () => proc.stop(),
    kill: () => proc.kill(),
  };
}

/** The node id (`ND_…`) the server logs as it starts, before its HTTP port answers. */
function readNodeId(logFile: string): string {
  const match = /"nodeID": "(ND_\w+)"/.exec(readFileSync(logFile, 'utf8'));
  if (!match) {
    throw new LiveKitServerError(
      `livekit-server logged no nodeID before answering; log ${logFile}:\n${safeTail(logFile)}`,
    );
  }
  return match[1]!;
}

function configBody(
  ports: { http: number; rtcTcp: number; rtcUdp: number; stun: number },
  options: LiveKitServerOptions,
): string {
  // node_ip pins the advertised ICE address to loopback (otherwise the server picks the first
  // non-loopback IPv4, which may not be routable from the test's client in a sandbox).
  const lines = [
    `port: ${ports.http}`,
    'keys:',
    `  ${DEV_API_KEY}: ${DEV_API_SECRET}`,
    'rtc:',
    `  tcp_port: ${ports.rtcTcp}`,
    `  udp_port: ${ports.rtcUdp}`,
    '  node_ip: 127.0.0.1',
    '  use_external_ip: false',
    '  enable_loopback_candidate: true',
    // The server hands its clients STUN servers, public ones by default
    // (global.stun.twilio.com, stun.l.google.com). Every peer connection then resolves them:
    // where that DNS answers nothing (a sandbox), each lookup holds a libwebrtc `AsyncResolver`
    // thread until it times out, and a process that joins rooms in a loop (the bench's users,
    // a reused job process) gathers hundreds of them. One on loopback, by address, needs no
    // lookup; the ICE that matters here is the loopback candidate.
    `  stun_servers: ['127.0.0.1:${ports.stun}']`,
    'room:',
    `  empty_timeout: ${options.emptyTimeoutSeconds ?? 10}`,
    `  departure_timeout: ${options.departureTimeoutSeconds ?? 2}`,
    'agents:',
    `  target_load: ${options.targetLoad ?? 0.7}`,
  ];
  if (options.redisAddress) lines.push('redis:', `  address: ${options.redisAddress}`);
  if (options.extraConfigYaml) lines.push(options.extraConfigYaml);
  return lines.join('\n') + '\n';
}

async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await response.body?.cancel();
      if (response.ok) return;
      lastError = new Error(`HTTP ${response.status}`);
    } catch (error) {
      lastError = error;
    }
    await sleep(100);
  }
  throw new Error(`no answer from ${url} within ${timeoutMs} ms`, { cause: lastError });
}

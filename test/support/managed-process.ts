/**
 * A long-running helper process for tests (livekit-server, redis-server): spawned with its output
 * written straight to a log file, stopped with SIGTERM then SIGKILL, and killed with the test
 * process on every path (`stop()`, process exit, a terminating signal). Plus the free-port and
 * log-tail helpers the harnesses share.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';

export interface ManagedProcess {
  child: ChildProcess;
  pid: number;
  logFile: string;
  /** Resolves with the exit code and signal once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the spawn error (binary missing, not executable); never resolves otherwise. */
  spawnFailed: Promise<Error>;
  hasExited(): boolean;
  /** SIGTERM, then SIGKILL after `stopTimeoutMs`. Safe to call any number of times. */
  stop(): Promise<void>;
  /** SIGKILL now (a crash, for fault tests); resolves once it has exited. */
  kill(): Promise<void>;
}

/** Thrown when a managed process does not stop even after SIGKILL. */
export class ManagedProcessError extends Error {
  override name = 'ManagedProcessError';
}

export function startManagedProcess(
  binary: string,
  args: readonly string[],
  { logFile, stopTimeoutMs = 5_000 }: { logFile: string; stopTimeoutMs?: number },
): ManagedProcess {
  mkdirSync(dirname(logFile), { recursive: true });
  // The child writes straight to the file (no pipe through this process), so a chatty debug log
  // can never fill a pipe buffer and stall it while a test is blocked.
  const logFd = openSync(logFile, 'w');
  let child: ChildProcess;
  try {
    child = spawn(binary, args, { stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd);
  }

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
    child.once('exit', (code, signal) => done({ code, signal }));
  });
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
    liveChildren.delete(child);
  });
  const spawnFailed = new Promise<Error>((done) => child.once('error', done));
  liveChildren.add(child);
  installExitGuards();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (hasExited) return;
      child.kill('SIGTERM');
      if (await settlesWithin(exited, stopTimeoutMs)) return;
      child.kill('SIGKILL');
      if (!(await settlesWithin(exited, 2_000))) {
        throw new ManagedProcessError(`${binary} pid ${child.pid} survived SIGKILL`);
      }
    })();
    return stopping;
  };
  const kill = async (): Promise<void> => {
    if (!hasExited) child.kill('SIGKILL');
    if (!(await settlesWithin(exited, 2_000))) {
      throw new ManagedProcessError(`${binary} pid ${child.pid} survived SIGKILL`);
    }
  };

  return {
    child,
    pid: child.pid ?? -1,
    logFile,
    exited,
    spawnFailed,
    hasExited: () => hasExited,
    stop,
    kill,
  };
}

export function freeTcpPort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') done(address.port);
        else fail(new Error('no port from listen(0)'));
      });
    });
  });
}

export function freeUdpPort(): Promise<number> {
  return new Promise((done, fail) => {
    const socket = createSocket('udp4');
    socket.once('error', fail);
    // livekit-server binds its UDP port on every interface, so probe the wildcard address.
    socket.bind(0, () => {
      const { port } = socket.address();
      socket.close(() => done(port));
    });
  });
}

export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((done) => {
    timer = setTimeout(() => done(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

export function safeTail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(log unreadable)';
  }
}

// Processes still running in this test process. A test process that dies without running
// `afterAll` (crash, Ctrl-C, a runner killing its worker) must not leave them behind.
const liveChildren = new Set<ChildProcess>();
let guardsInstalled = false;

function killAllNow(): void {
  for (const child of liveChildren) child.kill('SIGKILL');
  liveChildren.clear();
}

function installExitGuards(): void {
  if (guardsInstalled) return;
  guardsInstalled = true;
  process.once('exit', killAllNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllNow();
      // Adding a listener replaced Node's default "die on this signal"; restore it unless
      // someone else (the test runner) handles the signal.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.once(signal, onSignal);
  }
}

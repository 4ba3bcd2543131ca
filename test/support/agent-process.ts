/**
 * Runs the real `agent` bin as a child process (a real worker process), collecting its JSON log
 * lines so tests can wait for what the worker says it did.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const AGENT_BIN = fileURLToPath(new URL('../../bin/agent.js', import.meta.url));

export interface LogRecord {
  level: string;
  message: string;
  [field: string]: unknown;
}

export interface AgentProcess {
  child: ChildProcess;
  records: LogRecord[];
  /** Raw output (stdout + stderr), for failure messages and secret checks. */
  output(): string;
  waitForLog(pred: (r: LogRecord) => boolean, what: string, timeoutMs?: number): Promise<LogRecord>;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** SIGKILL if still running; idempotent. */
  kill(): void;
}

const running = new Set<AgentProcess>();

export function startAgent(
  args: string[],
  env: Record<string, string | undefined> = {},
): AgentProcess {
  return startLoggedProcess(process.execPath, [AGENT_BIN, ...args], {
    env: { ...process.env, ...env },
  });
}

/**
 * Runs any command that logs like the `agent` bin (e.g. the bin of an installed copy of the
 * package), with exactly `env` and `cwd`.
 */
export function startLoggedProcess(
  command: string,
  args: string[],
  { env, cwd }: { env: NodeJS.ProcessEnv; cwd?: string },
): AgentProcess {
  const child = spawn(command, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const records: LogRecord[] = [];
  let out = '';
  let pending = '';
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    const text = chunk.toString();
    out += text;
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        records.push(JSON.parse(line) as LogRecord);
      } catch {
        // not a log record
      }
    }
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(proc);
      resolve(code ?? signal ?? 'unknown');
      for (const w of waiters) w();
    });
  });
  const proc: AgentProcess = {
    child,
    records,
    output: () => out,
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    waitForLog: (pred, what, timeoutMs = 20_000) =>
      new Promise<LogRecord>((resolve, reject) => {
        const check = () => {
          const hit = records.find(pred);
          if (hit) {
            done();
            resolve(hit);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            done();
            reject(new Error(`agent exited before logging ${what}\n${out.slice(-3000)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(
            new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${out.slice(-3000)}`),
          );
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
  };
  running.add(proc);
  return proc;
}

/** Kills every agent process a test left running. */
export async function killAllAgents(): Promise<void> {
  const all = [...running];
  for (const p of all) p.kill();
  await Promise.all(all.map((p) => p.exited));
}

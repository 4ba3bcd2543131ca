/**
 * Runs the real `agent` bin as a child process (a real worker process), collecting its JSON log
 * lines so tests can wait for what the worker says it did.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The `agent` command from this repo's sources: what `bin/agent.js` runs from the build, run
 * under tsx with agentstate resolved to its sources. The shipped bin itself is tested from a
 * packed tarball (test/package).
 */
export const AGENT_COMMAND: readonly string[] = [
  '--conditions=agentstate-source',
  '--import',
  'tsx',
  fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url)),
];

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

/** Where and how to run the command: by default the repo's sources from the repo root. */
export interface StartAgentOptions {
  /** Node arguments before `args` (default AGENT_COMMAND); e.g. an installed `node_modules/.bin/agent`. */
  command?: readonly string[];
  cwd?: string;
  /** `false`: the child gets exactly `env`, nothing of this process's environment. Default true. */
  inheritEnv?: boolean;
  /**
   * Its own process group (pgid = its pid), so a test can signal the whole group, as systemd or
   * a terminal does, with `process.kill(-pid, signal)` without reaching the test runner.
   */
  detached?: boolean;
}

export function startAgent(
  args: string[],
  env: Record<string, string | undefined> = {},
  options: StartAgentOptions = {},
): AgentProcess {
  // Each worker process gets a job journal of its own, unless the test names one: a worker a
  // test killed must not have its jobs recovered by the next test's worker of that agent name.
  const stateDir = env.AGENTSTATE_STATE_DIR ?? mkdtempSync(join(tmpdir(), 'agentstate-test-'));
  const child = spawn(process.execPath, [...(options.command ?? AGENT_COMMAND), ...args], {
    env:
      options.inheritEnv === false
        ? env
        : { ...process.env, AGENTSTATE_STATE_DIR: stateDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.detached ? { detached: true } : {}),
  });
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
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
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

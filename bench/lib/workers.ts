/**
 * Starts one framework's worker as a child process and follows what it prints: readiness, its
 * worker id, and the bench's `{"bench":"assignment",jobId,t}` lines. Full output goes to
 * test-artifacts/bench/<framework>.log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pythonOf } from './peers.ts';
import { processTree } from './procfs.ts';
import { ORIGINAL_NODE_ENV } from './quiet-rtc.ts';

export type Framework = 'agentstate' | 'agents-js' | 'livekit-agents';
export const FRAMEWORKS: Framework[] = ['agentstate', 'agents-js', 'livekit-agents'];

export interface ServerCreds {
  url: string;
  apiKey: string;
  apiSecret: string;
}

export interface WorkerHandle {
  framework: Framework;
  agentName: string;
  child: ChildProcess;
  pid: number;
  /** Its health/metrics HTTP port (agentstate's /metrics; the peers' own health servers). */
  httpPort: number;
  /** jobId → wall-clock ms when the worker's socket got the JobAssignment. */
  assignments: Map<string, number>;
  /** jobIds our worker logged as ended (agentstate only; peers do not log it at INFO). */
  ended: Set<string>;
  output(): string;
  waitFor(pattern: RegExp, what: string, timeoutMs: number): Promise<void>;
  waitForAssignment(jobId: string, timeoutMs: number): Promise<number | undefined>;
  stop(): Promise<void>;
}

export interface StartOptions {
  repoRoot: string;
  /** Where agentstate's bin and sources are taken from (default: repoRoot). */
  agentstateRoot: string;
  benchDir: string;
  server: ServerCreds;
  idleProcesses: number;
  httpPort: number;
  /** The worker's load threshold (default 1: the bench measures dispatch, not the CPU gate). */
  loadThreshold?: number;
  /** Default `bench-<framework>`. */
  agentName?: string;
  /** Names its log file, test-artifacts/bench/<label>.log (default: the framework). */
  label?: string;
  /** More environment for the fixture (e.g. BENCH_LOAD_POLICY). */
  env?: Record<string, string>;
  /** More `agent start` flags (agentstate only), e.g. `--jobs-per-process`. */
  extraArgs?: string[];
  /**
   * The `node` both Node frameworks' workers run on (their job processes are forked from them,
   * on the same binary). Default: the bench's own.
   */
  node?: string;
  /**
   * agentstate only: an elastic warm pool (`elasticIdleProcesses`) between these instead of
   * `idleProcesses` fixed (a `--num-idle-processes` flag would fix the pool again).
   */
  elasticPool?: { min: number; max: number };
}

function commandFor(fw: Framework, o: StartOptions): { cmd: string; args: string[] } {
  switch (fw) {
    case 'agentstate':
      return {
        cmd: o.node ?? process.execPath,
        args: [
          join(o.agentstateRoot, 'bin/agent.js'),
          'start',
          join(o.agentstateRoot, 'bench/agents/agentstate.ts'),
          ...(o.elasticPool ? [] : ['--num-idle-processes', String(o.idleProcesses)]),
          '--load-threshold',
          String(o.loadThreshold ?? 1),
          ...(o.extraArgs ?? []),
        ],
      };
    case 'agents-js':
      return {
        cmd: o.node ?? process.execPath,
        args: [join(o.benchDir, 'peers/js/agent.mjs'), 'start'],
      };
    case 'livekit-agents':
      return {
        cmd: pythonOf(o.benchDir),
        args: ['-m', 'livekit.agents', 'start', join(o.benchDir, 'agents/livekit_agents_py.py')],
      };
  }
}

const READY: Record<Framework, RegExp> = {
  agentstate: /registered with the server/,
  'agents-js': /registered worker/,
  'livekit-agents': /registered worker/,
};

export async function startWorker(fw: Framework, o: StartOptions): Promise<WorkerHandle> {
  const agentName = o.agentName ?? `bench-${fw}`;
  const { cmd, args } = commandFor(fw, o);
  const logDir = join(o.repoRoot, 'test-artifacts', 'bench');
  mkdirSync(logDir, { recursive: true });
  const logFile = createWriteStream(join(logDir, `${o.label ?? fw}.log`));
  const child = spawn(cmd, args, {
    cwd: o.repoRoot,
    env: {
      ...process.env,
      LIVEKIT_URL: o.server.url,
      LIVEKIT_API_KEY: o.server.apiKey,
      LIVEKIT_API_SECRET: o.server.apiSecret,
      BENCH_AGENT_NAME: agentName,
      BENCH_IDLE: String(o.idleProcesses),
      BENCH_LOAD_THRESHOLD: String(o.loadThreshold ?? 1),
      BENCH_HTTP_PORT: String(o.httpPort),
      ...(o.elasticPool ? { BENCH_ELASTIC_POOL: `${o.elasticPool.min},${o.elasticPool.max}` } : {}),
      ...o.env,
      LOG_LEVEL: undefined,
      NODE_ENV: ORIGINAL_NODE_ENV,
      PYTHONUNBUFFERED: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const assignments = new Map<string, number>();
  const ended = new Set<string>();
  let out = '';
  let pending = '';
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    const text = chunk.toString();
    logFile.write(text);
    out = (out + text).slice(-200_000);
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        if (rec.bench === 'assignment' && typeof rec.jobId === 'string') {
          assignments.set(rec.jobId, Number(rec.t));
        } else if (rec.message === 'job ended' && typeof rec.jobId === 'string') {
          ended.add(rec.jobId);
        }
      } catch {
        // not JSON
      }
    }
    for (const w of waiters) w();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
    for (const w of waiters) w();
  });

  const waitUntil = (ok: () => boolean, what: string, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (ok()) {
          finish();
          resolve();
        } else if (hasExited) {
          finish();
          reject(new Error(`${fw} worker exited while waiting for ${what}:\n${out.slice(-3000)}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${fw}: no ${what} within ${timeoutMs} ms:\n${out.slice(-3000)}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  const handle: WorkerHandle = {
    framework: fw,
    agentName,
    child,
    pid: child.pid ?? -1,
    httpPort: o.httpPort,
    assignments,
    ended,
    output: () => out,
    waitFor: (pattern, what, timeoutMs) => waitUntil(() => pattern.test(out), what, timeoutMs),
    waitForAssignment: async (jobId, timeoutMs) => {
      try {
        await waitUntil(() => assignments.has(jobId), `assignment of ${jobId}`, timeoutMs);
      } catch {
        return undefined;
      }
      return assignments.get(jobId);
    },
    stop: async () => {
      if (hasExited) return;
      // Everything this worker started, so nothing it leaves behind outlives the bench.
      const started = processTree(handle.pid).slice(1);
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGINT'), 3_000);
      const k = setTimeout(() => child.kill('SIGKILL'), 8_000);
      await exited;
      clearTimeout(t);
      clearTimeout(k);
      await new Promise((done) => setTimeout(done, 1_000));
      for (const p of started) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      logFile.end();
    },
  };
  await handle.waitFor(READY[fw], 'registration', 60_000);
  return handle;
}

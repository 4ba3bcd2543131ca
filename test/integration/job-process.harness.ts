/**
 * Drives a real jobProcess actor (the chart provided with the real tinypool host) from a tiny
 * parent that records every report with its time, and a logger that records every record.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, expect } from 'vitest';
import { createActor, setup, spawnChild, type AnyActorRef } from 'xstate';
import type { JobProcessReport, RunningJobInfo } from '../../machines/jobProcess.contract.ts';
import {
  jobProcessMachine,
  type JobProcessMachineInput,
} from '../../machines/jobProcess.machine.ts';
import type { LogFields, Logger } from '../../src/log/logger.ts';
import { createProcessHost, type ProcessHostConfig } from '../../src/job-host/process-host.ts';

export const fixture = (name: string) =>
  fileURLToPath(new URL(`../fixtures/agents/${name}.ts`, import.meta.url));

/** Orders log records and reports against each other (both are numbered from one counter). */
let order = 0;

export interface LogRecord {
  level: string;
  message: string;
  fields: LogFields;
  /** When it arrived, relative to the other records and the reports. */
  order: number;
}

export function recordingLogger(records: LogRecord[], base: LogFields = {}): Logger {
  const at =
    (level: string) =>
    (message: string, fields: LogFields = {}) =>
      records.push({ level, message, fields: { ...base, ...fields }, order: ++order });
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => recordingLogger(records, { ...base, ...more }),
  };
}

export function jobInfo(metadata: object, id = 'J1'): RunningJobInfo {
  return {
    jobId: id,
    job: { id, type: 'JT_ROOM', room: { name: 'room-1' }, metadata: JSON.stringify(metadata) },
    acceptArguments: { name: '', identity: `agent-${id}`, metadata: '', attributes: {} },
    url: 'ws://127.0.0.1:9',
    token: 'not-a-token',
    workerId: 'W1',
  };
}

export interface Timed {
  report: JobProcessReport;
  at: number;
  /** When it arrived, relative to the other reports and the log records. */
  order: number;
}

export function startProcess(
  host: Omit<Partial<ProcessHostConfig>, 'agentModule'> & { agentModule: string },
  input: Partial<JobProcessMachineInput> = {},
) {
  const reports: Timed[] = [];
  const logs: LogRecord[] = [];
  const waiters: (() => void)[] = [];
  const logic = jobProcessMachine.provide({
    actors: {
      processHost: createProcessHost({
        logger: recordingLogger(logs),
        shutdownCallbackTimeout: 2000,
        memoryWarnMb: 0,
        memoryLimitMb: 0,
        pingInterval: 100,
        pingTimeout: 5000,
        memorySampleInterval: 100,
        env: { AGENTSTATE_TEST_MARKER: 'passed-through' },
        ...host,
        agentModule: pathToFileURL(host.agentModule),
      }),
    },
  });
  const parent = setup({
    types: { events: {} as JobProcessReport },
    actors: { jobProcess: logic },
  }).createMachine({
    entry: spawnChild('jobProcess', {
      id: 'proc-1',
      systemId: 'proc-1',
      input: {
        procId: 'proc-1',
        initializeTimeout: 10_000,
        shutdownTimeout: 3000,
        terminateTimeout: 2000,
        killTimeout: 2000,
        ...input,
      },
    }),
    on: {
      '*': {
        actions: ({ event }) => {
          if (event.type.startsWith('xstate.')) return;
          reports.push({ report: event, at: Date.now(), order: ++order });
          for (const w of waiters.splice(0)) w();
        },
      },
    },
  });
  const root = createActor(parent).start();
  const child = root.system.get('proc-1') as AnyActorRef;

  const h = {
    reports,
    logs,
    child,
    root,
    types: () => reports.map((r) => r.report.type),
    /** Resolves with the first report of this type (waiting up to `ms`). */
    async waitFor<T extends JobProcessReport['type']>(
      type: T,
      ms = 15_000,
    ): Promise<Extract<JobProcessReport, { type: T }> & { at: number; order: number }> {
      const deadline = Date.now() + ms;
      for (;;) {
        const hit = reports.find((r) => r.report.type === type);
        if (hit) {
          const report = hit.report as Extract<JobProcessReport, { type: T }>;
          return { ...report, at: hit.at, order: hit.order };
        }
        const left = deadline - Date.now();
        if (left <= 0)
          throw new Error(
            `no ${type} within ${ms} ms; got ${h.types().join(', ')}; state ${JSON.stringify(child.getSnapshot().value)}`,
          );
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    },
    state: () => child.getSnapshot().value as unknown,
    pid: () => child.getSnapshot().context.pid as number | undefined,
    log: (message: string) => logs.find((l) => l.message === message),
    stop: () => root.stop(),
  };
  return h;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids of the live (non-zombie) children of this test process. */
export function childPids(): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === process.pid && fields[0] !== 'Z') out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export async function until(cond: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
}

/**
 * Registers an `afterEach` that stops every process started through the returned `start` and
 * checks that no job process outlives its test.
 */
export function useProcesses(): typeof startProcess {
  const started: ReturnType<typeof startProcess>[] = [];
  afterEach(async () => {
    for (const h of started.splice(0)) h.stop();
    expect(await until(() => childPids().length === 0)).toBe(true);
  });
  return (...args) => {
    const h = startProcess(...args);
    started.push(h);
    return h;
  };
}

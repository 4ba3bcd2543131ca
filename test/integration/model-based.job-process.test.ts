/**
 * System-level model-based tests of the jobProcess chart: paths generated from the jobProcess
 * model (test/model/jobProcess.model.ts) — the shortest to every state, and the shortest taking
 * every transition a real stimulus can take — each drive ONE real job process (`proc-1`) of a
 * real `Worker` against the emulator. Model events map to real stimuli (`gated-agent.ts` makes the
 * process's behaviour a stimulus the test gives when the path says so):
 *
 * | model event | real stimulus |
 * | --- | --- |
 * | START_WARM / START_FOR_JOB | a worker keeping one spare / a dispatch to a worker keeping none |
 * | PREWARM_OK / PREWARM_FAIL | the prewarm is told to succeed / to throw |
 * | INIT_TIMEOUT | none given: the prewarm hangs past a short `initializeProcessTimeout` |
 * | LAUNCH_REQUESTED | a dispatch while the process is the idle spare |
 * | JOB_RETURNED_CLEAN | the entrypoint is told to return (the worker reuses processes: `jobsPerProcess` 2) |
 * | JOB_RETURNED / JOB_THREW | the same, with a shutdown callback that throws (not clean: not reused) / the entrypoint throws |
 * | SHUTDOWN | the server terminates the job (emulator), or the worker recycles its idle processes |
 * | SHUTDOWN_TIMEOUT | the job's shutdown callback blocks past a short `shutdownProcessTimeout` |
 * | (while shutting down) | the shutdown callback blocks (then PING_TIMEOUT needs nothing more) or never returns (CRASH, MEMORY_LIMIT) |
 * | CRASH | `process.kill(pid, 'SIGKILL')` |
 * | PING_TIMEOUT | the process blocks its event loop (short ping timeout via `jobProcessLogic`) |
 * | MEMORY_LIMIT | the process allocates past `jobMemoryLimitMb` |
 *
 * What a real process does by itself (`SPAWNED`, `JOB_CONFIRMED`, `EXIT`) is automatic: the
 * model takes it as soon as it is enabled, and the test waits for the real process to settle.
 * After every settle the real process's states, and the reports it sent the worker, are
 * checked against the model. Coverage is recorded from the real actors' inspection stream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getInitialSnapshot,
  getNextSnapshot,
  type AnyMachineSnapshot,
  type InspectionEvent,
} from 'xstate';
import { createTestModel } from 'xstate/graph';
import type { JobProcessReport } from '../../machines/jobProcess.contract.ts';
import { jobProcessMachine } from '../../machines/jobProcess.machine.ts';
import { jobRequestMachine } from '../../machines/jobRequest.machine.ts';
import { workerMachine } from '../../machines/worker.machine.ts';
import { Worker, WorkerOptions } from '../../src/index.ts';
import { createLogger } from '../../src/log/logger.ts';
import {
  createJobProcessLogic,
  type JobProcessOptions,
} from '../../src/job-host/job-process-logic.ts';
import { startEmulator, type Emulator } from '../../src/testing/index.ts';
import { Gate } from '../fixtures/model/gate.ts';
import { CoverageRecorder, summaryLine, writeCoverageReport } from '../model/chart-coverage.ts';
import {
  jobProcessModel,
  MODEL_JOBS_PER_PROCESS,
  serializeJobProcessModel,
  type JobProcessModelContext,
  type JobProcessModelEvent,
} from '../model/jobProcess.model.ts';
import { UNREACHABLE } from '../model/unreachable.ts';
import { eventually, isAlive } from '../support/emulated-worker.ts';
import { fileURLToPath, pathToFileURL } from 'node:url';

type EventType = JobProcessModelEvent['type'];
type ModelSnapshot = AnyMachineSnapshot & { context: JobProcessModelContext };

const gatedAgent = fileURLToPath(new URL('../fixtures/model/gated-agent.ts', import.meta.url));

/** Under test: the first process the worker starts. */
const TARGET = 'proc-1';
/** RSS limit of the memory path, and what the process allocates past its baseline to cross it. */
const MEMORY_LIMIT_MB = 300;
const HOG_MB = 400;

const EVENT_TYPES = Object.keys({
  START_WARM: 1,
  START_FOR_JOB: 1,
  SPAWNED: 1,
  PREWARM_OK: 1,
  PREWARM_FAIL: 1,
  INIT_TIMEOUT: 1,
  SILENCE_MEASURED: 1,
  PONGS_SINCE_LAUNCH: 1,
  LAUNCH_REQUESTED: 1,
  JOB_CONFIRMED: 1,
  JOB_RETURNED: 1,
  JOB_RETURNED_CLEAN: 1,
  JOB_THREW: 1,
  SHUTDOWN: 1,
  SHUTDOWN_TIMEOUT: 1,
  KILL: 1,
  CRASH: 1,
  PING_TIMEOUT: 1,
  MEMORY_LIMIT: 1,
  EXIT: 1,
  TERMINATE_TIMEOUT: 1,
  KILL_TIMEOUT: 1,
} satisfies Record<EventType, 1>) as EventType[];

const AUTOMATIC: ReadonlySet<EventType> = new Set([
  'SPAWNED',
  'JOB_CONFIRMED',
  'SILENCE_MEASURED',
  'EXIT',
]);

/** Model events no real stimulus produces at system level, and why (said in the report too). */
const NOT_PRODUCED: Readonly<Partial<Record<EventType, string>>> = {
  KILL:
    'the worker asks for a kill only when it stops, and a stopped worker stops its process actors ' +
    'with it, so no real chart ever sees the exit that follows (the chart-level tests take it)',
  TERMINATE_TIMEOUT:
    'never needed: a real process always exits when its host tells it to (`terminate`) here, and the exit is automatic',
  PONGS_SINCE_LAUNCH:
    'a child that answers pings has said `started` first (it is written before anything else), ' +
    'so no real one is unconfirmed at its deadline while answering',
  KILL_TIMEOUT:
    'SIGKILL always ends a real process, so `abandoned` (no exit after SIGKILL) cannot be ' +
    'produced, and the real host answers SILENCE_MEASURE_REQUESTED at once',
};

/**
 * Stimuli that are set up before they happen (a deadline with nothing given in time, a job that
 * ends or stops answering because of how its shutdown was set up): the test does not wait in
 * the state before them, which the real process may leave at once; it still checks the
 * process passed through it.
 */
function happensByItself(from: AnyMachineSnapshot, type: EventType): boolean {
  if (type === 'INIT_TIMEOUT' || type === 'SHUTDOWN_TIMEOUT') return true;
  return (
    from.matches({ running: 'shuttingDown' }) &&
    (type === 'JOB_RETURNED' || type === 'JOB_RETURNED_CLEAN' || type === 'PING_TIMEOUT')
  );
}

function autoEnabled(s: AnyMachineSnapshot, a: EventType): boolean {
  return s.status === 'active' && AUTOMATIC.has(a) && s.can({ type: a });
}

/** The real system is eager: while an automatic event is enabled, nothing else happens first. */
function takes(s: AnyMachineSnapshot, type: EventType): boolean {
  if (s.status !== 'active' || !s.can({ type }) || NOT_PRODUCED[type]) return false;
  const anyAuto = [...AUTOMATIC].some((a) => autoEnabled(s, a));
  return anyAuto ? AUTOMATIC.has(type) : !AUTOMATIC.has(type);
}

const systemModel = createTestModel(jobProcessModel, {
  filterEvents: (s, e) => takes(s, e.type),
  serializeState: (s) => serializeJobProcessModel(s as never),
});

/** The model's states along `events`, recomputed (the graph shares snapshots between paths). */
function walk(events: readonly EventType[]): ModelSnapshot[] {
  let s = getInitialSnapshot(jobProcessModel) as ModelSnapshot;
  const out = [s];
  for (const type of events) {
    s = getNextSnapshot(jobProcessModel, s, { type }) as ModelSnapshot;
    out.push(s);
  }
  return out;
}

const valueKey = (v: unknown): string => JSON.stringify(v);

/** The chart state paths a model state value names (`{"running":"active"}` → `running`, `running.active`). */
function statePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix ? `${prefix}.${value}` : value];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => {
    const p = prefix ? `${prefix}.${k}` : k;
    return [p, ...statePaths(v, p)];
  });
}

/**
 * The shortest path to every jobProcess state the real system can reach, and the shortest path
 * taking every transition a real stimulus can take (per state and event), each run until no
 * automatic event is left; paths that are a prefix of a kept one are dropped.
 */
function systemPaths(): EventType[][] {
  const best = new Map<string, EventType[]>();
  const keep = (key: string, events: EventType[]) => {
    const known = best.get(key);
    if (!known || known.length > events.length) best.set(key, events);
  };
  for (const p of systemModel.getShortestPaths({ allowDuplicatePaths: true })) {
    const events = p.steps.slice(1).map((st) => st.event.type);
    keep(valueKey(p.state.value), events);
    for (const type of EVENT_TYPES) {
      if (!AUTOMATIC.has(type) && takes(p.state, type))
        keep(`${valueKey(p.state.value)} ${type}`, [...events, type]);
    }
  }
  const settled = [...best.values()].map((events) => {
    const out = [...events];
    let state = walk(out).at(-1)!;
    for (;;) {
      const auto = [...AUTOMATIC].find((a) => autoEnabled(state, a));
      if (!auto) break;
      out.push(auto);
      state = getNextSnapshot(jobProcessModel, state, { type: auto }) as ModelSnapshot;
    }
    return out;
  });
  const kept = settled.sort((a, b) => b.length - a.length);
  const names = (p: EventType[]) => p.map((e) => `${e}>`).join('');
  return kept.filter((p, i) => !kept.slice(0, i).some((q) => names(q).startsWith(names(p))));
}

function title(events: readonly EventType[]): string {
  const end = walk(events).at(-1)!;
  return `${TARGET} reaches ${valueKey(end.value)} via ${events.join(' → ')}`;
}

/** The reports to the worker in the model's vocabulary (host commands are not observable here). */
const REPORT_EFFECT = /^(prewarmed|started|ended:|exited:)/;

const recorder = new CoverageRecorder(['worker', 'jobRequest', 'jobProcess']);
const paths = systemPaths();
/** Per path: the states the real target process was seen in. */
const reachedByPath = new Map<string, string[]>();
let emu: Emulator;

beforeAll(async () => {
  emu = await startEmulator({ defaultWaitMs: 15_000 });
});
afterAll(() => emu.close());

let pathNo = 0;

function runPath(events: readonly EventType[]) {
  return async () => {
    const name = title(events);
    recorder.label(name);
    const states = walk(events);
    const agentName = `model-proc-${++pathNo}`;
    const has = (e: EventType) => events.includes(e);
    const gate = new Gate();
    const opts: JobProcessOptions = {
      agentModule: pathToFileURL(gatedAgent),
      jobMemoryWarnMb: 0,
      eventLoopStallThreshold: 0,
      jobMemoryLimitMb: has('MEMORY_LIMIT') ? MEMORY_LIMIT_MB : 0,
      // Short deadlines only where the path waits for them; generous ones elsewhere.
      initializeProcessTimeout: has('INIT_TIMEOUT') ? 1_500 : 20_000,
      shutdownProcessTimeout: has('SHUTDOWN_TIMEOUT') ? 1_500 : 20_000,
    };
    // What the target process did, as seen on its actor and in its reports to the worker.
    const seen: string[] = [];
    const reports: string[] = [];
    let pid: number | undefined;
    const pids = new Set<number>();
    const inspect = (ev: InspectionEvent) => {
      recorder.inspect(ev);
      const snap = (ev as { snapshot?: AnyMachineSnapshot }).snapshot;
      if (
        (ev.type === '@xstate.microstep' || ev.type === '@xstate.snapshot') &&
        snap?.machine?.id === 'jobProcess'
      ) {
        const procPid = (snap.context as { pid?: number }).pid;
        if (procPid) pids.add(procPid);
        if ((ev.actorRef as { id?: string }).id === TARGET) {
          seen.push(valueKey(snap.value));
          pid ??= procPid;
        }
      }
      if (ev.type === '@xstate.event') {
        const r = ev.event as JobProcessReport;
        if (!('procId' in r) || r.procId !== TARGET) return;
        if (r.type === 'PROCESS_PREWARMED') reports.push('prewarmed');
        else if (r.type === 'JOB_STARTED') reports.push('started');
        else if (r.type === 'JOB_ENDED')
          reports.push(`ended:${r.outcome}${r.processKept ? ':kept' : ''}`);
        else if (r.type === 'PROCESS_EXITED')
          reports.push(`exited:${JSON.parse(seen.at(-1) ?? '""')}:${r.failed ? 'failed' : 'ok'}`);
      }
    };
    const worker = new Worker(
      new WorkerOptions({
        entrypointFnc: () => undefined,
        ...opts,
        agentName,
        numIdleProcesses: events[0] === 'START_FOR_JOB' ? 0 : 1,
        maxJobs: 1,
        jobsPerProcess: MODEL_JOBS_PER_PROCESS,
        loadFnc: () => 0,
        wsUrl: emu.url,
        apiKey: emu.apiKey,
        apiSecret: emu.apiSecret,
      }),
      {
        handleSignals: false,
        inspect,
        // A kept process stays idle beside the spare for as long as the path needs it.
        chartTuning: { surplusIdleTimeout: 10 * 60_000 },
        jobProcessLogic: createJobProcessLogic(opts, createLogger({ agentName }), {
          env: gate.env,
          pingInterval: 100,
          pingTimeout: has('PING_TIMEOUT') ? 1_500 : 30_000,
          memorySampleInterval: 100,
        }),
      },
    );
    const done = worker.run().catch(() => undefined);
    const real = () => worker.actor!.getSnapshot();
    const targetJobId = () =>
      Object.values(real().context.jobs).find((j) => j.procId === TARGET)?.jobId;
    const targetPid = () => {
      if (pid === undefined) throw new Error(`${TARGET} has no pid yet`);
      return pid;
    };
    let roomNo = 0;
    const dispatch = () => {
      emu.createDispatch({ room: `${agentName}-room-${++roomNo}`, agentName });
    };

    /** Each stimulus gets the model state it is taken in and the event that follows it. */
    const stimuli: Record<EventType, (from: ModelSnapshot, next: EventType | undefined) => void> = {
      START_WARM: () => undefined, // the worker starts its spare as it starts
      START_FOR_JOB: dispatch,
      LAUNCH_REQUESTED: dispatch,
      PREWARM_OK: () => gate.verdict(targetPid(), 'ok'),
      PREWARM_FAIL: () => gate.verdict(targetPid(), 'fail'),
      INIT_TIMEOUT: () => undefined, // no verdict: the prewarm hangs past its deadline
      JOB_RETURNED: (from) => {
        // While shutting down, the job ends by itself once its shutdown callbacks ran (the
        // SHUTDOWN stimulus made them throw, so the end is not clean).
        if (from.matches({ running: 'active' })) {
          gate.hangShutdown(targetPid(), 'throw');
          gate.command(targetPid(), 'return');
        }
      },
      JOB_RETURNED_CLEAN: (from) => {
        if (from.matches({ running: 'active' })) gate.command(targetPid(), 'return');
      },
      JOB_THREW: () => gate.command(targetPid(), 'throw'),
      SHUTDOWN: (_from, next) => {
        // What the path does while the job shuts down needs the job not to end first: its
        // shutdown callback blocks the process (no report, no pong) or just never returns.
        if (next === 'SHUTDOWN_TIMEOUT' || next === 'PING_TIMEOUT')
          gate.hangShutdown(targetPid(), 'block');
        if (next === 'CRASH' || next === 'MEMORY_LIMIT') gate.hangShutdown(targetPid(), 'wait');
        if (next === 'JOB_RETURNED') gate.hangShutdown(targetPid(), 'throw');
        const jobId = targetJobId();
        if (jobId) expect(emu.terminateJob(jobId), 'the server terminates the job').toBe(true);
        else worker.recycleIdleProcesses('model: shutdown');
      },
      SHUTDOWN_TIMEOUT: () => undefined, // the shutdown callback blocks past the deadline
      CRASH: () => process.kill(targetPid(), 'SIGKILL'),
      PING_TIMEOUT: (from) => {
        // While shutting down, the blocked shutdown callback already keeps pongs from coming.
        if (!from.matches({ running: 'shuttingDown' })) gate.command(targetPid(), 'busy');
      },
      MEMORY_LIMIT: () => gate.command(targetPid(), `hog:${HOG_MB}`),
      SPAWNED: () => undefined,
      JOB_CONFIRMED: () => undefined,
      SILENCE_MEASURED: () => undefined,
      PONGS_SINCE_LAUNCH: () => {
        throw new Error('not produced at system level');
      },
      EXIT: () => undefined,
      KILL: () => {
        throw new Error('not produced at system level');
      },
      TERMINATE_TIMEOUT: () => {
        throw new Error('not produced at system level');
      },
      KILL_TIMEOUT: () => {
        throw new Error('not produced at system level');
      },
    };

    try {
      // Dispatches need a registered worker; the spare (if any) waits in its prewarm meanwhile.
      await eventually(() => worker.id, 'the worker to register', 15_000);
      let mark = 0;
      let passed: string[] = [];
      for (let i = 0; i < events.length; i++) {
        const event = events[i]!;
        const next = events[i + 1];
        const model = states[i + 1]!;
        stimuli[event](states[i]!, next);
        passed.push(valueKey(model.value));
        // Automatic steps run together, and so do those the process takes by itself once set
        // up: check where it settles before the next stimulus the test gives.
        if (next && (AUTOMATIC.has(next) || happensByItself(model, next))) continue;
        const want = valueKey(model.value);
        const wantReports = states
          .slice(1, i + 2)
          .flatMap((s) => s.context.effects)
          .filter((e) => REPORT_EFFECT.test(e));
        const settled = () =>
          passed.every((v) => seen.slice(mark).includes(v)) &&
          seen.at(-1) === want &&
          valueKey(reports) === valueKey(wantReports);
        await eventually(settled, `${TARGET} to settle`, 15_000).catch(() => {
          throw new Error(
            `${TARGET} did not pass ${passed.join(', ')} and settle in ${want} after ${event}, ` +
              `reporting ${wantReports.join(', ')}: it went through ` +
              `${seen.slice(mark).join(', ')} and reported ${reports.join(', ')}`,
          );
        });
        expect(pid !== undefined, 'the pid is known once the process exists').toBe(
          model.context.spawned,
        );
        mark = seen.length;
        passed = [];
      }
      reachedByPath.set(
        name,
        [...new Set(seen.map((v) => JSON.parse(v) as unknown))].flatMap((v) => statePaths(v)),
      );
    } finally {
      await worker.stop('test over');
      await done;
      for (const p of pids) await eventually(() => !isAlive(p), `process ${p} to exit`);
      gate.close();
    }
  };
}

describe('a real job process along the jobProcess model (every state, every producible transition)', () => {
  for (const events of paths) it(title(events), runPath(events), 45_000);
});

describe('system-level jobProcess coverage', () => {
  it('the real processes reached every jobProcess state the paths claim', () => {
    const coverage = writeCoverageReport(
      'integration-system-job-process',
      [workerMachine, jobProcessMachine, jobRequestMachine],
      recorder.observed,
      UNREACHABLE,
    );
    console.log(
      [`system jobProcess paths: ${paths.length}`, ...coverage.map(summaryLine)].join('\n'),
    );
    const observed = recorder.observed.jobProcess?.states ?? {};
    const claimed = new Set(
      paths.flatMap((events) => walk(events).flatMap((s) => statePaths(s.value))),
    );
    claimed.delete('notStarted'); // the model's "no process yet" is not a chart state
    for (const state of claimed) {
      expect(observed[state], `${state} observed on a real job process`).toBeDefined();
    }
    // Every path's own process passed every state its model path did.
    for (const events of paths) {
      const mine = new Set(reachedByPath.get(title(events)) ?? []);
      for (const state of walk(events)
        .slice(1)
        .flatMap((s) => statePaths(s.value))) {
        expect(mine.has(state), `${state} on ${TARGET} of ${title(events)}`).toBe(true);
      }
    }
    // Every chart state except the one no real process can produce.
    const chartStates = Object.keys(jobProcessMachine.states);
    const missing = chartStates.filter((s) => !claimed.has(s));
    expect(missing).toEqual(['abandoned']);
  });
});

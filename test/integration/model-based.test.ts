/**
 * System-level model-based tests: paths generated from the worker model
 * (test/model/worker.model.ts) drive the REAL `Worker`, with real job processes, against the
 * emulator. Model events map to real stimuli (a dispatch, a dropped connection, a load change
 * through a mutable loadFnc, drain, stop, a server termination, `process.kill` of a job or
 * spare process); the events a real system takes by itself (registering, prewarming,
 * accepting, assignment, reconnecting, the drain deadline, a job ending after shutdown) are
 * "automatic": the model takes them as soon as they are enabled, and the test waits for the
 * real worker to settle in the model's state. The real actors are observed for coverage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getNextSnapshot, type AnyMachineSnapshot } from 'xstate';
import { createTestModel } from 'xstate/graph';
import { jobProcessMachine } from '../../machines/jobProcess.machine.ts';
import { jobRequestMachine } from '../../machines/jobRequest.machine.ts';
import { workerMachine } from '../../machines/worker.machine.ts';
import { Worker, WorkerOptions } from '../../src/index.ts';
import { startEmulator, type Emulator } from '../../src/testing/index.ts';
import { CoverageRecorder, summaryLine, writeCoverageReport } from '../model/chart-coverage.ts';
import { UNREACHABLE } from '../model/unreachable.ts';
import {
  serializeWorkerModel,
  workerModel,
  type WorkerModelEventType,
} from '../model/worker.model.ts';
import { eventually, isAlive, scriptedAgent } from '../support/emulated-worker.ts';

const AUTOMATIC: ReadonlySet<WorkerModelEventType> = new Set([
  'REGISTER',
  'SPARE_WARM_OK',
  'ACCEPT',
  'ASSIGN',
  'JOB_PROC_WARM_OK',
  'RECONNECT_DELAY',
  'DRAIN_TIMEOUT',
  'JOB_ENDS',
]);
const STIMULI: ReadonlySet<WorkerModelEventType> = new Set([
  'OFFER',
  'LOAD_HIGH',
  'LOAD_LOW',
  'LOSE_SERVER',
  'DRAIN',
  'FORCE_STOP',
  'TERMINATE',
  'JOB_CRASH',
  'SPARE_CRASH',
]);

/** Whether the real system takes this automatic event by itself in model state `s`. */
function autoEnabled(s: AnyMachineSnapshot, a: WorkerModelEventType): boolean {
  return (
    s.status === 'active' &&
    AUTOMATIC.has(a) &&
    s.can({ type: a }) &&
    // A held job ends by itself only once asked to (the fixture's jobs run until shut down).
    (a !== 'JOB_ENDS' || (s.context as { job: string }).job === 'endingJob')
  );
}

/** The real system is eager: while an automatic event is enabled, nothing else happens first. */
const systemModel = createTestModel(workerModel, {
  filterEvents: (s, e) => {
    if (s.status !== 'active' || !s.can(e)) return false;
    const type = e.type as WorkerModelEventType;
    const anyAuto = [...AUTOMATIC].some((a) => autoEnabled(s, a));
    return anyAuto ? autoEnabled(s, type) : STIMULI.has(type);
  },
  serializeState: (s) => serializeWorkerModel(s as never),
});

type TestPath = ReturnType<typeof systemModel.getShortestPaths>[number];

/** One path per worker state the system reaches: the shortest among those ending there. */
function pathsPerWorkerState(): TestPath[] {
  const best = new Map<string, TestPath>();
  for (const p of systemModel.getShortestPaths({ allowDuplicatePaths: true })) {
    // The states passed on the way count too: a path "reaches" every state on it.
    const key = JSON.stringify(p.state.value);
    const known = best.get(key);
    if (!known || known.steps.length > p.steps.length) best.set(key, p);
  }
  // Drop paths that are a prefix of another kept path (their states are on the longer one).
  // A real run cannot stop in a transient state: let the automatic events run out.
  const settled = [...best.values()].map((p) => {
    const events = p.steps.slice(1).map((st) => st.event);
    let state = p.state;
    for (;;) {
      const auto = [...AUTOMATIC].find((a) => autoEnabled(state, a));
      if (!auto) break;
      events.push({ type: auto });
      state = getNextSnapshot(workerModel, state, { type: auto });
    }
    return systemModel.getPathsFromEvents(events as never)[0]!;
  });
  const kept = settled.sort((a, b) => b.steps.length - a.steps.length);
  const names = (p: TestPath) => p.steps.map((s) => s.event.type).join('>');
  return kept.filter((p, i) => !kept.slice(0, i).some((q) => names(q).startsWith(names(p))));
}

const recorder = new CoverageRecorder(['worker', 'jobRequest', 'jobProcess']);
let emu: Emulator;

beforeAll(async () => {
  emu = await startEmulator({ defaultWaitMs: 15_000 });
});
afterAll(() => emu.close());

function title(path: TestPath): string {
  const events = path.steps.slice(1).map((st) => st.event.type);
  return `reaches ${JSON.stringify(path.state.value)} via ${events.join(' → ')}`;
}

const paths = pathsPerWorkerState();
let pathNo = 0;

function runPath(path: TestPath) {
  return async () => {
    recorder.label(title(path));
    const agentName = `model-${++pathNo}`;
    let load = 0;
    const seen: string[] = [];
    const worker = new Worker(
      new WorkerOptions({
        entrypointFnc: () => undefined,
        agentModule: scriptedAgent,
        agentName,
        numIdleProcesses: 1,
        maxJobs: 1,
        loadThreshold: 0.7,
        loadFnc: () => load,
        drainTimeout: 800,
        wsUrl: emu.url,
        apiKey: emu.apiKey,
        apiSecret: emu.apiSecret,
      }),
      {
        handleSignals: false,
        inspect: (ev) => {
          recorder.inspect(ev);
          const snap = (ev as { snapshot?: AnyMachineSnapshot }).snapshot;
          if (ev.type === '@xstate.microstep' && snap?.machine?.id === 'worker')
            seen.push(JSON.stringify(snap.value));
        },
      },
    );
    const done = worker.run().catch(() => undefined);
    const pids = new Set<number>();
    let jobId: string | undefined;
    let roomNo = 0;
    const real = () => worker.actor!.getSnapshot();
    const jobPid = () => worker.activeJobs[0]?.pid;
    const sparePid = () =>
      Object.values(real().context.procs).find((p) => !p.jobId && p.phase === 'idle')?.pid;

    const stimuli: Partial<Record<WorkerModelEventType, () => Promise<void> | void>> = {
      OFFER: () => {
        emu.createDispatch({ room: `${agentName}-room-${++roomNo}`, agentName });
      },
      LOAD_HIGH: () => {
        load = 0.9;
      },
      LOAD_LOW: () => {
        load = 0.1;
      },
      LOSE_SERVER: () => emu.dropWorker(worker.id!),
      DRAIN: () => {
        void worker.drain('model: drain');
      },
      FORCE_STOP: () => {
        void worker.stop('model: stop');
      },
      TERMINATE: () => {
        emu.terminateJob(jobId!);
      },
      JOB_CRASH: () => {
        process.kill(jobPid()!, 'SIGKILL');
      },
      SPARE_CRASH: () => {
        process.kill(sparePid()!, 'SIGKILL');
      },
    };

    try {
      let pending: WorkerModelEventType[] = [];
      let passed: string[] = [];
      let mark = 0;
      const settle = async (model: AnyMachineSnapshot) => {
        const want = JSON.stringify(model.value);
        const status = model.status === 'done' ? 'done' : 'active';
        // The real worker went through every state the model passed since the last stimulus,
        // and rests where the model rests.
        await eventually(
          () =>
            passed.every((v) => seen.slice(mark).includes(v)) &&
            real().status === status &&
            JSON.stringify(real().value) === want,
          `the worker to pass ${passed.join(', ')} and settle in ${want} after ${pending.join(', ')}`,
          10_000,
        );
        mark = seen.length;
        passed = [];
        for (const p of Object.values(real().context.procs)) if (p.pid) pids.add(p.pid);
        const held = Object.keys(real().context.jobs);
        if (held[0]) jobId = held[0];
      };
      await path.test({
        events: Object.fromEntries(
          [...AUTOMATIC, ...STIMULI].map((type) => [
            type,
            async () => {
              pending.push(type);
              await stimuli[type]?.();
            },
          ]),
        ),
        states: {
          '*': async (state) => {
            const index = path.steps.findIndex((s) => s.state === state);
            if (index > 0) passed.push(JSON.stringify(state.value));
            const next = path.steps[index + 1]?.event.type as WorkerModelEventType | undefined;
            // Automatic steps run together; check where the worker settles before a stimulus.
            if (next && AUTOMATIC.has(next)) return;
            if ([...AUTOMATIC].some((a) => autoEnabled(state as AnyMachineSnapshot, a))) return;
            await settle(state as unknown as AnyMachineSnapshot);
            // The states the model passed through were entered by the real worker too.
            pending = [];
          },
        },
      });
    } finally {
      await worker.stop('test over');
      await done;
      for (const pid of pids) await eventually(() => !isAlive(pid), `process ${pid} to exit`);
    }
  };
}

describe('the real worker along the model (one path per worker state)', () => {
  for (const path of paths) it(title(path), runPath(path), 30_000);
});

describe('system-level chart coverage', () => {
  it('the system paths reached every worker state the model can reach with real stimuli', () => {
    const coverage = writeCoverageReport(
      'integration-system',
      [workerMachine, jobProcessMachine, jobRequestMachine],
      recorder.observed,
      UNREACHABLE,
    );
    console.log([`system paths: ${paths.length}`, ...coverage.map(summaryLine)].join('\n'));
    const reached = new Set(
      paths.flatMap((p) => p.steps.map((s) => JSON.stringify(s.state.value))),
    );
    const observed = recorder.observed.worker?.states ?? {};
    for (const v of reached) {
      for (const [region, sub] of Object.entries(JSON.parse(v) as Record<string, unknown>)) {
        const leaf =
          typeof sub === 'string'
            ? `${region}.${sub}`
            : `${region}.${Object.keys(sub as object)[0]}`;
        expect(observed[leaf], `${leaf} observed on the real worker`).toBeDefined();
      }
    }
  });
});

/**
 * System-level model-based tests: paths generated from the worker model
 * (test/model/worker.model.ts) drive the REAL `Worker`, with real job processes, against the
 * emulator. Model events map to real stimuli (a dispatch, a dropped connection, a load change
 * through a mutable loadFnc, drain, stop, a server termination, `process.kill` of a job or
 * spare process); the events a real system takes by itself (registering, prewarming,
 * accepting, assignment, reconnecting, the drain deadline, a job ending after shutdown) are
 * "automatic": the model takes them as soon as they are enabled, and the test waits for the
 * real worker to settle in the model's state. The real actors are observed for coverage.
 *
 * Two worlds: in the first, prewarms succeed by themselves (one path per worker state). In the
 * second, the agent is `gated-agent.ts`: each prewarm waits until the test tells it to succeed
 * or fail, so a failed prewarm (of a spare, or of a process started for a queued job) is a stimulus,
 * and the respawn after the backoff delay is automatic. There, one path per way into
 * `processes.backingOff` shows the real worker backing off and recovering once a prewarm
 * succeeds again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getNextSnapshot, type AnyMachineSnapshot } from 'xstate';
import { createTestModel } from 'xstate/graph';
import { jobProcessMachine } from '../../machines/jobProcess.machine.ts';
import { jobRequestMachine } from '../../machines/jobRequest.machine.ts';
import { workerMachine } from '../../machines/worker.machine.ts';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, WorkerOptions } from '../../src/index.ts';
import { createLogger } from '../../src/log/logger.ts';
import {
  createJobProcessLogic,
  type JobProcessOptions,
} from '../../src/job-host/job-process-logic.ts';
import { startEmulator, type Emulator } from '../../src/testing/index.ts';
import { Gate } from '../fixtures/model/gate.ts';
import { CoverageRecorder, summaryLine, writeCoverageReport } from '../model/chart-coverage.ts';
import { UNREACHABLE } from '../model/unreachable.ts';
import {
  serializeWorkerModel,
  workerModel,
  type WorkerModelEventType,
} from '../model/worker.model.ts';
import { eventually, isAlive, scriptedAgent } from '../support/emulated-worker.ts';

/** Which model events the real system takes by itself, and which the test causes. */
interface World {
  name: 'eager prewarms' | 'gated prewarms';
  automatic: ReadonlySet<WorkerModelEventType>;
  stimuli: ReadonlySet<WorkerModelEventType>;
}

const STIMULI: WorkerModelEventType[] = [
  'OFFER',
  'LOAD_HIGH',
  'LOAD_LOW',
  'LOSE_SERVER',
  'DRAIN',
  'FORCE_STOP',
  'TERMINATE',
  'JOB_CRASH',
  'SPARE_CRASH',
];

/** The scripted agent: every prewarm succeeds by itself. */
const EAGER: World = {
  name: 'eager prewarms',
  automatic: new Set([
    'REGISTER',
    'PROC_WARM_OK',
    'ACCEPT',
    'ASSIGN',
    'RECONNECT_DELAY',
    'DRAIN_TIMEOUT',
    'JOB_ENDS',
    'SPARE_REFILL',
    'SPARE_REFILL_LATE',
  ]),
  stimuli: new Set(STIMULI),
};

/** The gated agent: the test decides each prewarm; the respawn after a backoff is automatic. */
const GATED: World = {
  name: 'gated prewarms',
  automatic: new Set([
    'REGISTER',
    'ACCEPT',
    'ASSIGN',
    'RECONNECT_DELAY',
    'DRAIN_TIMEOUT',
    'JOB_ENDS',
    'SPAWN_RETRY',
    'SPARE_REFILL',
    'SPARE_REFILL_LATE',
  ]),
  stimuli: new Set([...STIMULI, 'PROC_WARM_OK', 'PROC_WARM_FAIL']),
};

/** Whether the real system takes this automatic event by itself in model state `s`. */
function autoEnabled(world: World, s: AnyMachineSnapshot, a: WorkerModelEventType): boolean {
  return (
    s.status === 'active' &&
    world.automatic.has(a) &&
    s.can({ type: a }) &&
    // A held job ends by itself only once asked to (the fixture's jobs run until shut down).
    (a !== 'JOB_ENDS' || (s.context as { job: string }).job === 'endingJob')
  );
}

/** The real system is eager: while an automatic event is enabled, nothing else happens first. */
function takes(world: World, s: AnyMachineSnapshot, type: WorkerModelEventType): boolean {
  if (s.status !== 'active' || !s.can({ type })) return false;
  const anyAuto = [...world.automatic].some((a) => autoEnabled(world, s, a));
  return anyAuto ? autoEnabled(world, s, type) : world.stimuli.has(type);
}

function systemModelOf(world: World) {
  return createTestModel(workerModel, {
    filterEvents: (s, e) => takes(world, s, e.type),
    serializeState: (s) => serializeWorkerModel(s as never),
  });
}

const systemModel = systemModelOf(EAGER);
const gatedModel = systemModelOf(GATED);

type TestPath = ReturnType<typeof systemModel.getShortestPaths>[number];

/** A real run cannot stop in a transient state: the automatic events run out first. */
function runOut(world: World, events: WorkerModelEventType[]): WorkerModelEventType[] {
  const out = [...events];
  let state = systemModelOf(world).getPathsFromEvents(out.map((type) => ({ type })))[0]!.state;
  for (;;) {
    const auto = [...world.automatic].find((a) => autoEnabled(world, state, a));
    if (!auto) return out;
    out.push(auto);
    state = getNextSnapshot(workerModel, state, { type: auto });
  }
}

const eventsOf = (p: TestPath) => p.steps.slice(1).map((st) => st.event.type);

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
  const settled = [...best.values()].map(
    (p) =>
      systemModel.getPathsFromEvents(
        runOut(EAGER, eventsOf(p)).map((type) => ({ type })) as never,
      )[0]!,
  );
  const kept = settled.sort((a, b) => b.steps.length - a.steps.length);
  const names = (p: TestPath) => p.steps.map((s) => s.event.type).join('>');
  return kept.filter((p, i) => !kept.slice(0, i).some((q) => names(q).startsWith(names(p))));
}

/**
 * With gated prewarms: for each event that moves the processes into `backingOff`, the shortest
 * path ending with it; then the automatic respawn, and the next spare's prewarm succeeding.
 */
function pathsIntoBackoff(): TestPath[] {
  const backingOff = (s: AnyMachineSnapshot) => s.matches({ processes: 'backingOff' });
  const best = new Map<WorkerModelEventType, WorkerModelEventType[]>();
  for (const p of gatedModel.getShortestPaths({ allowDuplicatePaths: true })) {
    if (backingOff(p.state)) continue;
    for (const type of [...GATED.automatic, ...GATED.stimuli]) {
      if (!takes(GATED, p.state, type)) continue;
      if (!backingOff(getNextSnapshot(workerModel, p.state, { type }))) continue;
      const events = [...eventsOf(p), type];
      const known = best.get(type);
      if (!known || known.length > events.length) best.set(type, events);
    }
  }
  return [...best.values()].map((events) => {
    let out = runOut(GATED, events);
    const last = gatedModel.getPathsFromEvents(out.map((type) => ({ type })))[0]!.state;
    if (takes(GATED, last, 'PROC_WARM_OK')) out = runOut(GATED, [...out, 'PROC_WARM_OK']);
    return gatedModel.getPathsFromEvents(out.map((type) => ({ type })))[0]!;
  });
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
const backoffPaths = pathsIntoBackoff();
const gatedAgent = fileURLToPath(new URL('../fixtures/model/gated-agent.ts', import.meta.url));
let pathNo = 0;

function runPath(path: TestPath, world: World) {
  return async () => {
    recorder.label(`${world.name}: ${title(path)}`);
    const agentName = `model-${++pathNo}`;
    let load = 0;
    const seen: string[] = [];
    const gate = world === GATED ? new Gate() : undefined;
    // The gated agent's prewarms wait for the test; their deadline must not end them first.
    const processOptions: JobProcessOptions = {
      agentModule: pathToFileURL(gate ? gatedAgent : scriptedAgent),
      jobMemoryWarnMb: 0,
      eventLoopStallThreshold: 0,
      jobMemoryLimitMb: 0,
      initializeProcessTimeout: 20_000,
      shutdownProcessTimeout: 20_000,
    };
    const worker = new Worker(
      new WorkerOptions({
        entrypointFnc: () => undefined,
        ...processOptions,
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
        ...(gate
          ? {
              jobProcessLogic: createJobProcessLogic(processOptions, createLogger({ agentName }), {
                env: gate.env,
              }),
            }
          : {}),
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
    /** The pid of a process still prewarming (processes start without a job). */
    const prewarmingPid = () => {
      const proc = Object.values(real().context.procs).find((p) => p.phase === 'prewarming');
      const actor = proc && worker.actor!.system.get(proc.procId);
      const pid = (actor?.getSnapshot() as { context?: { pid?: number } } | undefined)?.context
        ?.pid;
      if (pid === undefined) throw new Error('no process prewarming');
      pids.add(pid);
      return pid;
    };
    /** The processes without a job and the one job's phase, in the model's vocabulary. */
    const realSpare = () =>
      Object.values(real().context.procs)
        .filter((p) => !p.jobId && p.phase !== 'exiting')
        .map((p) => p.phase)
        .sort()
        .join(',');
    const realJob = () => Object.values(real().context.jobs)[0]?.phase ?? 'none';

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
      PROC_WARM_OK: () => gate!.verdict(prewarmingPid(), 'ok'),
      PROC_WARM_FAIL: () => gate!.verdict(prewarmingPid(), 'fail'),
    };

    try {
      let pending: WorkerModelEventType[] = [];
      let passed: string[] = [];
      let mark = 0;
      // The model's states along the path, recomputed: the graph shares one snapshot per model
      // state, whose effects belong to whichever step reached it first.
      const modelStates = [path.steps[0]!.state];
      for (const type of eventsOf(path))
        modelStates.push(getNextSnapshot(workerModel, modelStates.at(-1)!, { type }));
      /** Ends of this worker's jobs as the server recorded them (`success`/`failed` counts). */
      const serverEnds = () => {
        const jobs = emu.jobs.filter((j) => j.agentName === agentName);
        return `success ${jobs.filter((j) => j.status === 'success').length}, failed ${jobs.filter((j) => j.status === 'failed').length}`;
      };
      const settle = async (index: number) => {
        const model = modelStates[index]!;
        const effects = modelStates.slice(1, index + 1).flatMap((m) => m.context.effects);
        const count = (e: string) => effects.filter((x) => x === e).length;
        const wantEnds = `success ${count('job:success')}, failed ${count('job:failed')}`;
        const want = JSON.stringify(model.value);
        const status = model.status === 'done' ? 'done' : 'active';
        const { job, starting, idle } = model.context;
        const spare = [
          ...Array.from({ length: idle }, () => 'idle'),
          ...Array.from({ length: starting }, () => 'prewarming'),
        ].join(',');
        const wantJob = job === 'endingJob' ? 'running' : job;
        // A stopped worker's process records are left as they were (its actors are gone).
        const spareMatters = status === 'active';
        // The real worker went through every state the model passed since the last stimulus,
        // and rests where the model rests, with the job and the spare in the model's phases.
        await eventually(
          () =>
            passed.every((v) => seen.slice(mark).includes(v)) &&
            real().status === status &&
            JSON.stringify(real().value) === want &&
            realJob() === wantJob &&
            (!spareMatters || realSpare() === spare) &&
            serverEnds() === wantEnds,
          `the worker to pass ${passed.join(', ')} and settle in ${want} (job ${wantJob}, spare ` +
            `${spare}, server saw jobs end: ${wantEnds}) after ${pending.join(', ')}; it is in ` +
            `${JSON.stringify(real().value)} (job ${realJob()}, spare ${realSpare()}, server: ` +
            `${serverEnds()})`,
          15_000,
        );
        mark = seen.length;
        passed = [];
        for (const p of Object.values(real().context.procs)) if (p.pid) pids.add(p.pid);
        const held = Object.keys(real().context.jobs);
        if (held[0]) jobId = held[0];
      };
      await path.test({
        events: Object.fromEntries(
          [...world.automatic, ...world.stimuli].map((type) => [
            type,
            async () => {
              pending.push(type);
              if (world.stimuli.has(type)) await stimuli[type]?.();
            },
          ]),
        ),
        states: {
          '*': async (state) => {
            const index = path.steps.findIndex((s) => s.state === state);
            if (index > 0) passed.push(JSON.stringify(state.value));
            const next = path.steps[index + 1]?.event.type;
            // Automatic steps run together; check where the worker settles before a stimulus.
            if (next && world.automatic.has(next)) return;
            if (
              [...world.automatic].some((a) => autoEnabled(world, state as AnyMachineSnapshot, a))
            )
              return;
            await settle(index);
            // The states the model passed through were entered by the real worker too.
            pending = [];
          },
        },
      });
    } finally {
      await worker.stop('test over');
      await done;
      for (const pid of pids) await eventually(() => !isAlive(pid), `process ${pid} to exit`);
      gate?.close();
    }
  };
}

describe('the real worker along the model (one path per worker state)', () => {
  for (const path of paths) it(title(path), runPath(path, EAGER), 30_000);
});

describe('the real worker backs off after failed prewarms and recovers (gated prewarms)', () => {
  for (const path of backoffPaths) it(title(path), runPath(path, GATED), 30_000);
});

describe('system-level chart coverage', () => {
  it('the system paths reached every worker state the model can reach with real stimuli', () => {
    const coverage = writeCoverageReport(
      'integration-system',
      [workerMachine, jobProcessMachine, jobRequestMachine],
      recorder.observed,
      UNREACHABLE,
    );
    console.log(
      [
        `system paths: ${paths.length} (eager prewarms) + ${backoffPaths.length} (gated prewarms)`,
        ...coverage.map(summaryLine),
      ].join('\n'),
    );
    const reached = new Set(
      [...paths, ...backoffPaths].flatMap((p) => p.steps.map((s) => JSON.stringify(s.state.value))),
    );
    expect(
      reached.has(JSON.stringify({ lifecycle: { registered: 'full' }, processes: 'backingOff' })),
    ).toBe(true);
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

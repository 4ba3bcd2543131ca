/**
 * Model-based tests of the worker chart: paths generated from the abstract model
 * (test/model/worker.model.ts) drive the REAL worker chart, with its real jobRequest and
 * jobProcess children, a fake server link, fake process hosts, request decisions the test
 * settles by hand, and a ModelClock that fires one named deadline at a time. After every step
 * the real states, the job and spare-process phases, the status last reported and the messages
 * sent to the server and to the processes are checked against the model. Coverage is observed
 * on the real actors and must reach every state and transition of the worker and jobRequest
 * charts.
 */
import { Job, JobType, Room } from '@livekit/protocol';
import { describe, expect, it } from 'vitest';
import {
  createActor,
  fromCallback,
  fromPromise,
  getInitialSnapshot,
  getNextSnapshot,
  type AnyMachineSnapshot,
} from 'xstate';
import { createTestModel } from 'xstate/graph';
import { jobProcessMachine } from '../../machines/jobProcess.machine.ts';
import type {
  ProcessHostCommand,
  ProcessHostEvent,
  ProcessHostInput,
} from '../../machines/processHost.contract.ts';
import { jobRequestMachine } from '../../machines/jobRequest.machine.ts';
import type { ServerLinkCommand } from '../../machines/serverLink.contract.ts';
import { workerMachine, type WorkerEvent } from '../../machines/worker.machine.ts';
import type { JobRequestDecision } from '../../machines/jobRequest.contract.ts';
import {
  CoverageRecorder,
  incompleteCoverage,
  summaryLine,
  writeCoverageReport,
} from '../model/chart-coverage.ts';
import { ModelClock } from '../model/model-clock.ts';
import { UNREACHABLE } from '../model/unreachable.ts';
import {
  serializeWorkerModel,
  workerModel,
  type ModelJob,
  type WorkerModelContext,
  type WorkerModelEventType,
} from '../model/worker.model.ts';
import { chartOptions, startWorkerChart } from '../support/worker-chart-harness.ts';

/** One duration per named delay, so the ModelClock can fire each deadline alone. */
const MS = {
  register: 10_000,
  reconnect: 500,
  status: 2_500,
  drain: 60_000,
  shutdownProcess: 20_000,
  grace: 30_000, // shutdownBudget: shutdownProcessTimeout + SIGTERM grace + SIGKILL wait
  spawnRetry: 1_000,
  request: 2_000,
  assignment: 7_500,
  initialize: 15_000,
  startBudget: 30_000,
  startDeadline: 45_000, // startBudget + initialize
  surplusIdle: 4_000,
  spareRefill: 600,
  reusedSpareRefill: 700,
} as const;

const recorder = new CoverageRecorder(['worker', 'jobRequest', 'jobProcess']);

/** A job's clean end, as its process reports it (the process may be reused). */
const cleanEnd = {
  type: 'JOB_RETURNED',
  outcome: 'success',
  reason: 'room closed',
  clean: true,
  rssGrowthMb: 1,
} as const;

interface Host {
  procId: string;
  commands: ProcessHostCommand[];
  send(e: ProcessHostEvent): void;
}

function makeJob(id: string): Job {
  return new Job({
    id,
    type: JobType.JT_ROOM,
    room: new Room({ name: `room-${id}`, sid: `RM_${id}` }),
  });
}

function startWorker() {
  const clock = new ModelClock();
  const link: ServerLinkCommand[] = [];
  const hosts = new Map<string, Host>();
  const hostLog: { procId: string; command: ProcessHostCommand }[] = [];
  const decisions = new Map<
    string,
    { resolve(d: JobRequestDecision): void; reject(e: Error): void }
  >();
  let spawned = 0;
  let pid = 5000;
  let toWorker: ((e: WorkerEvent) => void) | undefined;

  const processHost = fromCallback<ProcessHostCommand, ProcessHostInput>(
    ({ input, sendBack, receive }) => {
      spawned += 1;
      const host: Host = { procId: input.procId, commands: [], send: (e) => sendBack(e) };
      hosts.set(input.procId, host);
      receive((c) => {
        host.commands.push(c);
        hostLog.push({ procId: input.procId, command: c });
        // The child confirms a launch at once, and dies when signalled.
        if (c.type === 'JOB_LAUNCH_REQUESTED') sendBack({ type: 'JOB_RUNNING' });
        if (c.type === 'EXIT_REQUESTED' || c.type === 'SIGKILL_REQUESTED')
          sendBack({ type: 'CHILD_EXITED', code: null, signal: 'SIGTERM' });
      });
      sendBack({ type: 'PROCESS_SPAWNED', pid: pid++ });
      return () => hosts.delete(input.procId);
    },
  );
  const machine = workerMachine.provide({
    actors: {
      serverLink: fromCallback<ServerLinkCommand, { url: string }>(({ sendBack, receive }) => {
        toWorker = (e) => sendBack(e);
        receive((c) => link.push(c));
      }),
      loadSampler: fromCallback(() => () => undefined),
      jobRequest: jobRequestMachine.provide({
        actors: {
          decideRequest: fromPromise<JobRequestDecision, { job: Job }>(
            ({ input }) =>
              new Promise((resolve, reject) => decisions.set(input.job.id, { resolve, reject })),
          ),
        },
      }),
      jobProcess: jobProcessMachine.provide({ actors: { processHost } }),
    },
  });
  const options = chartOptions({
    maxJobs: 1,
    numIdleProcesses: 1,
    loadThreshold: 0.7,
    registerTimeout: MS.register,
    reconnectBaseDelay: MS.reconnect,
    reconnectMaxDelay: MS.reconnect,
    statusInterval: MS.status,
    drainTimeout: MS.drain,
    shutdownProcessTimeout: MS.shutdownProcess,
    spawnBaseDelay: MS.spawnRetry,
    spawnMaxDelay: MS.spawnRetry,
    // One slot and one spare: starts are never bounded and never too slow (own chart tests).
    maxConcurrentStarts: Infinity,
    jobStartBudget: MS.startBudget,
    now: () => clock.now(),
    requestTimeout: MS.request,
    assignmentTimeout: MS.assignment,
    initializeProcessTimeout: MS.initialize,
    jobsPerProcess: 2,
    surplusIdleTimeout: MS.surplusIdle,
    spareRefillDelay: MS.spareRefill,
    reusedSpareRefillDelay: MS.reusedSpareRefill,
    random: () => 1,
  });
  const actor = createActor(machine, {
    clock,
    input: { options, serverUrl: 'ws://server.test' },
    inspect: recorder.inspect,
  });
  actor.start();

  let seenLink = 0;
  let seenHost = 0;
  let seenSpawned = 0;
  let jobSeq = 0;
  let current: Job | undefined;
  const flush = async () => {
    for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
  };
  const ctx = () => actor.getSnapshot().context;
  const procOfJob = () => {
    const procId = current ? ctx().jobs[current.id]?.procId : undefined;
    const host = procId ? hosts.get(procId) : undefined;
    if (!host) throw new Error('the job has no live process');
    return host;
  };
  const spare = () => Object.values(ctx().procs).filter((p) => !p.jobId && p.phase !== 'exiting');
  const spareHost = (phase: 'idle' | 'prewarming') => {
    const p = spare().find((s) => s.phase === phase);
    const host = p ? hosts.get(p.procId) : undefined;
    if (!host) throw new Error(`no ${phase} spare process`);
    return host;
  };
  const decision = () => {
    const d = current ? decisions.get(current.id) : undefined;
    if (!d) throw new Error('no decision pending');
    return d;
  };
  const server = (e: WorkerEvent) => {
    if (!toWorker) throw new Error('link not started');
    toWorker(e);
  };
  /** A deadline event: the chart must have armed it. */
  const deadline = (ms: number, what: string) => {
    expect(clock.armed(ms), `${what} is armed`).toBeGreaterThan(0);
    clock.fire(ms);
  };

  const stimuli: Record<WorkerModelEventType, () => void> = {
    REGISTER: () => server({ type: 'REGISTERED', workerId: 'AW_model', serverVersion: '1.13.5' }),
    LOSE_SERVER: () => server({ type: 'SERVER_LOST', reason: 'connection closed' }),
    REFUSE: () => server({ type: 'SERVER_REFUSED', reason: 'HTTP 401' }),
    REGISTER_TIMEOUT: () => deadline(MS.register, 'the register deadline'),
    RECONNECT_DELAY: () => deadline(MS.reconnect, 'the reconnect delay'),
    DRAIN: () => actor.send({ type: 'DRAIN_REQUESTED', reason: 'SIGTERM' }),
    DRAIN_TIMEOUT: () => deadline(MS.drain, 'the drain deadline'),
    SHUTDOWN_GRACE: () => deadline(MS.grace, 'the shutdown grace'),
    FORCE_STOP: () => actor.send({ type: 'FORCE_STOP_REQUESTED', reason: 'second SIGTERM' }),
    LOAD_HIGH: () => actor.send({ type: 'LOAD_SAMPLED', load: 0.9 }),
    LOAD_LOW: () => actor.send({ type: 'LOAD_SAMPLED', load: 0.1 }),
    STATUS_TICK: () => deadline(MS.status, 'the status interval'),
    SIMULATE: () => actor.send({ type: 'JOB_SIMULATION_REQUESTED', roomName: 'sim' }),
    OFFER: () => {
      const job = makeJob(`AJ_${++jobSeq}`);
      if (!current || !(current.id in ctx().jobs)) current = job;
      server({ type: 'AVAILABILITY_REQUESTED', job });
    },
    ACCEPT: () =>
      decision().resolve({
        accepted: true,
        acceptArguments: {
          name: 'model',
          identity: `agent-${current!.id}`,
          metadata: '',
          attributes: {},
        },
      }),
    DECLINE: () => decision().resolve({ accepted: false, reason: 'not for us' }),
    DECIDE_FAILS: () => decision().reject(new Error('requestFnc threw')),
    REQUEST_TIMEOUT: () => deadline(MS.request, 'the request deadline'),
    ASSIGN: () => server({ type: 'JOB_ASSIGNED', job: current!, token: 'tok', url: undefined }),
    STRAY_ASSIGN: () =>
      server({
        type: 'JOB_ASSIGNED',
        job: makeJob(`AJ_stray_${++jobSeq}`),
        token: 'tok',
        url: undefined,
      }),
    ASSIGNMENT_TIMEOUT: () => deadline(MS.assignment, 'the assignment deadline'),
    TERMINATE: () => server({ type: 'JOB_TERMINATED', jobId: current!.id }),
    JOB_ENDS: () =>
      procOfJob().send({ type: 'JOB_RETURNED', outcome: 'success', reason: 'room closed' }),
    JOB_ENDS_CLEAN: () => procOfJob().send(cleanEnd),
    JOB_ENDS_CLEAN_STALE: () => procOfJob().send(cleanEnd),
    IDLE_CHECK: () => deadline(MS.surplusIdle, 'the idle check of a kept process'),
    IDLE_CHECK_SURPLUS: () => deadline(MS.surplusIdle, 'the idle check of a kept process'),
    SPARE_REFILL: () => deadline(MS.spareRefill, "the refill of a started job's spare"),
    SPARE_REFILL_LATE: () =>
      deadline(MS.reusedSpareRefill, 'the refill of a spare for a job in a reusable process'),
    JOB_CRASH: () => procOfJob().send({ type: 'CHILD_EXITED', code: 1, signal: null }),
    START_DEADLINE: () => deadline(MS.startDeadline, 'the start deadline'),
    PROC_WARM_OK: () => spareHost('prewarming').send({ type: 'PREWARM_SUCCEEDED' }),
    PROC_WARM_FAIL: () =>
      spareHost('prewarming').send({ type: 'PREWARM_FAILED', error: 'no model' }),
    SPARE_CRASH: () => spareHost('idle').send({ type: 'CHILD_EXITED', code: 1, signal: null }),
    SPAWN_RETRY: () => deadline(MS.spawnRetry, 'the spawn retry delay'),
    RECYCLE: () => actor.send({ type: 'PROCESSES_RECYCLE_REQUESTED', reason: 'code changed' }),
  };

  return {
    actor,
    link,
    hosts,
    flush,
    ctx,
    spare,
    async stimulate(type: WorkerModelEventType) {
      stimuli[type]();
      await flush();
    },
    /** What the server and the processes were told since the last call, in the model's words. */
    newEffects(): string[] {
      const out: string[] = [];
      for (const c of link.slice(seenLink)) {
        if (c.type === 'CONNECT_REQUESTED') out.push('connect');
        else if (c.type === 'DISCONNECT_REQUESTED') out.push('disconnect');
        else if (c.type === 'AVAILABILITY_ANSWERED')
          out.push(c.acceptArguments ? 'accept' : 'decline');
        else if (c.type === 'JOB_STATUS_REPORTED') out.push(`job:${c.outcome}`);
        else if (c.type === 'JOB_SIMULATION_REQUESTED') out.push('simulate');
      }
      for (const { command } of hostLog.slice(seenHost)) {
        if (command.type === 'JOB_LAUNCH_REQUESTED') out.push('launch');
        if (command.type === 'JOB_SHUTDOWN_REQUESTED') out.push('shutdownJob');
      }
      for (let i = seenSpawned; i < spawned; i++) out.push('spawn');
      seenLink = link.length;
      seenHost = hostLog.length;
      seenSpawned = spawned;
      return out.sort();
    },
    statuses: () => link.filter((c) => c.type === 'WORKER_STATUS_REPORTED'),
  };
}

type Sut = ReturnType<typeof startWorker>;

const JOB_PHASE: Record<Exclude<ModelJob, 'none'>, string> = {
  deciding: 'deciding',
  accepted: 'accepted',
  queued: 'queued',
  running: 'running',
  endingJob: 'running',
};

interface ModelSnap {
  value: { lifecycle: unknown; processes: unknown };
  context: WorkerModelContext;
  matches(v: unknown): boolean;
}

function checkState(sut: Sut, model: ModelSnap, statusesBefore: number) {
  const snap = sut.actor.getSnapshot();
  expect(snap.value, 'worker state').toEqual(model.value);
  const stopped = model.matches({ lifecycle: 'stopped' });
  expect(snap.status, 'worker status').toBe(stopped ? 'done' : 'active');
  if (stopped) {
    expect(sut.hosts.size, 'no process outlives the worker').toBe(0);
    return;
  }
  const jobs = Object.values(sut.ctx().jobs);
  const { job, starting, idle } = model.context;
  expect(
    jobs.map((j) => j.phase),
    'jobs held',
  ).toEqual(job === 'none' ? [] : [JOB_PHASE[job]]);
  expect(
    sut
      .spare()
      .map((p) => p.phase)
      .sort(),
    'processes without a job',
  ).toEqual([
    ...Array.from({ length: idle }, () => 'idle'),
    ...Array.from({ length: starting }, () => 'prewarming'),
  ]);
  const last = sut.statuses().at(-1);
  if (model.matches({ lifecycle: 'registered' })) {
    const available = model.matches({ lifecycle: { registered: 'available' } });
    expect(last?.status, 'status last reported').toBe(available ? 'available' : 'full');
  }
  if (model.matches({ lifecycle: 'draining' }))
    expect(last?.status, 'draining reports').toBe('full');
  void statusesBefore;
}

const testModel = createTestModel(workerModel, {
  filterEvents: (s, e) => s.status === 'active' && s.can(e),
  serializeState: (s) => serializeWorkerModel(s as never),
});

function title(path: { steps: { event: { type: string } }[]; state: { value: unknown } }): string {
  const events = path.steps.slice(1).map((st) => st.event.type);
  return `reaches ${JSON.stringify(path.state.value)} via ${events.join(' → ') || '(start)'}`;
}

type TestPath = ReturnType<typeof testModel.getShortestPaths>[number];

function runPath(path: TestPath) {
  return async () => {
    recorder.label(title(path));
    let sut: Sut | undefined;
    let previous: AnyMachineSnapshot | undefined;
    let stepIndex = 0;
    let statusesBefore = 0;
    await path.test({
      events: new Proxy(
        {},
        {
          get: (_t, type: string) => async () => {
            if (type === 'xstate.init') return;
            statusesBefore = sut!.statuses().length;
            await sut!.stimulate(type as WorkerModelEventType);
            if (type === 'STATUS_TICK') {
              expect(sut!.statuses().length - statusesBefore, 'one status per interval').toBe(1);
              const held = Object.keys(sut!.ctx().jobs).length;
              expect(sut!.statuses().at(-1)?.jobCount, 'job count reported').toBe(held);
            }
          },
        },
      ),
      states: {
        '*': async (state) => {
          const step = path.steps[stepIndex++]!;
          if (!sut) {
            sut = startWorker();
            await sut.flush();
          }
          const model = (previous
            ? getNextSnapshot(workerModel, previous, step.event as never)
            : getInitialSnapshot(workerModel)) as unknown as ModelSnap;
          previous = state;
          expect(sut.newEffects(), `effects of ${step.event.type}`).toEqual(
            [...model.context.effects].sort(),
          );
          checkState(sut, model, statusesBefore);
        },
      },
    });
    if (sut && sut.actor.getSnapshot().status === 'active') sut.actor.stop();
  };
}

const shortest = testModel.getShortestPaths();

/**
 * Shortest paths reach every model state but need not take every model transition. For each
 * (state, event) of the model — state meaning where the worker is, not what it holds — one
 * more path: the shortest path to the nearest source state, then that event.
 */
function transitionPaths(): TestPath[] {
  const toState = new Map<string, TestPath>();
  for (const p of testModel.getShortestPaths({ allowDuplicatePaths: true })) {
    toState.set(serializeWorkerModel(p.state), p);
  }
  const covered = new Set<string>();
  const edgeKey = (value: unknown, event: string) => `${JSON.stringify(value)} ${event}`;
  for (const p of shortest) {
    p.steps.forEach((st, i) => {
      if (i > 0) covered.add(edgeKey(p.steps[i - 1]!.state.value, st.event.type));
    });
  }
  const best = new Map<string, TestPath>();
  for (const [, entry] of Object.entries(testModel.getAdjacencyMap())) {
    const from = toState.get(serializeWorkerModel(entry.state as never));
    if (!from) continue;
    for (const next of Object.values(entry.transitions)) {
      const type = (next as { event: { type: string } }).event.type;
      const key = edgeKey(entry.state.value, type);
      if (covered.has(key)) continue;
      const known = best.get(key);
      if (!known || known.steps.length > from.steps.length) {
        best.set(key, from);
        extraEvent.set(key, type);
      }
    }
  }
  return [...best.entries()].map(([key, from]) => {
    const events = [...from.steps.slice(1).map((st) => st.event), { type: extraEvent.get(key)! }];
    return testModel.getPathsFromEvents(events as never)[0]!;
  });
}
const extraEvent = new Map<string, string>();
const byTransition = transitionPaths();

describe('worker chart, driven along the model (shortest paths)', () => {
  for (const path of shortest) it(title(path), runPath(path));
});

describe('worker chart, driven along the model (one path per model transition)', () => {
  for (const path of byTransition) it(title(path), runPath(path));
});

describe('worker chart beyond the model configuration', () => {
  // The model keeps one spare process; a second spare failing while the first failure's
  // backoff runs needs two. Directed, not generated: it only adds that one transition.
  it('counts a second failed prewarm while already backing off, and still retries once', async () => {
    recorder.label('directed: two spares fail their prewarm');
    const w = startWorkerChart({
      options: { numIdleProcesses: 2 },
      autoPrewarm: false,
      inspect: recorder.inspect,
    });
    w.server({ type: 'REGISTERED', workerId: 'AW_x', serverVersion: '1' });
    const [a, b] = [...w.hosts.values()];
    a!.send({ type: 'PREWARM_FAILED', error: 'first' });
    await w.flush();
    expect(w.lifecycle().processes).toBe('backingOff');
    b!.send({ type: 'PREWARM_FAILED', error: 'second' });
    await w.flush();
    expect(w.lifecycle().processes).toBe('backingOff');
    expect(w.actor.getSnapshot().context.prewarmFailures).toBe(2);
    expect(w.actor.getSnapshot().context.procs).toEqual({});
    // The delay armed by the first failure still runs; then the pool warms two spares again.
    w.clock.increment(1_000);
    expect(w.lifecycle().processes).toBe('warming');
    expect(Object.keys(w.actor.getSnapshot().context.procs)).toHaveLength(2);
  });
});

describe('worker chart with an elastic warm pool (beyond the model configuration)', () => {
  // The model keeps a fixed pool; the elastic pool's two transitions (an offer raising the
  // target, the resize tick letting the surplus go) are directed here and in
  // test/unit/elastic-pool.test.ts.
  it('starts spares for the offers a stream promises, and lets them go once it stops', async () => {
    recorder.label('directed: elastic warm pool');
    const w = startWorkerChart({
      options: {
        numIdleProcesses: 1,
        elasticPool: {
          min: 1,
          max: 4,
          memoryMb: 1024,
          arrivalWindow: 10_000,
          burstWindow: 2_000,
          resizeInterval: 1_000,
        },
      },
      warmRssMb: 50,
      decide: async () => ({ accepted: false, reason: 'not this one' }),
      inspect: recorder.inspect,
    });
    w.server({ type: 'REGISTERED', workerId: 'AW_x', serverVersion: '1' });
    await w.flush();
    expect(Object.keys(w.actor.getSnapshot().context.procs)).toHaveLength(1);
    for (let i = 0; i < 6; i++) {
      w.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob(`AJ_e${i}`) });
      await w.flush();
      w.clock.increment(200);
    }
    const spares = () =>
      Object.values(w.actor.getSnapshot().context.procs).filter((p) => p.phase === 'idle');
    expect(spares().length).toBe(4);
    w.clock.increment(11_000);
    await w.flush();
    expect(spares().length).toBe(1);
  });
});

describe('worker chart coverage', () => {
  it('every state and transition of the real worker and jobRequest charts was observed', () => {
    // The report lists every chart (merged with the other suites' parts); this suite answers
    // for the worker and jobRequest charts.
    const coverage = writeCoverageReport(
      'unit-worker',
      [workerMachine, jobProcessMachine, jobRequestMachine],
      recorder.observed,
      UNREACHABLE,
    ).filter((c) => c.chart !== 'jobProcess');
    console.log(
      [
        `worker model paths: ${shortest.length} shortest + ${byTransition.length} per transition`,
        ...coverage.map(summaryLine),
      ].join('\n'),
    );
    for (const c of coverage) expect(incompleteCoverage(c)).toBeUndefined();
  });
});

/**
 * Model-based tests of the jobProcess chart: paths generated from the abstract model
 * (test/model/jobProcess.model.ts) drive the REAL chart, with a hand-driven fake process host,
 * a parent that collects the reports and a SimulatedClock. After every step the real state,
 * the pid, the reports to the parent and the commands to the host are checked against the
 * model. Coverage is observed on the real actor and must reach every state and transition.
 */
import { describe, expect, it } from 'vitest';
import { getNextSnapshot, type AnyMachineSnapshot } from 'xstate';
import { createTestModel } from 'xstate/graph';
import { jobProcessMachine } from '../../machines/jobProcess.machine.ts';
import type { ProcessHostEvent } from '../../machines/processHost.contract.ts';
import { jobRequestMachine } from '../../machines/jobRequest.machine.ts';
import { workerMachine } from '../../machines/worker.machine.ts';
import type { RunningJobInfo } from '../../machines/jobProcess.contract.ts';
import {
  CoverageRecorder,
  incompleteCoverage,
  summaryLine,
  writeCoverageReport,
} from '../model/chart-coverage.ts';
import { UNREACHABLE } from '../model/unreachable.ts';
import { startJobProcessChart } from '../support/job-process-chart-harness.ts';
import {
  jobProcessModel,
  MODEL_JOBS_PER_PROCESS,
  serializeJobProcessModel,
  type JobProcessModelContext,
} from '../model/jobProcess.model.ts';

// Distinct deadlines, so advancing the clock by one can never fire another.
const INIT = 10_000;
const SHUTDOWN = 60_000;
const TERM = 5_000;
const KILL = 7_000;
const PID = 4242;

const recorder = new CoverageRecorder(['jobProcess']);

const job: RunningJobInfo = {
  jobId: 'AJ_model',
  job: { id: 'AJ_model', room: { name: 'model-room' } },
  acceptArguments: { name: '', identity: 'agent-AJ_model', metadata: '', attributes: {} },
  url: 'ws://127.0.0.1:1',
  token: 'not-a-token',
  workerId: 'AW_model',
};

/** The real chart under a parent that records its reports; the host is driven by the test. */
function startProcess(withJob: boolean) {
  const chart = startJobProcessChart(
    {
      procId: 'proc-1',
      ...(withJob ? { job } : {}),
      initializeTimeout: INIT,
      shutdownTimeout: SHUTDOWN,
      terminateTimeout: TERM,
      killTimeout: KILL,
      reuse: { maxJobs: MODEL_JOBS_PER_PROCESS, memoryGrowthMb: 50 },
    },
    recorder.inspect,
    null,
  );
  const { clock, commands, child } = chart;
  const reports = chart.recorded;
  let seenReports = 0;
  let seenCommands = 0;
  return {
    clock,
    reports,
    commands,
    child,
    jobGiven: withJob,
    get hostStopped() {
      return chart.hostStopped;
    },
    host(e: ProcessHostEvent) {
      chart.host(e);
    },
    /** What happened since the last call, in the model's vocabulary. */
    newEffects(): string[] {
      const out: string[] = [];
      for (const { report: r, state: finalState } of reports.slice(seenReports)) {
        if (r.type === 'PROCESS_PREWARMED') out.push('prewarmed');
        else if (r.type === 'JOB_STARTED') out.push('started');
        else if (r.type === 'JOB_ENDED')
          out.push(`ended:${r.outcome}${r.processKept ? ':kept' : ''}`);
        else out.push(`exited:${String(finalState)}:${r.failed ? 'failed' : 'ok'}`);
      }
      for (const cmd of commands.slice(seenCommands)) {
        // A question to the host, not an effect the model names.
        if (cmd.type === 'SILENCE_MEASURE_REQUESTED') continue;
        out.push(
          {
            JOB_LAUNCH_REQUESTED: 'launch',
            JOB_SHUTDOWN_REQUESTED: 'shutdownJob',
            EXIT_REQUESTED: 'terminate',
            SIGKILL_REQUESTED: 'kill',
          }[cmd.type],
        );
      }
      seenReports = reports.length;
      seenCommands = commands.length;
      return out.sort();
    },
  };
}

type Sut = ReturnType<typeof startProcess>;

/** A deadline must fire exactly at its delay: nothing a millisecond before, the step at it. */
function passDeadline(sut: Sut, ms: number) {
  const before = JSON.stringify(sut.child.getSnapshot().value);
  sut.clock.increment(ms - 1);
  expect(JSON.stringify(sut.child.getSnapshot().value), 'nothing happens before the deadline').toBe(
    before,
  );
  sut.clock.increment(1);
}

const testModel = createTestModel(jobProcessModel, {
  filterEvents: (s, e) => s.status === 'active' && s.can(e),
  serializeState: (s) => serializeJobProcessModel(s as never),
});

function runPath(path: ReturnType<typeof testModel.getShortestPaths>[number]) {
  return async () => {
    recorder.label(title(path));
    let sut: Sut | undefined;
    const live = () => {
      if (!sut) throw new Error('no process started');
      return sut;
    };
    let jobsGiven = 0;
    // The graph keeps one snapshot per model state, so a step's effects are recomputed from the
    // previous step's state and the event actually taken.
    let previous: AnyMachineSnapshot | undefined;
    let stepIndex = 0;
    await path.test({
      events: {
        START_WARM: () => {
          sut = startProcess(false);
        },
        START_FOR_JOB: () => {
          sut = startProcess(true);
          jobsGiven = 1;
        },
        SPAWNED: () => live().host({ type: 'PROCESS_SPAWNED', pid: PID }),
        PREWARM_OK: () => live().host({ type: 'PREWARM_SUCCEEDED' }),
        PREWARM_FAIL: () => live().host({ type: 'PREWARM_FAILED', error: 'model says no' }),
        INIT_TIMEOUT: () => passDeadline(live(), INIT),
        SILENCE_MEASURED: () =>
          live().host({ type: 'SILENCE_MEASURED', silentMs: 12_000, sinceLaunchMs: 10_000 }),
        PONGS_SINCE_LAUNCH: () =>
          live().host({ type: 'SILENCE_MEASURED', silentMs: 900, sinceLaunchMs: 10_000 }),
        LAUNCH_REQUESTED: () => {
          jobsGiven++;
          live().child.send({ type: 'LAUNCH_REQUESTED', job });
        },
        JOB_CONFIRMED: () => live().host({ type: 'JOB_RUNNING' }),
        JOB_RETURNED: () =>
          live().host({ type: 'JOB_RETURNED', outcome: 'success', reason: 'room disconnected' }),
        JOB_RETURNED_CLEAN: () =>
          live().host({
            type: 'JOB_RETURNED',
            outcome: 'success',
            reason: 'room disconnected',
            clean: true,
            rssGrowthMb: 10,
          }),
        JOB_THREW: () =>
          live().host({ type: 'JOB_RETURNED', outcome: 'failed', reason: 'entrypoint threw' }),
        SHUTDOWN: () => live().child.send({ type: 'SHUTDOWN_REQUESTED', reason: 'model' }),
        SHUTDOWN_TIMEOUT: () => passDeadline(live(), SHUTDOWN),
        KILL: () => live().child.send({ type: 'KILL_REQUESTED', reason: 'model' }),
        CRASH: () => live().host({ type: 'CHILD_EXITED', code: 1, signal: null }),
        PING_TIMEOUT: () => live().host({ type: 'PING_TIMED_OUT', silentMs: 30_000 }),
        MEMORY_LIMIT: () => live().host({ type: 'MEMORY_EXCEEDED', rssMb: 900, limitMb: 500 }),
        EXIT: () => live().host({ type: 'CHILD_EXITED', code: null, signal: 'SIGTERM' }),
        TERMINATE_TIMEOUT: () => passDeadline(live(), TERM),
        KILL_TIMEOUT: () => passDeadline(live(), KILL),
      },
      states: {
        '*': (state) => {
          const step = path.steps[stepIndex++]!;
          const model = (previous
            ? getNextSnapshot(jobProcessModel, previous, step.event)
            : state) as unknown as {
            value: unknown;
            context: JobProcessModelContext;
            status: string;
          };
          previous = state;
          if (model.value === 'notStarted') return;
          const s = live();
          const snap = s.child.getSnapshot();
          expect(snap.value, 'state').toEqual(model.value);
          expect(s.newEffects(), 'reports and host commands of this step').toEqual(
            [...model.context.effects].sort(),
          );
          // The pid is known in every state after spawn (docs/architecture.md §2), and in every report.
          expect(snap.context.pid, 'pid').toBe(model.context.spawned ? PID : undefined);
          for (const { report } of s.reports) {
            if (report.pid !== undefined) expect(report.pid, `${report.type} pid`).toBe(PID);
          }
          const final = model.status === 'done';
          expect(snap.status, 'status').toBe(final ? 'done' : 'active');
          if (final) {
            const types = s.reports.map((r) => r.report.type);
            // PROCESS_EXITED is always the last report, and a job given is reported ended once.
            expect(types.filter((t) => t === 'PROCESS_EXITED')).toHaveLength(1);
            expect(types.at(-1)).toBe('PROCESS_EXITED');
            expect(types.filter((t) => t === 'JOB_ENDED')).toHaveLength(jobsGiven);
            expect(s.hostStopped, 'the host is released').toBe(true);
          }
        },
      },
    });
  };
}

const shortest = testModel.getShortestPaths();
const simple = testModel.getSimplePaths();
const shortestKeys = new Set(shortest.map((p) => p.steps.map((st) => st.event.type).join()));
const extraSimple = simple.filter(
  (p) => !shortestKeys.has(p.steps.map((st) => st.event.type).join()),
);

/** `reaches idle via START_WARM → SPAWNED → PREWARM_OK` */
function title(path: (typeof shortest)[number]): string {
  const events = path.steps.slice(1).map((st) => st.event.type);
  return `reaches ${JSON.stringify(path.state.value)} via ${events.join(' → ')}`;
}

describe('jobProcess chart, driven along the model (shortest paths)', () => {
  for (const path of shortest) it(title(path), runPath(path));
});

describe('jobProcess chart, driven along the model (simple paths)', () => {
  for (const path of extraSimple) it(title(path), runPath(path));
});

describe('jobProcess chart coverage', () => {
  it('every state and transition of the real chart was observed', () => {
    // The report lists every chart (merged with the other suites' parts); this suite answers
    // for the jobProcess chart.
    const [coverage] = writeCoverageReport(
      'unit-jobProcess',
      [jobProcessMachine, workerMachine, jobRequestMachine],
      recorder.observed,
      UNREACHABLE,
    );
    console.log(
      `jobProcess model paths: ${shortest.length} shortest + ${extraSimple.length} simple\n${summaryLine(coverage!)}`,
    );
    expect(incompleteCoverage(coverage!)).toBeUndefined();
  });
});

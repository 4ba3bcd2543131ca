/**
 * Drives the real worker chart (with the real jobProcess and jobRequest charts) under a
 * SimulatedClock, with the outside world replaced by recorders: a fake server link, a fake
 * process host per process, and a scripted request decision.
 */
import { Job, JobType, Room } from '@livekit/protocol';
import {
  createActor,
  fromCallback,
  fromPromise,
  SimulatedClock,
  type InspectionEvent,
} from 'xstate';
import type { ServerLinkCommand } from '../../machines/serverLink.contract.ts';
import { jobProcessMachine } from '../../machines/jobProcess.machine.ts';
import type {
  ProcessHostCommand,
  ProcessHostEvent,
  ProcessHostInput,
} from '../../machines/processHost.contract.ts';
import { jobRequestMachine } from '../../machines/jobRequest.machine.ts';
import type { WorkerChartOptions } from '../../machines/worker.contract.ts';
import { SPARE_REFILL_DELAY } from '../../src/options/chart-options.ts';
import {
  workerMachine,
  type WorkerEmitted,
  type WorkerEvent,
} from '../../machines/worker.machine.ts';
import type { JobRequestDecision } from '../../machines/jobRequest.contract.ts';

export interface FakeHost {
  procId: string;
  commands: ProcessHostCommand[];
  send(e: ProcessHostEvent): void;
}

export const chartOptions = (over: Partial<WorkerChartOptions> = {}): WorkerChartOptions => ({
  agentName: '',
  loadThreshold: 0.7,
  maxJobs: Infinity,
  numIdleProcesses: 2,
  drainTimeout: 60_000,
  requestTimeout: 2_000,
  assignmentTimeout: 7_500,
  initializeProcessTimeout: 10_000,
  shutdownProcessTimeout: 10_000,
  registerTimeout: 10_000,
  statusInterval: 2_500,
  reconnectBaseDelay: 500,
  reconnectMaxDelay: 30_000,
  spawnBaseDelay: 1_000,
  spawnMaxDelay: 30_000,
  maxConcurrentStarts: Infinity,
  jobStartBudget: 10_000,
  jobsPerProcess: 1,
  reuseMemoryGrowthMb: 100,
  surplusIdleTimeout: 5_000,
  spareRefillDelay: SPARE_REFILL_DELAY,
  reusedSpareRefillDelay: 5_000,
  initialStartEstimate: 1_000,
  elasticPool: undefined,
  now: () => 0,
  random: () => 1,
  ...over,
});

/** A fake host's prewarm, with the warm RSS when one is given. */
export const prewarmed = (rssMb?: number): ProcessHostEvent =>
  rssMb === undefined ? { type: 'PREWARM_SUCCEEDED' } : { type: 'PREWARM_SUCCEEDED', rssMb };

export function makeJob(id: string, room = `room-${id}`): Job {
  return new Job({ id, type: JobType.JT_ROOM, room: new Room({ name: room, sid: `RM_${id}` }) });
}

export interface HarnessOptions {
  options?: Partial<WorkerChartOptions>;
  /** Decision per job; default accept with defaults. */
  decide?: (job: Job) => Promise<JobRequestDecision>;
  /** Whether fake hosts prewarm by themselves on start (default true). */
  autoPrewarm?: boolean;
  /** The RSS (MB) fake hosts say a warm process has; default: they do not say. */
  warmRssMb?: number;
  /** Whether fake hosts confirm a launch at once with JOB_RUNNING (default true). */
  confirmLaunch?: boolean;
  /**
   * Whether a fake process exits at once when signalled (default true). `false`: it exits only
   * when the test sends its host `CHILD_EXITED`.
   */
  exitOnSignal?: boolean;
  /** Observes the actor system (chart coverage). */
  inspect?: (e: InspectionEvent) => void;
}

export function startWorkerChart(h: HarnessOptions = {}) {
  const clock = new SimulatedClock();
  const link: ServerLinkCommand[] = [];
  const emitted: WorkerEmitted[] = [];
  const hosts = new Map<string, FakeHost>();
  let nextPid = 1000;
  let sendToWorker: ((e: WorkerEvent) => void) | undefined;
  const autoPrewarm = h.autoPrewarm ?? true;
  const confirmLaunch = h.confirmLaunch ?? true;
  const exitOnSignal = h.exitOnSignal ?? true;

  const fakeHost = fromCallback<ProcessHostCommand, ProcessHostInput>(
    ({ input, sendBack, receive }) => {
      const host: FakeHost = { procId: input.procId, commands: [], send: (e) => sendBack(e) };
      hosts.set(input.procId, host);
      receive((c) => {
        host.commands.push(c);
        if (c.type === 'JOB_LAUNCH_REQUESTED' && confirmLaunch) sendBack({ type: 'JOB_RUNNING' });
        if (exitOnSignal && (c.type === 'EXIT_REQUESTED' || c.type === 'SIGKILL_REQUESTED')) {
          sendBack({
            type: 'CHILD_EXITED',
            code: null,
            signal: c.type === 'SIGKILL_REQUESTED' ? 'SIGKILL' : null,
          });
        }
      });
      sendBack({ type: 'PROCESS_SPAWNED', pid: nextPid++ });
      if (autoPrewarm) sendBack(prewarmed(h.warmRssMb));
      return () => hosts.delete(input.procId);
    },
  );

  const decide =
    h.decide ??
    (async (job: Job): Promise<JobRequestDecision> => ({
      accepted: true,
      acceptArguments: { name: '', identity: `agent-${job.id}`, metadata: '', attributes: {} },
    }));

  const machine = workerMachine.provide({
    actors: {
      serverLink: fromCallback<ServerLinkCommand, { url: string }>(({ sendBack, receive }) => {
        sendToWorker = (e) => sendBack(e);
        receive((c) => link.push(c));
      }),
      loadSampler: fromCallback(() => () => undefined),
      jobRequest: jobRequestMachine.provide({
        actors: { decideRequest: fromPromise(({ input }) => decide(input.job)) },
      }),
      jobProcess: jobProcessMachine.provide({ actors: { processHost: fakeHost } }),
    },
  });
  const actor = createActor(machine, {
    clock,
    input: {
      options: chartOptions({ now: () => clock.now(), ...h.options }),
      serverUrl: 'ws://server.test',
    },
    ...(h.inspect ? { inspect: h.inspect } : {}),
  });
  actor.on('*', (e) => emitted.push(e));
  actor.start();

  const server = (e: WorkerEvent) => {
    if (!sendToWorker) throw new Error('link not started');
    sendToWorker(e);
  };
  /** Lets promise actors (request decisions) settle. */
  const flush = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  };
  const lifecycle = () => actor.getSnapshot().value as { lifecycle: unknown; processes: unknown };
  const answers = () => link.filter((c) => c.type === 'AVAILABILITY_ANSWERED');
  const statuses = () => link.filter((c) => c.type === 'WORKER_STATUS_REPORTED');
  const jobStatuses = () => link.filter((c) => c.type === 'JOB_STATUS_REPORTED');
  return {
    actor,
    clock,
    link,
    emitted,
    hosts,
    server,
    flush,
    lifecycle,
    answers,
    statuses,
    jobStatuses,
  };
}

/**
 * The worker's warm-up: a job's way through the worker, rehearsed on a throwaway copy of the
 * chart before real jobs come. Left to the first real job, compiling that way (lazily, function
 * by function) cost it ~1 ms of its hand-off (docs/architecture.md, "The assignment's way"); run
 * a few times here, it is compiled when the job comes. The copy is the real worker chart with
 * the real jobRequest and jobProcess charts, and the real frame decoding and answer encoding
 * (`protocol/messages.ts`); only the outside world is replaced: no socket, no process, no user
 * code (offers are accepted by a stand-in for `requestFnc`), a simulated clock, nothing logged.
 * It runs beside the real chart (separate actors in a separate system) and is stopped when it
 * is done.
 */
import { errorMessage } from '../errors.ts';
import {
  Job,
  JobAssignment,
  AvailabilityRequest,
  JobType,
  Room,
  ServerMessage,
} from '@livekit/protocol';
import { createActor, fromCallback, fromPromise, SimulatedClock } from 'xstate';
import { jobProcessMachine } from '../../machines/jobProcess.machine.ts';
import type { ProcessHostCommand, ProcessHostInput } from '../../machines/processHost.contract.ts';
import { jobRequestMachine } from '../../machines/jobRequest.machine.ts';
import type { JobRequestDecision } from '../../machines/jobRequest.contract.ts';
import type { ServerLinkCommand } from '../../machines/serverLink.contract.ts';
import type { WorkerChartOptions } from '../../machines/worker.contract.ts';
import { workerMachine, type WorkerEvent } from '../../machines/worker.machine.ts';
import { commandMessage, serverReport } from '../protocol/messages.ts';

/** Jobs the rehearsal runs by default: enough to compile all of it (later jobs gained little more). */
const REHEARSED_JOBS = 10;

/** What the rehearsal got through: each job offered, launched and reported ended. */
export interface RehearsalReport {
  offered: number;
  answered: number;
  launched: number;
  ended: number;
  /** Why it stopped short, if something in it threw (the worker logs the report). */
  error?: string;
}

/** A job's two frames as the server sends them; each round decodes them as the server link does. */
function frames(n: number): { availability: Uint8Array; assignment: Uint8Array } {
  const job = new Job({
    id: `AJ_rehearsal_${n}`,
    dispatchId: `AD_rehearsal_${n}`,
    type: JobType.JT_ROOM,
    room: new Room({ sid: `RM_rehearsal_${n}`, name: `rehearsal-${n}` }),
    agentName: 'rehearsal',
  });
  const availability = new ServerMessage({
    message: { case: 'availability', value: new AvailabilityRequest({ job }) },
  }).toBinary();
  const assignment = new ServerMessage({
    message: { case: 'assignment', value: new JobAssignment({ job, token: 'rehearsal', url: '' }) },
  }).toBinary();
  return { availability, assignment };
}

/** Lets the decisions (promise actors) and everything they start settle. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
}

export interface RehearsalOptions {
  /** How many jobs (default `REHEARSED_JOBS`). */
  jobs?: number;
  /** Ends the rehearsal early (the worker stopping): it stops after the job it is on. */
  signal?: AbortSignal;
}

/**
 * Runs jobs one after another through a throwaway worker chart with the given options (the
 * worker's own, so the same guards take the same branches), and stops it. Never rejects: a
 * rehearsal that breaks only leaves the code cold.
 */
export async function rehearseJobs(
  options: WorkerChartOptions,
  { jobs = REHEARSED_JOBS, signal }: RehearsalOptions = {},
): Promise<RehearsalReport> {
  const report: RehearsalReport = { offered: 0, answered: 0, launched: 0, ended: 0 };
  const clock = new SimulatedClock();
  let toWorker: ((e: WorkerEvent) => void) | undefined;
  const endOf = new Map<string, () => void>();
  let pids = 0;
  const accept = async (job: Job): Promise<JobRequestDecision> => ({
    accepted: true,
    acceptArguments: { name: '', identity: `agent-${job.id}`, metadata: '', attributes: {} },
  });
  const machine = workerMachine.provide({
    actors: {
      serverLink: fromCallback<ServerLinkCommand, { url: string }>(({ sendBack, receive }) => {
        toWorker = sendBack;
        receive((cmd) => {
          // Encoded as the link would send it, and dropped.
          commandMessage(cmd)?.toBinary();
          if (cmd.type === 'AVAILABILITY_ANSWERED') report.answered++;
          if (cmd.type === 'JOB_STATUS_REPORTED' && cmd.outcome !== 'running') report.ended++;
        });
      }),
      loadSampler: fromCallback(() => () => undefined),
      jobRequest: jobRequestMachine.provide({
        actors: { decideRequest: fromPromise(({ input }) => accept(input.job)) },
      }),
      jobProcess: jobProcessMachine.provide({
        actors: {
          processHost: fromCallback<ProcessHostCommand, ProcessHostInput>(
            ({ input, sendBack, receive }) => {
              receive((cmd) => {
                if (cmd.type === 'JOB_LAUNCH_REQUESTED') {
                  report.launched++;
                  sendBack({ type: 'JOB_RUNNING' });
                } else if (cmd.type === 'EXIT_REQUESTED' || cmd.type === 'SIGKILL_REQUESTED') {
                  sendBack({ type: 'CHILD_EXITED', code: 0, signal: null });
                }
              });
              // How its job ends: the child returns it, then exits, as a job process does.
              endOf.set(input.procId, () => {
                sendBack({ type: 'JOB_RETURNED', outcome: 'success', reason: 'rehearsed' });
                sendBack({ type: 'CHILD_EXITED', code: 0, signal: null });
              });
              sendBack({ type: 'PROCESS_SPAWNED', pid: ++pids });
              sendBack({ type: 'PREWARM_SUCCEEDED' });
              return () => endOf.delete(input.procId);
            },
          ),
        },
      }),
    },
  });
  let actor: ReturnType<typeof createActor<typeof machine>> | undefined;
  try {
    actor = createActor(machine, {
      clock,
      input: {
        options: { ...options, now: () => clock.now(), jobsPerProcess: 1 },
        serverUrl: 'ws://rehearsal.invalid',
      },
    });
    actor.start();
    toWorker?.({ type: 'REGISTERED', workerId: 'AW_rehearsal', serverVersion: '' });
    for (let n = 0; n < jobs && !signal?.aborted; n++) {
      const { availability, assignment } = frames(n);
      const offer = serverReport(ServerMessage.fromBinary(availability));
      if (!offer) break;
      report.offered++;
      toWorker?.(offer);
      await settle();
      const assigned = serverReport(ServerMessage.fromBinary(assignment));
      if (!assigned) break;
      toWorker?.(assigned);
      // The job runs, then ends as a job does: its process returns it and exits.
      const procId = Object.values(actor.getSnapshot().context.procs).find(
        (p) => p.jobId === `AJ_rehearsal_${n}`,
      )?.procId;
      if (procId) endOf.get(procId)?.();
      // The spare replacing its process is started after a delay: the clock moves past it.
      clock.increment(options.spareRefillDelay + 1);
      await settle();
    }
  } catch (err) {
    // Only the warm-up is lost (the real chart is not touched): said in the report, not thrown.
    report.error = errorMessage(err);
  } finally {
    actor?.stop();
  }
  return report;
}

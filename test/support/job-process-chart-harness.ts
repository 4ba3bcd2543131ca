/**
 * The jobProcess chart alone, for chart-level tests: a fake process host the test drives by hand,
 * a tiny parent that records the contract's reports (with the child's state when each was sent),
 * and a SimulatedClock for every deadline. No processes, no real sleeps.
 */
import {
  SimulatedClock,
  createActor,
  fromCallback,
  setup,
  spawnChild,
  type AnyActorRef,
  type InspectionEvent,
} from 'xstate';
import type { JobProcessReport } from '../../machines/jobProcess.contract.ts';
import {
  jobProcessMachine,
  type JobProcessMachineInput,
} from '../../machines/jobProcess.machine.ts';
import type {
  ProcessHostCommand,
  ProcessHostEvent,
  ProcessHostInput,
} from '../../machines/processHost.contract.ts';

export interface RecordedReport {
  report: JobProcessReport;
  /** The child's state value when it sent the report. */
  state: unknown;
}

/**
 * What the fake host answers `SILENCE_MEASURE_REQUESTED` with: by default a child silent since before its
 * launch (a loop blocked from the entrypoint's first line).
 */
const BLOCKED_SINCE_LAUNCH = { silentMs: 12_000, sinceLaunchMs: 10_000 };

export function startJobProcessChart(
  input: JobProcessMachineInput,
  inspect?: (ev: InspectionEvent) => void,
  /** `null`: the host does not answer, the test does (`host()`). */
  silence: { silentMs: number; sinceLaunchMs: number } | null = BLOCKED_SINCE_LAUNCH,
) {
  const clock = new SimulatedClock();
  const commands: ProcessHostCommand[] = [];
  const recorded: RecordedReport[] = [];
  let hostSend: ((e: ProcessHostEvent) => void) | undefined;
  let hostStopped = false;
  // Set once the parent has spawned it; read when a report arrives.
  const spawnedRef: { current?: AnyActorRef } = {};

  const machine = jobProcessMachine.provide({
    actors: {
      processHost: fromCallback<ProcessHostCommand, ProcessHostInput>(({ sendBack, receive }) => {
        hostSend = sendBack;
        receive((c) => {
          commands.push(c);
          // Measured at once, as the real host does.
          if (c.type === 'SILENCE_MEASURE_REQUESTED' && silence)
            sendBack({ type: 'SILENCE_MEASURED', ...silence });
        });
        return () => {
          hostStopped = true;
        };
      }),
    },
  });
  const parent = setup({
    types: { events: {} as JobProcessReport },
    actors: { jobProcess: machine },
  }).createMachine({
    entry: spawnChild('jobProcess', { id: input.procId, systemId: input.procId, input }),
    on: {
      // Only the contract's reports; the parent also hears `xstate.done.actor.*` when the child ends.
      '*': {
        actions: ({ event }) => {
          if (event.type.startsWith('xstate.')) return;
          recorded.push({ report: event, state: spawnedRef.current?.getSnapshot().value });
        },
      },
    },
  });
  const root = createActor(parent, { clock, ...(inspect ? { inspect } : {}) });
  root.start();
  const spawned = root.system.get(input.procId) as AnyActorRef;
  spawnedRef.current = spawned;

  return {
    clock,
    commands,
    recorded,
    child: spawned,
    get hostStopped() {
      return hostStopped;
    },
    /** Sends the chart what the fake host observed. */
    host(e: ProcessHostEvent) {
      if (!hostSend) throw new Error('host not started');
      hostSend(e);
    },
  };
}

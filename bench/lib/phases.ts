/**
 * The latency job split into phases inside the job, from the stamps the fixtures put in their
 * data message (entrypoint called, connect resolved, user participant found) and in the
 * BENCH_STAMPS file (publish call resolved), and the user's receipt. The agent's clock and the
 * user's are the same machine's.
 */
import type { Figure } from './report.ts';
import type { JobTiming } from './scenarios.ts';

type Per = Figure['frameworks'];

const PHASES: { key: keyof JobTiming; id: string; figure: string; note: string }[] = [
  {
    key: 'entryToConnectedMs',
    id: 'entrypoint_to_connected',
    figure: 'in the job: entrypoint → ctx.connect() resolved',
    note: "The framework's connect: rtc-node's or the Python rtc package's room connect (signal, join, the peer connection), plus whatever the framework adds around it.",
  },
  {
    key: 'connectedToUserMs',
    id: 'connected_to_user',
    figure: 'in the job: connected → user participant found',
    note: 'The user joined before the dispatch, so it is in the room the connect returns: this is the wait-for-participant call alone.',
  },
  {
    key: 'userToPublishedMs',
    id: 'user_to_published',
    figure: 'in the job: user found → publishData resolved',
    note: 'Building the message and the publish call until it resolves (stamped after it into the BENCH_STAMPS file).',
  },
  {
    key: 'publishedToReceivedMs',
    id: 'published_to_received',
    figure: 'publishData resolved → the user receives the message',
    note: 'Negative when the user had the message before the publish call resolved in the agent: the call resolves after the FFI callback reaches the event loop, which can be later than the delivery.',
  },
  {
    key: 'entryToReceivedMs',
    id: 'entrypoint_to_received',
    figure: 'entrypoint → the user receives the message',
    note: "All of the job's part of dispatch → data message: the sum of the phases above.",
  },
];

/** One figure per phase (medians over the latency jobs). */
export function phaseFigures(
  perFramework: (pick: (t: JobTiming) => number | undefined) => Per,
  runs: number,
): Omit<Figure, 'ratio'>[] {
  return PHASES.map((p) => ({
    id: p.id,
    figure: p.figure,
    unit: 'ms',
    better: 'lower',
    runs,
    frameworks: perFramework((t) => t[p.key] as number | undefined),
    note: p.note,
  }));
}

/** The ids of every latency figure (what `--only latency` reports). */
export const LATENCY_FIGURES = new Set([
  'dispatch_to_agent_data',
  'dispatch_to_entrypoint',
  'assignment_to_entrypoint',
  ...PHASES.map((p) => p.id),
]);

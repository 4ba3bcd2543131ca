/**
 * One availability request, from the server's offer to the assignment: `deciding` (the user's
 * `requestFnc`, bounded by `REQUEST_TIMEOUT`), then `accepted` (waiting for the assignment,
 * bounded by `ASSIGNMENT_TIMEOUT`) or `declined`. Spawned by the worker per request; pure chart,
 * the decision itself is the `decideRequest` actor provided from `src/worker`. Its input,
 * decision and reports are in `jobRequest.contract.ts`.
 */
import { fromPromise, sendParent, setup } from 'xstate';
import type {
  DecideRequestInput,
  JobRequestDecision,
  JobRequestInput,
} from './jobRequest.contract.ts';

export const jobRequestMachine = setup({
  types: {
    input: {} as JobRequestInput,
    context: {} as JobRequestInput,
  },
  actors: {
    /** Runs `requestFnc`; provided from src/worker. The default declines (no user logic wired). */
    decideRequest: fromPromise<JobRequestDecision, DecideRequestInput>(async () => ({
      accepted: false,
      reason: 'no request handler provided',
    })),
  },
  delays: {
    REQUEST_TIMEOUT: ({ context }) => context.requestTimeout,
    ASSIGNMENT_TIMEOUT: ({ context }) => context.assignmentTimeout,
  },
}).createMachine({
  id: 'jobRequest',
  context: ({ input }) => input,
  initial: 'deciding',
  states: {
    deciding: {
      invoke: {
        src: 'decideRequest',
        input: ({ context }) => ({ job: context.job }),
        onDone: [
          {
            guard: ({ event }) => event.output.accepted,
            target: 'accepted',
            actions: sendParent(({ context, event }) => ({
              type: 'REQUEST_ACCEPTED',
              jobId: context.job.id,
              acceptArguments: (event.output as Extract<JobRequestDecision, { accepted: true }>)
                .acceptArguments,
            })),
          },
          {
            target: 'declined',
            actions: sendParent(({ context, event }) => ({
              type: 'REQUEST_DECLINED',
              jobId: context.job.id,
              decision: 'rejected',
              reason: (event.output as Extract<JobRequestDecision, { accepted: false }>).reason,
            })),
          },
        ],
        onError: {
          target: 'declined',
          actions: sendParent(({ context, event }) => ({
            type: 'REQUEST_DECLINED',
            jobId: context.job.id,
            decision: 'error',
            reason: `requestFnc threw: ${errorMessage(event.error)}`,
          })),
        },
      },
      after: {
        REQUEST_TIMEOUT: {
          target: 'declined',
          actions: sendParent(({ context }) => ({
            type: 'REQUEST_DECLINED',
            jobId: context.job.id,
            decision: 'timeout',
            reason: `requestFnc did not answer within ${context.requestTimeout} ms`,
          })),
        },
      },
    },
    accepted: {
      after: {
        ASSIGNMENT_TIMEOUT: {
          target: 'expired',
          actions: sendParent(({ context }) => ({
            type: 'ASSIGNMENT_TIMED_OUT',
            jobId: context.job.id,
          })),
        },
      },
    },
    declined: { type: 'final' },
    expired: { type: 'final' },
  },
});

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Chart transitions that no stimulus can take, with the reason. The coverage check accepts
 * them as uncovered only while they stay untaken and still exist (see chart-coverage.ts).
 */
import type { Unreachable } from './chart-coverage.ts';

export const UNREACHABLE: Unreachable = {
  jobProcess: {},
  worker: {
    'lifecycle.registered.available: AVAILABILITY_REQUESTED#1 → (stay)':
      'defensive: `available` is left by its `always` as soon as a job can no longer be taken, so an offer handled in `available` always passes canTakeJob',
    'lifecycle.draining: REQUEST_ACCEPTED#0 → (stay)':
      'defensive: entering `draining` stops every deciding request (declineUndecidedRequests), so no known job can be accepted while draining',
  },
};

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
    'processes: JOB_ENDED#1 → (stay)':
      'not with the model’s one job slot: a job is queued only while no other job runs, so none can be waiting when a reused process comes back; test/unit/process-reuse.test.ts takes it (a queued job takes a process as it comes back)',
    'lifecycle.stopping: FORCE_STOP_REQUESTED#0 → (stay)':
      'not with the model’s processes, which exit the moment they are signalled, so `stopping` is passed in one step; test/unit/worker.machine.test.ts takes it (a stop asked again while processes are still exiting)',
    'lifecycle.stopping: after PROCESS_EXIT_GRACE#0 → lifecycle.stopped':
      'defensive: every process killed on the way into `stopping` reaches a final state (`abandoned` at the latest) by its own kill timeout, which is shorter',
    'processes.closed: JOB_ENDED#0 → (stay)':
      'not with the model’s one job slot (as above), here while draining; test/unit/process-reuse.test.ts takes it (draining, a queued job still takes a process that comes back)',
  },
};

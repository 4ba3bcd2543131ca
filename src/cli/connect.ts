/**
 * `agent connect --room NAME`: one job in a named room without a dispatch. Once registered,
 * the worker asks the server for a job in that room for itself (LiveKit's `SimulateJobRequest`);
 * when that job ends the worker drains and the command exits with the job's outcome.
 */
import type { JobOutcome } from '../../machines/jobProcess.contract.ts';

import type { Logger } from '../log/logger.ts';
import type { Worker } from '../worker/worker.ts';

/** The server gives a simulated job 10 s to be accepted; past this the request was lost. */
const LAUNCH_DEADLINE_MS = 15_000;

export interface ConnectResult {
  /** The job's outcome, or `'failed'` if none ever started. */
  outcome: JobOutcome;
}

/**
 * Follows `worker` (already running) through one simulated job in `roomName`. Asks once, on the
 * first registration only: a reconnect must not start a second job in the same room.
 */
export function connectToRoom(
  worker: Worker,
  roomName: string,
  participantIdentity: string | undefined,
  log: Logger,
): { result: Promise<ConnectResult>; cancel: () => void } {
  let settle: (r: ConnectResult) => void = () => undefined;
  const result = new Promise<ConnectResult>((resolve) => {
    settle = resolve;
  });
  let asked = false;
  let jobId: string | undefined;
  let deadline: NodeJS.Timeout | undefined;

  const finish = (outcome: ConnectResult['outcome'], why: string) => {
    cleanup();
    settle({ outcome });
    worker.drain(why).catch((err: unknown) => log.error('drain failed', { error: err }));
  };
  const stopFollowing = worker.on('*', (ev) => {
    if (ev.type === 'registered' && !asked) {
      asked = true;
      log.info('asking the server for a job in the room', { roomName, participantIdentity });
      worker.simulateJob(roomName, participantIdentity);
      deadline = setTimeout(() => {
        log.error('no job started in the room in time', { roomName, ms: LAUNCH_DEADLINE_MS });
        finish('failed', 'connect: no job started');
      }, LAUNCH_DEADLINE_MS);
    } else if (ev.type === 'jobLaunched' && jobId === undefined) {
      jobId = ev.jobId;
      clearTimeout(deadline);
      deadline = undefined;
    } else if (ev.type === 'jobEnded' && ev.jobId === jobId) {
      finish(ev.outcome, 'connect: job ended');
    } else if (ev.type === 'stopped') {
      cleanup();
      settle({ outcome: 'failed' });
    }
  });
  function cleanup(): void {
    stopFollowing();
    if (deadline) clearTimeout(deadline);
    deadline = undefined;
  }
  return {
    result,
    cancel: () => {
      cleanup();
      settle({ outcome: 'failed' });
    },
  };
}

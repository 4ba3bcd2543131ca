/**
 * The `decideRequest` actor: runs the user's `requestFnc` for one offered job. Whatever the
 * user does — accepts, rejects, returns without deciding, throws — this settles with a decision;
 * the chart bounds how long it may take.
 */
import type { Job } from '@livekit/protocol';
import { fromPromise } from 'xstate';
import { JobRequest, type JobRequestDecision } from '../job/request.ts';
import type { WorkerOptions } from '../options.ts';

const acceptAll = (req: JobRequest) => req.accept();

export function createDecideRequest(requestFnc: WorkerOptions['requestFnc']) {
  const fnc = requestFnc ?? acceptAll;
  return fromPromise<JobRequestDecision, { job: Job }>(
    ({ input }) =>
      new Promise<JobRequestDecision>((resolve) => {
        // The first of accept/reject/return/throw wins; later ones are ignored by `resolve`.
        const req = new JobRequest(input.job, resolve);
        Promise.resolve()
          .then(() => fnc(req))
          .then(
            () =>
              resolve({
                accepted: false,
                reason: 'requestFnc returned without calling accept() or reject()',
              }),
            (err: unknown) =>
              resolve({
                accepted: false,
                reason: `requestFnc threw: ${err instanceof Error ? err.message : String(err)}`,
              }),
          );
      }),
  );
}

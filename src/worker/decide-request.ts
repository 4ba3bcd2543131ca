/**
 * The `decideRequest` actor: runs the user's `requestFnc` for one offered job. It settles with
 * the first of accept/reject; a `requestFnc` that returns without deciding is a rejection. A
 * throw rejects the actor, and the jobRequest chart (`onError`) makes it the `error` decision:
 * that is the one place a user's throw is caught. The chart also bounds how long this may take.
 */
import { fromPromise } from 'xstate';
import type { DecideRequestInput, JobRequestDecision } from '../../machines/jobRequest.contract.ts';
import { JobRequest } from './job-request.ts';
import type { WorkerOptions } from '../options/worker-options.ts';

const acceptAll = (req: JobRequest) => req.accept();

export function createDecideRequest(requestFnc: WorkerOptions['requestFnc']) {
  const fnc = requestFnc ?? acceptAll;
  return fromPromise<JobRequestDecision, DecideRequestInput>(
    ({ input }) =>
      new Promise<JobRequestDecision>((resolve, reject) => {
        // The first of accept/reject/return/throw wins; later ones are ignored by the promise.
        const req = new JobRequest(input.job, resolve);
        Promise.resolve()
          .then(() => fnc(req))
          .then(
            () =>
              resolve({
                accepted: false,
                reason: 'requestFnc returned without calling accept() or reject()',
              }),
            reject,
          );
      }),
  );
}

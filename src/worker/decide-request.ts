/**
 * The `decideRequest` actor: runs the user's `requestFnc` for one offered job. It settles with
 * the first of accept/reject; a `requestFnc` that returns without deciding is a rejection. A
 * throw rejects the actor, and the jobRequest chart (`onError`) makes it the `error` decision:
 * that is the one place a user's throw is caught. The chart also bounds how long this may take.
 */
import { fromPromise } from 'xstate';
import type { Job } from '@livekit/protocol';
import type {
  DecideRequestInput,
  JobRequestDecision,
  ResolvedAcceptArguments,
} from '../../machines/jobRequest.contract.ts';
import { JobRequest } from './job-request.ts';
import type { WorkerOptions } from '../options/worker-options.ts';

const acceptAll = (req: JobRequest) => req.accept();

/**
 * Job recovery's hook (`src/recovery/recoverer.ts`): the accept arguments of a pending recovery
 * this offer is, looked up before `requestFnc`. A recovery is taken without asking `requestFnc`:
 * the job was accepted once already, and its identity must be the one it had. Never rejects.
 */
export type RecoveryLookup = (job: Job) => Promise<ResolvedAcceptArguments | undefined>;

export function createDecideRequest(
  requestFnc: WorkerOptions['requestFnc'],
  recoveryLookup?: RecoveryLookup,
) {
  const fnc = requestFnc ?? acceptAll;
  const decide = (input: DecideRequestInput) =>
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
    });
  return fromPromise<JobRequestDecision, DecideRequestInput>(({ input }) =>
    recoveryLookup
      ? recoveryLookup(input.job).then((acceptArguments) =>
          acceptArguments ? { accepted: true as const, acceptArguments } : decide(input),
        )
      : decide(input),
  );
}

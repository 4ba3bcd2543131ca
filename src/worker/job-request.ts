/**
 * `JobRequest`: what `requestFnc` receives for each job the server offers. The first of
 * `accept()` / `reject()` decides; a `requestFnc` that returns or throws without deciding
 * rejects, and so does one that runs past its budget — the server is never left without an answer.
 */
import type { Job, ParticipantInfo, Room } from '@livekit/protocol';
import { InvalidOptionError } from '../errors.ts';
import type {
  JobRequestDecision,
  ResolvedAcceptArguments,
} from '../../machines/jobRequest.contract.ts';

/** Arguments given to `requestFnc`'s `accept`. */
export interface AcceptArguments {
  /** Display name of the agent participant (default: empty, the identity shows). */
  name?: string;
  /** Identity of the agent participant (default: `agent-<jobId>`). */
  identity?: string;
  metadata?: string;
  attributes?: Record<string, string>;
}

/** A job offered to this worker, awaiting `accept()` or `reject()`. */
export class JobRequest {
  /** The job as the server describes it. */
  readonly job: Job;
  readonly #decide: (d: JobRequestDecision) => void;
  #decided = false;

  /** @internal Built by the worker for each availability request. */
  constructor(job: Job, decide: (d: JobRequestDecision) => void) {
    this.job = job;
    this.#decide = decide;
  }

  /** The job's id (`AJ_…`). */
  get id(): string {
    return this.job.id;
  }

  /** The room the job is for. */
  get room(): Room | undefined {
    return this.job.room;
  }

  /** The participant a PUBLISHER job is for; `undefined` for ROOM jobs. */
  get publisher(): ParticipantInfo | undefined {
    return this.job.participant;
  }

  /**
   * The participant the job is for: the one that joined (PARTICIPANT jobs) or the publisher
   * (PUBLISHER jobs); `undefined` for ROOM jobs.
   */
  get participant(): ParticipantInfo | undefined {
    return this.job.participant;
  }

  /** The agent name the job was dispatched to (`''` for automatic dispatch). */
  get agentName(): string {
    return this.job.agentName;
  }

  /**
   * Takes the job. `identity` defaults to `agent-<jobId>`, `name` to `''` (the identity shows).
   * Only the first of `accept`/`reject` counts.
   */
  async accept(args: AcceptArguments = {}): Promise<void> {
    const acceptArguments = resolveAcceptArguments(this.job.id, args);
    this.#settle({ accepted: true, acceptArguments });
  }

  /** Declines the job; the server offers it to another worker. */
  async reject(reason = 'rejected by requestFnc'): Promise<void> {
    this.#settle({ accepted: false, reason });
  }

  #settle(d: JobRequestDecision): void {
    if (this.#decided) return;
    this.#decided = true;
    this.#decide(d);
  }
}

/** Applies the defaults LiveKit documents for the agent participant and checks the types. */
export function resolveAcceptArguments(
  jobId: string,
  args: AcceptArguments,
): ResolvedAcceptArguments {
  const check = (name: string, v: unknown): string | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new InvalidOptionError(`accept.${name}`, 'must be a string');
    return v;
  };
  const attributes = args.attributes ?? {};
  if (typeof attributes !== 'object' || attributes === null) {
    throw new InvalidOptionError('accept.attributes', 'must be an object of strings');
  }
  for (const [k, v] of Object.entries(attributes)) {
    if (typeof v !== 'string')
      throw new InvalidOptionError(`accept.attributes.${k}`, 'must be a string');
  }
  return {
    name: check('name', args.name) ?? '',
    identity: check('identity', args.identity) || `agent-${jobId}`,
    metadata: check('metadata', args.metadata) ?? '',
    attributes: { ...attributes },
  };
}

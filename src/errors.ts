/**
 * Named errors. Every error the framework raises is one of these, so callers can branch on
 * `instanceof` (or `.name`) instead of parsing messages; the underlying error is kept as `cause`.
 */

/** Base class of every agentstate error. */
export class AgentStateError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An option passed to `WorkerOptions` (or a flag/env that feeds one) is invalid. */
export class InvalidOptionError extends AgentStateError {
  /** The option's name as the user wrote it, e.g. `loadThreshold`. */
  readonly option: string;
  constructor(option: string, problem: string, options?: { cause?: unknown }) {
    super(`Invalid option \`${option}\`: ${problem}`, options);
    this.option = option;
  }
}

/** The LiveKit server refused the worker (bad credentials, wrong URL, not an agent endpoint). */
export class ServerRefusedError extends AgentStateError {}

/** The user's entrypoint threw, or a job could not run. */
export class JobError extends AgentStateError {}

/**
 * A wait on the agent-dispatch emulator (`agentstate/testing`) ended without its condition
 * holding: the deadline passed (`reason: 'timeout'`) or the emulator was closed (`'closed'`).
 */
export class EmulatorWaitError extends AgentStateError {
  readonly reason: 'timeout' | 'closed';
  constructor(message: string, reason: 'timeout' | 'closed', options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

/** A wait bounded by `withDeadline` (src/clock.ts) ran out before the work settled. */
export class DeadlineExceededError extends AgentStateError {
  /** The deadline that passed, in ms. */
  readonly ms: number;
  constructor(what: string, ms: number) {
    super(`${what} did not settle within ${ms} ms`);
    this.ms = ms;
  }
}

/** The message of anything thrown: an `Error`'s message, else the value as a string. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

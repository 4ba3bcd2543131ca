/**
 * What a job process sends before it exits at its host's `terminate` (./job-entry.ts): the
 * spans its tracing still holds (../telemetry/job-spans.ts), within a deadline that stays well
 * inside the host's TERMINATE_TIMEOUT. Without tracing there is nothing to wait for, and the
 * process exits at once, as it always did.
 */
import { withDeadline } from '../clock.ts';

let flush: (() => Promise<void>) | undefined;

/** At most this long between `terminate` and the exit (the host waits 5 s before SIGKILL). */
const EXIT_FLUSH_TIMEOUT_MS = 3_000;

export function setExitFlush(fn: () => Promise<void>): void {
  flush = fn;
}

export function exitAfterFlush(code: number): void {
  if (!flush) process.exit(code);
  // Flushed, failed or past its deadline, the process exits with the code it was given.
  void withDeadline(flush(), EXIT_FLUSH_TIMEOUT_MS, 'flushing spans before the exit')
    .catch(() => undefined)
    .then(() => process.exit(code));
}

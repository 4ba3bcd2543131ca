/**
 * Deadline-bound waits on emulator state. A waiter re-checks its probe after every event (all
 * state changes emit one), so no polling timer exists; each waiter owns exactly one deadline
 * timer, removed when it settles.
 */
import { EmulatorWaitError } from '../errors.ts';

interface Waiter {
  check(): void;
  fail(err: EmulatorWaitError): void;
}

export class Waits {
  private readonly waiters = new Set<Waiter>();
  private closed = false;

  /** `describeRecent` renders recent activity into timeout messages, to make failures legible. */
  constructor(private readonly describeRecent: () => string) {}

  /**
   * Resolves with the probe's first truthy result; rejects with {@link EmulatorWaitError} at
   * the deadline or on close, or with whatever the probe throws.
   */
  until<T>(probe: () => T | undefined | null | false, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.closed) {
        reject(new EmulatorWaitError(`emulator closed before ${what}`, 'closed'));
        return;
      }
      const settle = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      const waiter: Waiter = {
        check: () => {
          let value: T | undefined | null | false;
          try {
            value = probe();
          } catch (err) {
            settle();
            reject(err instanceof Error ? err : new Error(String(err)));
            return;
          }
          if (value !== undefined && value !== null && value !== false) {
            settle();
            resolve(value);
          }
        },
        fail: (err) => {
          settle();
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        waiter.fail(
          new EmulatorWaitError(
            `timed out after ${timeoutMs} ms waiting for ${what}\nrecent events:\n${this.describeRecent()}`,
            'timeout',
          ),
        );
      }, timeoutMs);
      this.waiters.add(waiter);
      waiter.check();
    });
  }

  /** Re-checks every waiter; called after each event. */
  poke(): void {
    for (const w of [...this.waiters]) w.check();
  }

  /** Rejects every waiter and refuses new ones. */
  close(): void {
    this.closed = true;
    for (const w of [...this.waiters]) {
      w.fail(new EmulatorWaitError('emulator closed while waiting', 'closed'));
    }
  }
}

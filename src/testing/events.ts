/**
 * The emulator's event log: numbered, timestamped, bounded, with synchronous listeners. Every
 * state change goes through here, which is what lets waits re-check on events alone.
 */
import type { EventInput } from './connection.ts';
import type { EmulatorEvent } from './types.ts';

export class EventLog {
  private readonly log: EmulatorEvent[] = [];
  private readonly listeners = new Set<(event: EmulatorEvent) => void>();
  private seq = 0;
  private silent = false;

  /** `afterEach` runs after listeners, for every event until {@link silence}. */
  constructor(
    private readonly maxEvents: number,
    private readonly afterEach: () => void,
  ) {}

  get lastSeq(): number {
    return this.seq;
  }

  all(): EmulatorEvent[] {
    return [...this.log];
  }

  /** The first kept event with `seq > after` that satisfies `pred`. */
  find<T extends EmulatorEvent>(after: number, pred: (e: EmulatorEvent) => e is T): T | undefined {
    return this.log.find((e): e is T => e.seq > after && pred(e));
  }

  add(listener: (event: EmulatorEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  remove(listener: (event: EmulatorEvent) => void): void {
    this.listeners.delete(listener);
  }

  emit(input: EventInput): void {
    const event = { ...input, seq: ++this.seq, at: Date.now() };
    this.log.push(event);
    if (this.log.length > this.maxEvents) this.log.shift();
    if (this.silent) return;
    for (const l of [...this.listeners]) {
      try {
        l(event);
      } catch (err) {
        // A listener bug must not corrupt protocol handling; surface it as an uncaught error.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    this.afterEach();
  }

  /** Keeps recording but drops listeners and stops `afterEach` (used on close). */
  silence(): void {
    this.silent = true;
    this.listeners.clear();
  }

  /** The last `count` events, one per line, for timeout messages. */
  describeRecent(count = 15): string {
    return this.log
      .slice(-count)
      .map((e) => {
        const { seq, at: _at, type, ...rest } = e;
        const json = JSON.stringify(rest, (_k, v: unknown) =>
          typeof v === 'bigint' ? String(v) : v,
        );
        return `  #${seq} ${type} ${json}`;
      })
      .join('\n');
  }
}

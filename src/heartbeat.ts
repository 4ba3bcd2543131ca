/**
 * A liveness watch: every `intervalMs` it checks how long the other side has been silent, and
 * either pings it or, past `silenceLimitMs`, gives up once. The server link watches the server
 * with it (WorkerPing + WS ping, heard on any frame or pong), the process host watches each job
 * process (IPC ping, heard on pong). Time comes from the injected clock.
 */
import type { Clock } from './clock.ts';

export interface HeartbeatOptions {
  clock: Clock;
  /** How often to check, and ping if all is well. */
  intervalMs: number;
  /** Silence longer than this ends the watch: `onSilent` is called once. */
  silenceLimitMs: number;
  ping: () => void;
  onSilent: (silentMs: number) => void;
}

export interface Heartbeat {
  /** The other side said something: the silence starts again from now. */
  heard(): void;
  /** How long the other side has been silent, now. */
  silentMs(): number;
  /** Stops the watch; no ping or `onSilent` after this. Safe to call twice. */
  stop(): void;
}

/** Starts watching; the silence is counted from now. */
export function startHeartbeat(o: HeartbeatOptions): Heartbeat {
  let lastHeard = o.clock.now();
  let timer: unknown;
  let stopped = false;
  const beat = () => {
    if (stopped) return;
    const silentMs = o.clock.now() - lastHeard;
    if (silentMs > o.silenceLimitMs) {
      stopped = true;
      o.onSilent(silentMs);
      return;
    }
    o.ping();
    schedule();
  };
  // Chained timeouts: the clock has no interval, and a beat never overlaps the next.
  const schedule = () => {
    if (!stopped) timer = o.clock.setTimeout(beat, o.intervalMs);
  };
  schedule();
  return {
    heard: () => {
      lastHeard = o.clock.now();
    },
    silentMs: () => o.clock.now() - lastHeard,
    stop: () => {
      stopped = true;
      o.clock.clearTimeout(timer);
    },
  };
}

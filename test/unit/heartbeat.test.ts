/**
 * The liveness watch shared by the server link and the process host's pinger, under a
 * simulated clock: it pings on its interval, gives up once after the silence limit, starts the
 * silence again when the other side is heard, and does nothing once stopped.
 */
import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { startHeartbeat } from '../../src/heartbeat.ts';

function watch(intervalMs = 100, silenceLimitMs = 250) {
  const clock = new SimulatedClock();
  const pings: number[] = [];
  const silences: number[] = [];
  const hb = startHeartbeat({
    clock,
    intervalMs,
    silenceLimitMs,
    ping: () => pings.push(clock.now()),
    onSilent: (ms) => silences.push(ms),
  });
  return { clock, hb, pings, silences };
}

describe('heartbeat', () => {
  it('pings every interval while the silence is within the limit', () => {
    const { clock, pings, silences } = watch();
    clock.increment(99);
    expect(pings).toEqual([]);
    clock.increment(1);
    clock.increment(100);
    expect(pings).toEqual([100, 200]);
    expect(silences).toEqual([]);
  });

  it('gives up once, with the silence, after the limit; no ping after that', () => {
    const { clock, pings, silences } = watch();
    for (let i = 0; i < 10; i++) clock.increment(100);
    expect(pings).toEqual([100, 200]);
    expect(silences).toEqual([300]);
  });

  it('counts the silence from the last time the other side was heard', () => {
    const { clock, hb, pings, silences } = watch();
    // SimulatedClock runs due timers at the end of an increment: step one interval at a time.
    const step = (n: number) => {
      for (let i = 0; i < n; i++) clock.increment(100);
    };
    step(2);
    hb.heard();
    step(2);
    expect(silences).toEqual([]);
    expect(pings).toEqual([100, 200, 300, 400]);
    step(1);
    expect(silences).toEqual([300]);
  });

  it('does nothing once stopped (twice is fine)', () => {
    const { clock, hb, pings, silences } = watch();
    clock.increment(100);
    hb.stop();
    hb.stop();
    clock.increment(10_000);
    expect(pings).toEqual([100]);
    expect(silences).toEqual([]);
  });
});

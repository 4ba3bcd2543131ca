/**
 * The job process memory watch under a simulated clock, with the RSS samples scripted: it warns
 * above the soft limit at most every two minutes (or again after 50 MB of growth), ends the
 * process once above the hard limit, and stops sampling after that or when stopped.
 */
import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import type { Logger } from '../../src/log/logger.ts';
import { startMemoryWatch } from '../../src/job-host/memory-watch.ts';

function watch(samples: number[], limits: { warnMb: number; limitMb: number }) {
  const clock = new SimulatedClock();
  const logs: { level: string; message: string }[] = [];
  const exceeded: number[] = [];
  let reads = 0;
  const log = (level: string) => (message: string) => logs.push({ level, message });
  const logger: Logger = {
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    child: () => logger,
  };
  const stop = startMemoryWatch({
    pid: 4242,
    ...limits,
    intervalMs: 5_000,
    clock,
    log: () => logger,
    onExceeded: (mb) => exceeded.push(mb),
    readRss: async () => samples[reads++],
  });
  /** Advances to the next sample and lets it settle. */
  const tick = async (ms = 5_000) => {
    clock.increment(ms);
    for (let i = 0; i < 3; i++) await Promise.resolve();
  };
  const warnings = () => logs.filter((l) => l.level === 'warn').length;
  return { tick, stop, logs, exceeded, warnings, reads: () => reads };
}

describe('memory watch', () => {
  it('warns above the soft limit, then again only after two minutes or 50 MB more', async () => {
    const w = watch([310, 320, 330, 380, 390, 390], { warnMb: 300, limitMb: 0 });
    await w.tick();
    expect(w.warnings()).toBe(1);
    await w.tick();
    await w.tick();
    expect(w.warnings()).toBe(1);
    await w.tick(); // 380: 70 MB above the last warning
    expect(w.warnings()).toBe(2);
    await w.tick();
    expect(w.warnings()).toBe(2);
    await w.tick(120_001);
    expect(w.warnings()).toBe(3);
    w.stop();
  });

  it('reports the hard limit once and stops sampling', async () => {
    const w = watch([100, 500, 600], { warnMb: 0, limitMb: 400 });
    await w.tick();
    expect(w.exceeded).toEqual([]);
    await w.tick();
    expect(w.exceeded).toEqual([500]);
    expect(w.logs.at(-1)?.level).toBe('error');
    await w.tick();
    await w.tick();
    expect(w.reads()).toBe(2);
  });

  it('samples nothing when both limits are off, and nothing after stop', async () => {
    const off = watch([999], { warnMb: 0, limitMb: 0 });
    await off.tick();
    expect(off.reads()).toBe(0);
    const on = watch([10, 10, 10], { warnMb: 300, limitMb: 400 });
    await on.tick();
    on.stop();
    await on.tick();
    expect(on.reads()).toBe(1);
  });
});

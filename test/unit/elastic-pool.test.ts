/**
 * The opt-in elastic warm pool (`elasticIdleProcesses`), chart level: the spares follow the
 * recent arrival rate of offers and the measured start time, between min and max, bounded by
 * the memory the spares may hold. The real worker chart under a SimulatedClock; each fake
 * process gets warm START_MS after its spawn and says its RSS, as a real one does.
 */
import { describe, expect, it } from 'vitest';
import type { WorkerChartOptions } from '../../machines/worker.contract.ts';
import { makeJob, prewarmed, startWorkerChart } from '../support/worker-chart-harness.ts';

/** A start as the fake processes take it (ms of simulated time from spawn to warm). */
const START_MS = 400;
const WARM_RSS_MB = 60;
const STEP_MS = 50;

const elastic = (min: number, max: number, memoryMb = 1024) => ({
  elasticPool: {
    min,
    max,
    memoryMb,
    arrivalWindow: 10_000,
    burstWindow: 2_000,
    resizeInterval: 1_000,
  },
  numIdleProcesses: min,
});

/**
 * A worker whose processes start in START_MS, offered jobs that run until the test ends. It
 * records, for every job, whether its assignment found no warm process (it was queued), and the
 * spares (idle or starting processes without a job) after every step.
 */
async function pool(options: Partial<WorkerChartOptions>) {
  const w = startWorkerChart({
    options: { maxConcurrentStarts: 2, spareRefillDelay: 500, ...options },
    autoPrewarm: false,
  });
  const spawnedAt = new Map<string, number>();
  const warm = new Set<string>();
  const queued: string[] = [];
  const spareTrace: { at: number; spares: number }[] = [];
  const ctx = () => w.actor.getSnapshot().context;
  const spares = () =>
    Object.values(ctx().procs).filter((p) => !p.jobId && p.phase !== 'exiting').length;
  const idle = () => Object.values(ctx().procs).filter((p) => p.phase === 'idle' && !p.jobId);
  const observe = async () => {
    for (const [procId, host] of w.hosts) {
      if (!spawnedAt.has(procId)) spawnedAt.set(procId, w.clock.now());
      if (!warm.has(procId) && w.clock.now() - spawnedAt.get(procId)! >= START_MS) {
        warm.add(procId);
        host.send({ type: 'PROCESS_SPAWNED', pid: 1 });
        host.send(prewarmed(WARM_RSS_MB));
      }
    }
    await w.flush();
    spareTrace.push({ at: w.clock.now(), spares: spares() });
  };
  /** Simulated time passes in steps; processes get warm on the way. */
  const wait = async (ms: number) => {
    for (let t = 0; t < ms; t += STEP_MS) {
      w.clock.increment(STEP_MS);
      await observe();
    }
  };
  let seq = 0;
  /** One offer, accepted, and its assignment. */
  const offer = async () => {
    const job = makeJob(`AJ_${++seq}`);
    w.server({ type: 'AVAILABILITY_REQUESTED', job });
    await w.flush();
    w.server({ type: 'JOB_ASSIGNED', job, token: 'tok', url: undefined });
    await w.flush();
    if (ctx().jobs[job.id]?.phase === 'queued') queued.push(job.id);
    await observe();
  };
  /** Offers every `everyMs` for `count` offers. */
  const offers = async (count: number, everyMs: number) => {
    for (let i = 0; i < count; i++) {
      await offer();
      await wait(everyMs);
    }
  };
  const peakSpares = (from: number, to: number) =>
    Math.max(...spareTrace.filter((s) => s.at >= from && s.at < to).map((s) => s.spares));
  w.server({ type: 'REGISTERED', workerId: 'AW_1', serverVersion: '1' });
  await w.flush();
  await observe();
  await wait(2_000);
  return { ...w, wait, offers, queued, spares, idle, peakSpares, ctx };
}

/**
 * A burst that builds up to what two start slots of START_MS can supply (5/s): 1 offer/s for
 * 4 s, 2/s for 3 s, then 4/s for 3 s.
 */
async function rampingBurst(p: Awaited<ReturnType<typeof pool>>) {
  const start = p.clock.now();
  await p.offers(4, 1_000);
  const faster = p.clock.now();
  await p.offers(6, 500);
  const fastest = p.clock.now();
  await p.offers(12, 250);
  return { start, faster, fastest, end: p.clock.now() };
}

describe('elastic warm pool', () => {
  it('grows ahead of a burst as offers come faster, so fewer jobs wait for a start than with a fixed pool', async () => {
    const fixed = await pool({ numIdleProcesses: 1 });
    await rampingBurst(fixed);

    const e = await pool(elastic(1, 8));
    expect(e.spares()).toBe(1);
    const t = await rampingBurst(e);
    // Before the burst peaks, the pool already holds more spares than its minimum: the rate of
    // the first offers raised the target, and processes were started for offers not yet made.
    expect(e.peakSpares(t.start, t.faster)).toBeGreaterThanOrEqual(2);
    expect(e.peakSpares(t.faster, t.fastest)).toBeGreaterThanOrEqual(3);
    expect(e.peakSpares(t.fastest, t.end)).toBeGreaterThanOrEqual(5);
    expect(e.peakSpares(t.start, t.end)).toBeLessThanOrEqual(8);
    expect(fixed.peakSpares(t.start, t.end)).toBeLessThanOrEqual(2);
    // The same 22 offers: every elastic job found a warm process; the fixed pool's one spare,
    // replaced a start after each job took it, fell behind from 2 offers/s on.
    expect(e.queued).toEqual([]);
    expect(fixed.queued.length).toBeGreaterThanOrEqual(10);
  });

  it('shrinks back to its minimum once the offers stop, letting the surplus spares go', async () => {
    const e = await pool(elastic(1, 8));
    await rampingBurst(e);
    await e.wait(2_000);
    expect(e.idle().length).toBeGreaterThan(2);
    // The offers leave the 10 s window; the pool lets its surplus go as they do.
    await e.wait(12_000);
    expect(e.idle()).toHaveLength(1);
    expect(e.spares()).toBe(1);
    const retired = e.emitted.filter(
      (x) => x.type === 'processExited' && x.reason.includes('surplus idle process'),
    );
    expect(retired.length).toBeGreaterThanOrEqual(2);
    expect(retired.every((x) => x.type === 'processExited' && !x.failed)).toBe(true);
    // No offer is remembered beyond the window.
    expect(e.ctx().arrivals).toEqual([]);
    // Quiet, it stays at its minimum.
    await e.wait(5_000);
    expect(e.spares()).toBe(1);
  });

  it('keeps no more spares than fit in memoryMb by the measured RSS of a warm process', async () => {
    // 130 MB at 60 MB a process: two spares at most, however fast the offers come.
    const e = await pool(elastic(1, 8, 130));
    const t = await rampingBurst(e);
    expect(e.ctx().spareMemoryEstimate).toBe(WARM_RSS_MB);
    expect(e.peakSpares(t.start, t.end)).toBeLessThanOrEqual(2);
    expect(e.peakSpares(t.start, t.end)).toBe(2);
  });

  it('stays at its minimum while no warm process has said its memory', async () => {
    const w = startWorkerChart({ options: elastic(1, 8) });
    w.server({ type: 'REGISTERED', workerId: 'AW_1', serverVersion: '1' });
    await w.flush();
    for (let i = 0; i < 10; i++) {
      w.server({ type: 'AVAILABILITY_REQUESTED', job: makeJob(`AJ_${i}`) });
      await w.flush();
      w.clock.increment(100);
    }
    expect(w.actor.getSnapshot().context.spareMemoryEstimate).toBeUndefined();
    // One spare (min) for the ten jobs being decided: the target did not grow.
    expect(Object.keys(w.actor.getSnapshot().context.procs)).toHaveLength(1);
  });
});

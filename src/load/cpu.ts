/**
 * The default load function: CPU utilisation of this machine — or of this container, when a
 * cgroup limits it — averaged over a sliding window (5 s), in [0, 1].
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';

/** A cumulative CPU reading: busy time and the capacity it is measured against, both in µs. */
export interface CpuReading {
  busyMicros: number;
  /** Number of CPUs the busy time is shared over (cgroup quota or core count). */
  cpuCount: number;
  atMs: number;
}

export type CpuReader = () => CpuReading;

/** Reads cgroup v2, then cgroup v1, then falls back to the host's `/proc/stat` view. */
export function detectCpuReader(root = '/sys/fs/cgroup'): CpuReader {
  const v2 = readText(`${root}/cpu.stat`);
  if (v2 !== undefined && /usage_usec/.test(v2)) {
    const count = cgroupV2Cpus(readText(`${root}/cpu.max`));
    return () => ({
      busyMicros: Number(/usage_usec (\d+)/.exec(readText(`${root}/cpu.stat`) ?? '')?.[1] ?? 0),
      cpuCount: count,
      atMs: performance.now(),
    });
  }
  const v1Usage = `${root}/cpuacct/cpuacct.usage`;
  if (readText(v1Usage) !== undefined) {
    const quota = Number(readText(`${root}/cpu/cpu.cfs_quota_us`) ?? -1);
    const period = Number(readText(`${root}/cpu/cpu.cfs_period_us`) ?? 100_000);
    const count = quota > 0 && period > 0 ? quota / period : availableParallelism();
    return () => ({
      busyMicros: Number(readText(v1Usage) ?? 0) / 1000,
      cpuCount: count,
      atMs: performance.now(),
    });
  }
  return hostCpuReader;
}

/** `cpu.max` is `max 100000` (no limit) or `<quota> <period>`. */
export function cgroupV2Cpus(cpuMax: string | undefined): number {
  const [quota, period] = (cpuMax ?? 'max').trim().split(/\s+/);
  if (!quota || quota === 'max' || !period) return availableParallelism();
  const n = Number(quota) / Number(period);
  return Number.isFinite(n) && n > 0 ? n : availableParallelism();
}

const hostCpuReader: CpuReader = () => {
  let busy = 0;
  const all = cpus();
  for (const c of all) busy += c.times.user + c.times.nice + c.times.sys + c.times.irq;
  return { busyMicros: busy * 1000, cpuCount: all.length || 1, atMs: performance.now() };
};

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Keeps readings over a window and answers the average utilisation across it.
 * `sample()` is called periodically (by the load sampler); `utilisation()` is cheap.
 */
export class CpuWindow {
  readonly #read: CpuReader;
  readonly #windowMs: number;
  #readings: CpuReading[] = [];

  constructor(read: CpuReader = detectCpuReader(), windowMs = 5_000) {
    this.#read = read;
    this.#windowMs = windowMs;
    this.sample();
  }

  sample(): void {
    const r = this.#read();
    this.#readings.push(r);
    // Keep one reading at or before the window start, so the window is always fully covered.
    while (this.#readings.length > 2 && r.atMs - this.#readings[1]!.atMs >= this.#windowMs) {
      this.#readings.shift();
    }
  }

  utilisation(): number {
    const first = this.#readings[0];
    const last = this.#readings[this.#readings.length - 1];
    if (!first || !last || last.atMs <= first.atMs) return 0;
    const capacityMicros = (last.atMs - first.atMs) * 1000 * last.cpuCount;
    return clamp01((last.busyMicros - first.busyMicros) / capacityMicros);
  }
}

export function clamp01(n: number): number {
  if (!Number.isFinite(n)) return 0;
  return Math.min(1, Math.max(0, n));
}

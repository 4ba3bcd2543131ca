/** Summaries of samples: median, p95 (nearest rank), max. */
export interface Summary {
  median: number;
  p95: number;
  max: number;
  n: number;
}

export function summarize(samples: number[]): Summary | undefined {
  if (samples.length === 0) return undefined;
  const s = [...samples].sort((a, b) => a - b);
  const rank = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
  const mid = s.length / 2;
  const median = s.length % 2 ? s[Math.floor(mid)]! : (s[mid - 1]! + s[mid]!) / 2;
  return {
    median: round(median),
    p95: round(rank(0.95)),
    max: round(s[s.length - 1]!),
    n: s.length,
  };
}

export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

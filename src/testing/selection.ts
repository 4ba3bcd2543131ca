/**
 * Worker choice for one job, as livekit-server v1.13.5 does it: a psrpc affinity gate first
 * (a node whose workers have no headroom below `targetLoad` never claims the job), then a
 * weighted random pick by spare capacity among the workers not asked yet.
 */

/** The part of a worker that selection reads. */
export interface Candidate {
  id: string;
  status: 'available' | 'full';
  load: number;
}

/**
 * Σ max(0, targetLoad − load) over available workers. The psrpc client only takes a claim
 * whose affinity is strictly greater than 0, so 0 means the job is never sent to anyone.
 */
export function affinity(workers: readonly Candidate[], targetLoad: number): number {
  // float32 like the server (`load` is a proto float, `target_load` a float32), so a worker
  // reporting 0.7 has exactly no headroom rather than 1e-8 of it.
  const target = Math.fround(targetLoad);
  let sum = 0;
  for (const w of workers) {
    if (w.status === 'available')
      sum = Math.fround(sum + Math.max(0, Math.fround(target - w.load)));
  }
  return sum;
}

/**
 * Picks an available worker not in `tried`, with probability proportional to max(0, 1 − load).
 * Returns undefined when no candidate has positive weight (the server's
 * "no workers with sufficient capacity").
 */
export function pickWeighted<T extends Candidate>(
  workers: readonly T[],
  tried: ReadonlySet<string>,
  random: () => number,
): T | undefined {
  const pool = workers
    .filter((w) => w.status === 'available' && !tried.has(w.id))
    .map((w) => ({ w, weight: Math.max(0, 1 - w.load) }))
    .filter((c) => c.weight > 0);
  const total = pool.reduce((s, c) => s + c.weight, 0);
  if (pool.length === 0 || total <= 0) return undefined;
  let r = random() * total;
  for (const c of pool) {
    r -= c.weight;
    if (r < 0) return c.w;
  }
  // Floating-point rounding can leave r ≈ 0 after the loop; the last candidate owns that edge.
  return pool[pool.length - 1]?.w;
}

/**
 * How full a worker is, in [0, 1]: the figure an autoscaler averages over a fleet
 * (`agentstate_worker_fullness_ratio`). 1 means "takes no new job"; 0 means idle.
 *
 *   fullness = 1                                  while the worker reports itself full or drains
 *            = max(jobs / maxJobs, load / loadThreshold), capped at 1, otherwise
 *
 * - `jobs / maxJobs`: slots used over capacity, when `maxJobs` is set. Every job held counts,
 *   from the moment its request is being decided (what the slot guard counts).
 * - `load / loadThreshold`: when `maxJobs` is unset, capacity is what `loadFnc` says it is, and
 *   the worker is full at `loadThreshold`; so the load over the threshold is the share of that
 *   capacity in use. With `loadThreshold: Infinity` (never full by load) this term is 0.
 * - Reported full covers what the two terms cannot see: no process able to start a job soon.
 * - Not registered (connecting, reconnecting, stopped): the same two terms, without the
 *   reported-full rule; a server outage is not a reason to add workers.
 */
import type { Worker } from '../worker/worker.ts';

export function workerFullness(worker: Worker): number {
  const status = worker.status;
  if (status === 'full' || status === 'draining' || status === 'stopping') return 1;
  const options = worker.resolvedOptions;
  const jobs = worker.activeJobs.length;
  const slots = Number.isFinite(options.maxJobs) ? jobs / options.maxJobs : 0;
  const threshold = options.loadThreshold;
  const load = Number.isFinite(threshold) && threshold > 0 ? worker.load / threshold : 0;
  return Math.min(1, Math.max(0, slots, load));
}

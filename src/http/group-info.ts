/**
 * `/worker`, `/ready` and `/metrics` of a `WorkerGroup`: one health server for every agent of
 * the process. `/worker` lists each agent (each entry is the single-worker document of
 * `worker-info.ts`); metrics are each agent's own (`metrics.ts`) with an `agent` label.
 */
import type { Registry } from 'prom-client';
import type { WorkerGroup } from '../group/worker-group.ts';
import { isJobProcess } from '../runtime-registry.ts';
import { VERSION } from '../version.ts';
import { createWorkerMetrics, type WorkerMetrics } from './metrics.ts';
import { workerInfo, type WorkerInfo } from './worker-info.ts';

// As in metrics.ts: prom-client is for the worker's HTTP server, never loaded in a job process.
const prom = isJobProcess() ? undefined : await import('prom-client');

export interface WorkerGroupInfo {
  /** `registered` when every agent is registered (available or full), else `starting`. */
  status: 'registered' | 'starting';
  /** Machine load, shared by every agent. */
  load: number;
  max_jobs: number | null;
  load_threshold: number | null;
  active_jobs: number;
  agents: WorkerInfo[];
  pid: number;
  version: string;
  protocol_version: 1;
}

export function workerGroupInfo(group: WorkerGroup): WorkerGroupInfo {
  const agents = group.workers.map(workerInfo);
  const finite = (n: number) => (Number.isFinite(n) ? n : null);
  return {
    status: group.registered ? 'registered' : 'starting',
    load: group.load,
    max_jobs: finite(group.options.maxJobs),
    load_threshold: finite(group.options.loadThreshold),
    active_jobs: agents.reduce((n, a) => n + a.active_jobs, 0),
    agents,
    pid: process.pid,
    version: VERSION,
    protocol_version: 1,
  };
}

/**
 * The `agent` label of each worker: its agent name (`''` for automatic dispatch), with the
 * worker type added where two agents share a name.
 */
export function agentLabels(group: WorkerGroup): string[] {
  const names = group.agents.map((a) => a.agentName);
  return group.agents.map((a) =>
    names.filter((n) => n === a.agentName).length > 1
      ? `${a.agentName}/${a.workerType}`
      : a.agentName,
  );
}

/** `/ready`: 200 while every agent is registered; the body has one `name: status` line each. */
export function groupReadiness(group: WorkerGroup): { ready: boolean; body: string } {
  const labels = agentLabels(group);
  const lines = group.agents.map((a, i) => `${labels[i] || '(automatic)'}: ${a.status}`);
  return { ready: group.registered, body: `${lines.join('\n')}\n` };
}

/** Every agent's metrics in one exposition, each series labelled with its `agent`. */
export function createGroupMetrics(group: WorkerGroup, prefix?: string): WorkerMetrics {
  if (!prom) throw new Error('createGroupMetrics: not available in a job process');
  const { AggregatorRegistry } = prom;
  const labels = agentLabels(group);
  const perAgent = group.workers.map((w, i) => {
    const m = createWorkerMetrics(w, prefix);
    m.registry.setDefaultLabels({ agent: labels[i] ?? '' });
    return m;
  });
  let last: Registry = perAgent[0]!.registry;
  // Counters and gauges of different agents carry different `agent` values, so aggregating
  // only puts each metric family's series together; no two series are ever summed.
  const collect = async (): Promise<Registry> => {
    last = AggregatorRegistry.aggregate(
      await Promise.all(perAgent.map((m) => m.registry.getMetricsAsJSON())),
    );
    return last;
  };
  return {
    get registry() {
      return last;
    },
    text: async () => (await collect()).metrics(),
    dispose: () => {
      for (const m of perAgent) m.dispose();
    },
  };
}

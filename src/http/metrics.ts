/**
 * Prometheus metrics of one worker, on a registry of their own (never prom-client's global
 * default, which the user's app may own). Counters and the answer-latency histogram follow the
 * worker chart's emitted events; gauges are read from the chart when scraped.
 * `agentstate_worker_fullness_ratio` is the one to autoscale a fleet on (deploy/kubernetes).
 */
import type { Registry } from 'prom-client';
import { isJobProcess } from '../runtime-registry.ts';
import { WORKER_STATUSES } from '../../machines/worker.contract.ts';
import type { Worker } from '../worker/worker.ts';
import { workerFullness } from './fullness.ts';
import { RECOVERY_DECLINE_REASONS } from '../recovery/journal.ts';
import { processCounts } from './worker-info.ts';
import { onLoopStall } from '../telemetry/loop-stall.ts';

// prom-client (and the OpenTelemetry API it loads) is for the worker's HTTP server only; a job
// process imports agentstate through the user's agent file and must not pay for it.
const prom = isJobProcess() ? undefined : await import('prom-client');
// The RSS reader (node:child_process, node:fs/promises) likewise.
const memory = isJobProcess() ? undefined : await import('../job-host/memory.ts');

export interface WorkerMetrics {
  readonly registry: Registry;
  /** Prometheus text exposition of every metric. */
  text(): Promise<string>;
  /** Stops following the worker. Idempotent. */
  dispose(): void;
}

/** Offers whose answer is awaited; a cap so a lost answer can never grow the map without end. */
const MAX_PENDING_ANSWERS = 1_000;

/** Follows `worker` (before or after its `run()`) and exposes its metrics. */
export function createWorkerMetrics(worker: Worker, prefix = 'agentstate_'): WorkerMetrics {
  if (!prom) throw new Error('createWorkerMetrics: not available in a job process');
  const { Counter, Gauge, Histogram, Registry } = prom;
  const registry = new Registry();
  const registers = [registry];

  const jobs = new Counter({
    name: `${prefix}jobs_total`,
    help: 'Jobs ended, by outcome',
    labelNames: ['outcome'],
    registers,
  });
  const answers = new Counter({
    name: `${prefix}availability_answers_total`,
    help: 'Availability requests answered, by decision',
    labelNames: ['decision'],
    registers,
  });
  const answerSeconds = new Histogram({
    name: `${prefix}availability_answer_seconds`,
    help: 'Time from an availability request to its answer (the server waits about 3 s)',
    labelNames: ['decision'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3],
    registers,
  });
  const connectionsLost = new Counter({
    name: `${prefix}reconnects_total`,
    help: 'Server connections lost or failed, each followed by a reconnect attempt',
    registers,
  });
  const processExits = new Counter({
    name: `${prefix}job_process_exits_total`,
    help: 'Job processes ended, by whether they ended in a failure',
    labelNames: ['failed'],
    registers,
  });
  // Job recovery (src/recovery/): what it journaled, brought back, declined (why) and gave up on.
  const journaled = new Counter({
    name: `${prefix}recovery_journaled_total`,
    help: 'Jobs written to the job journal at their launch',
    registers,
  });
  const recoveredJobs = new Counter({
    name: `${prefix}recovery_recovered_total`,
    help: 'Jobs dispatched again after an abnormal end and launched here with their old identity',
    registers,
  });
  const declined = new Counter({
    name: `${prefix}recovery_declined_total`,
    help: 'Abnormal ends not dispatched again, by why (roomGone, userLeft, jobType, storeUnavailable, serverError)',
    labelNames: ['why'],
    registers,
  });
  const givenUp = new Counter({
    name: `${prefix}recovery_given_up_total`,
    help: 'Recoveries given up: no attempt left (recovery.maxAttempts), or no worker took any of its dispatches',
    registers,
  });
  const recoverySeconds = new Histogram({
    name: `${prefix}recovery_latency_seconds`,
    help: 'From an abnormal end (or finding a dead worker’s job) to the new job’s launch',
    buckets: [0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30],
    registers,
  });
  new Gauge({
    name: `${prefix}recovery_store_up`,
    help: '1 while job recovery’s store (disk or Redis) works, 0 while it is degraded or off',
    registers,
    collect() {
      this.set(worker.recovery?.up ? 1 : 0);
    },
  });
  new Gauge({
    name: `${prefix}load`,
    help: 'Last load sample, in [0, 1]',
    registers,
    collect() {
      this.set(worker.load);
    },
  });
  new Gauge({
    name: `${prefix}active_jobs`,
    help: 'Jobs held, from acceptance to their end',
    registers,
    collect() {
      this.set(worker.activeJobs.length);
    },
  });
  new Gauge({
    name: `${prefix}job_processes`,
    help: 'Job processes by state (idle = warm and free, running = busy with a job)',
    labelNames: ['state'],
    registers,
    collect() {
      for (const [state, n] of Object.entries(processCounts(worker))) this.set({ state }, n);
    },
  });
  new Gauge({
    name: `${prefix}worker_fullness_ratio`,
    help: 'How full the worker is, in [0, 1]: 1 while full or draining, else max(jobs / maxJobs, load / loadThreshold) (see fullness.ts); the autoscaling metric',
    registers,
    collect() {
      this.set(workerFullness(worker));
    },
  });
  new Gauge({
    name: `${prefix}worker_status`,
    help: '1 for the worker status it is in, 0 for the others',
    labelNames: ['status'],
    registers,
    collect() {
      const now = worker.status;
      for (const status of WORKER_STATUSES) this.set({ status }, status === now ? 1 : 0);
    },
  });
  new Gauge({
    name: `${prefix}job_process_rss_bytes`,
    help: 'Resident memory of each live job process',
    labelNames: ['proc_id', 'job_id'],
    registers,
    async collect() {
      // Reset first: a process that has exited must disappear, not keep its last value.
      this.reset();
      const procs = worker.processes;
      await Promise.all(
        procs.map(async (p) => {
          if (p.pid === undefined) return;
          const mb = await memory?.readRssMb(p.pid);
          if (mb !== undefined) {
            this.set({ proc_id: p.procId, job_id: p.jobId ?? '' }, Math.round(mb * 1024 * 1024));
          }
        }),
      );
    },
  });

  const loopStalls = new Histogram({
    name: `${prefix}event_loop_stall_seconds`,
    help: 'Event-loop stalls at least eventLoopStallThreshold long, by process kind (worker, job)',
    labelNames: ['process'],
    buckets: [0.25, 0.5, 1, 2, 5, 10, 30],
    registers,
  });
  // Every stall of this process (the worker's own, and those its job processes report).
  const stopStalls = onLoopStall((s) =>
    loopStalls.observe({ process: s.process }, s.stalledMs / 1000),
  );

  // Label values present from the start, so rates work before the first event.
  for (const outcome of ['success', 'failed']) jobs.inc({ outcome }, 0);
  for (const failed of ['true', 'false']) processExits.inc({ failed }, 0);
  connectionsLost.inc(0);
  journaled.inc(0);
  recoveredJobs.inc(0);
  givenUp.inc(0);
  for (const why of RECOVERY_DECLINE_REASONS) declined.inc({ why }, 0);

  const askedAt = new Map<string, number>();
  const stopFollowing = worker.on('*', (ev) => {
    switch (ev.type) {
      case 'availabilityRequested':
        if (askedAt.size >= MAX_PENDING_ANSWERS) askedAt.clear();
        askedAt.set(ev.jobId, performance.now());
        return;
      case 'requestAnswered': {
        // The chart's decision is the label: a bounded set (AnswerDecision).
        const { decision } = ev;
        answers.inc({ decision });
        const t0 = askedAt.get(ev.jobId);
        askedAt.delete(ev.jobId);
        if (t0 !== undefined) answerSeconds.observe({ decision }, (performance.now() - t0) / 1000);
        return;
      }
      case 'jobEnded':
        jobs.inc({ outcome: ev.outcome });
        return;
      case 'connectionLost':
        connectionsLost.inc();
        return;
      case 'processExited':
        processExits.inc({ failed: String(ev.failed) });
        return;
      case 'jobJournaled':
        journaled.inc();
        return;
      case 'jobRecovered':
        recoveredJobs.inc();
        recoverySeconds.observe(ev.latencyMs / 1000);
        return;
      case 'jobRecoveryDeclined':
        declined.inc({ why: ev.why });
        return;
      case 'jobRecoveryGivenUp':
        givenUp.inc();
        return;
      default:
        return;
    }
  });

  let disposed = false;
  return {
    registry,
    text: () => registry.metrics(),
    dispose: () => {
      if (disposed) return;
      disposed = true;
      stopFollowing();
      stopStalls();
      askedAt.clear();
      registry.clear();
    },
  };
}

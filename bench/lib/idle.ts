/** Idle cost of a running worker: RSS of the worker and its warm processes, CPU while idle. */
import { processTree, pssKb, type ProcInfo } from './procfs.ts';
import type { Framework } from './workers.ts';

export interface IdleSample {
  workerRssMb: number;
  /** RSS of each warm idle job process. */
  idleProcessRssMb: number[];
  /** Other processes the worker keeps (agents-js: inference process; Python: forkserver, resource tracker). */
  helperRssMb: number[];
  helpers: string[];
  /** Sum of PSS over the whole tree (shared pages counted once). */
  treePssMb: number;
  treeRssMb: number;
  /** Worker process CPU over the window, % of one core. */
  workerCpuPct: number;
  /** Whole tree CPU over the window, % of one core. */
  treeCpuPct: number;
}

/** Which processes of a framework's tree are its warm job processes. */
function isJobProcess(fw: Framework, p: ProcInfo & { depth: number }): boolean {
  switch (fw) {
    case 'agentstate':
      return p.cmd.includes('tinypool'); // one tinypool child per jobProcess actor
    case 'agents-js':
      return p.cmd.includes('job_proc_lazy_main');
    case 'livekit-agents':
      return p.depth === 2 && p.cmd.includes('forkserver'); // forked by the forkserver
  }
}

const mb = (kb: number) => Math.round((kb / 1024) * 10) / 10;

export async function sampleIdle(
  fw: Framework,
  pid: number,
  windowMs: number,
): Promise<IdleSample> {
  const before = processTree(pid);
  const t0 = performance.now();
  await new Promise((done) => setTimeout(done, windowMs));
  const after = processTree(pid);
  const elapsed = performance.now() - t0;
  const cpuBefore = new Map(before.map((p) => [p.pid, p.cpuMs]));
  const root = after[0]!;
  const rest = after.slice(1);
  const jobs = rest.filter((p) => isJobProcess(fw, p));
  const helpers = rest.filter((p) => !isJobProcess(fw, p));
  const treeCpu = after.reduce((s, p) => s + p.cpuMs - (cpuBefore.get(p.pid) ?? p.cpuMs), 0);
  return {
    workerRssMb: mb(root.rssKb),
    idleProcessRssMb: jobs.map((p) => mb(p.rssKb)),
    helperRssMb: helpers.map((p) => mb(p.rssKb)),
    helpers: helpers.map((p) => p.cmd.slice(0, 120)),
    treePssMb: mb(after.reduce((s, p) => s + pssKb(p.pid), 0)),
    treeRssMb: mb(after.reduce((s, p) => s + p.rssKb, 0)),
    workerCpuPct:
      Math.round(((root.cpuMs - (cpuBefore.get(root.pid) ?? root.cpuMs)) / elapsed) * 1000) / 10,
    treeCpuPct: Math.round((treeCpu / elapsed) * 1000) / 10,
  };
}

/** Waits until the tree has settled back to `count` processes (jobs ended, warm pool refilled). */
export async function waitForTreeSize(
  pid: number,
  count: number,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (processTree(pid).length === count) return true;
    await new Promise((done) => setTimeout(done, 250));
  }
  return false;
}

/** One warm job process: the CPU it spent from its spawn until now, idle, and its RSS. */
export interface WarmProcessSample {
  pid: number;
  /** utime + stime since the process started (for a forked process: since the fork), ms. */
  cpuMs: number;
  rssMb: number;
  /** When in the bench it was read (`warm-up`, `churn`, `burst`). */
  at: string;
}

/**
 * The framework's job processes that are warm and idle now, with the CPU each spent to get
 * there. Idle means its CPU time moved by at most 20 ms over `settleMs`: a process still
 * prewarming, or running a job, is left out (and counted in `busy`).
 */
export async function sampleWarmProcesses(
  fw: Framework,
  pid: number,
  at: string,
  settleMs = 1_000,
): Promise<{ warm: WarmProcessSample[]; busy: number }> {
  const first = processTree(pid).filter((p) => isJobProcess(fw, p));
  await new Promise((done) => setTimeout(done, settleMs));
  const now = new Map(processTree(pid).map((p) => [p.pid, p]));
  const warm: WarmProcessSample[] = [];
  let busy = 0;
  for (const p of first) {
    const later = now.get(p.pid);
    if (!later) continue; // gone meanwhile
    if (later.cpuMs - p.cpuMs > 20) busy++;
    else warm.push({ pid: p.pid, cpuMs: p.cpuMs, rssMb: mb(later.rssKb), at });
  }
  return { warm, busy };
}

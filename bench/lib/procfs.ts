/** Linux /proc readings: a process tree, RSS/PSS per process, CPU time. */
import { readdirSync, readFileSync } from 'node:fs';

const CLK_TCK = 100; // USER_HZ on Linux

export interface ProcInfo {
  pid: number;
  ppid: number;
  /** utime + stime in ms. */
  cpuMs: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ownAndReapedTicks: number;
  rssKb: number;
  cmd: string;
}

function statOf(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces/parens: fields start after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(rest[1]);
    const cpuTicks = Number(rest[11]) + Number(rest[12]);
    const ownAndReapedTicks = cpuTicks + Number(rest[13]) + Number(rest[14]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    return { pid, ppid, cpuMs: (cpuTicks * 1000) / CLK_TCK, ownAndReapedTicks, rssKb, cmd };
  } catch {
    return undefined;
  }
}

/** The process and every descendant, parents before children, with their depth under `root`. */
export function processTree(root: number): (ProcInfo & { depth: number })[] {
  const all = new Map<number, ProcInfo>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = statOf(Number(name));
    if (info) all.set(info.pid, info);
  }
  const children = new Map<number, ProcInfo[]>();
  for (const p of all.values()) {
    const list = children.get(p.ppid) ?? [];
    list.push(p);
    children.set(p.ppid, list);
  }
  const out: (ProcInfo & { depth: number })[] = [];
  const rootInfo = all.get(root);
  if (!rootInfo) return out;
  const walk = (p: ProcInfo, depth: number) => {
    out.push({ ...p, depth });
    for (const c of children.get(p.pid) ?? []) walk(c, depth + 1);
  };
  walk(rootInfo, 0);
  return out;
}

/**
 * CPU time (ms) of a process tree so far, children that already exited included: each live
 * process's utime+stime plus cutime+cstime (what its reaped children used). A process that
 * exits between two readings moves from its own fields into its parent's, so the delta of two
 * readings is what the tree used in between, however many processes came and went.
 */
export function treeCpuMs(root: number): number {
  let ticks = 0;
  for (const p of processTree(root)) ticks += p.ownAndReapedTicks;
  return (ticks * 1000) / CLK_TCK;
}

/** CPU time (ms) of one process so far: its own utime+stime, no children; 0 if it is gone. */
export function processCpuMs(pid: number): number {
  return statOf(pid)?.cpuMs ?? 0;
}

/** Proportional set size (shared pages divided among sharers), in kB; 0 if unreadable. */
export function pssKb(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    return Number(/^Pss:\s+(\d+)/m.exec(text)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

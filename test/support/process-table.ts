/**
 * Reads Linux's process table (/proc) so tests can tell whether processes outlived the one that
 * started them: `descendants(pid)` before a kill, `waitUntilGone(pids)` after it.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessEntry {
  pid: number;
  ppid: number;
  /** One letter: R running, S sleeping, Z zombie, … (`man 5 proc`). */
  state: string;
  /** The command line, space-separated (empty for zombies). */
  command: string;
}

/** The entry of `pid`, or undefined when there is no such process. */
export function processEntry(pid: number): ProcessEntry | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // `pid (comm) state ppid …`; comm may hold spaces and parentheses, so split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  let command = '';
  try {
    command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    // exited meanwhile
  }
  return { pid, state: rest[0] ?? '?', ppid: Number(rest[1]), command };
}

/** A process that has exited but is not reaped yet (a zombie) counts as gone: it runs nothing. */
export function isRunning(pid: number): boolean {
  const entry = processEntry(pid);
  return entry !== undefined && entry.state !== 'Z' && entry.state !== 'X';
}

/** Every live process below `pid` (children, their children, …). */
export function descendants(pid: number): ProcessEntry[] {
  const all: ProcessEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const entry = processEntry(Number(name));
    if (entry && entry.state !== 'Z') all.push(entry);
  }
  const found: ProcessEntry[] = [];
  const parents = [pid];
  while (parents.length > 0) {
    const parent = parents.pop()!;
    for (const e of all) {
      if (e.ppid === parent) {
        found.push(e);
        parents.push(e.pid);
      }
    }
  }
  return found;
}

/**
 * Resolves once none of `pids` runs; rejects after `timeoutMs`, listing the survivors with their
 * command lines.
 */
export async function waitUntilGone(pids: readonly number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = pids.filter(isRunning);
    if (alive.length === 0) return;
    if (Date.now() > deadline) {
      const list = alive.map((p) => `${p}: ${processEntry(p)?.command ?? '?'}`).join('\n  ');
      throw new Error(
        `${alive.length} process(es) still running after ${timeoutMs} ms:\n  ${list}`,
      );
    }
    await new Promise((done) => setTimeout(done, 100));
  }
}

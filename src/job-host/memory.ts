/**
 * Resident memory of a process, for the host's memory watchdog. Linux: `/proc/<pid>/status`
 * (cheap, no child process); elsewhere `ps`. `undefined` when the process is gone.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export async function readRssMb(pid: number): Promise<number | undefined> {
  if (process.platform === 'linux') {
    try {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
      return kb === undefined ? undefined : Number(kb) / 1024;
    } catch {
      return undefined;
    }
  }
  return new Promise((resolve) => {
    execFile('ps', ['-o', 'rss=', '-p', String(pid)], (err, stdout) => {
      const kb = Number(stdout.trim());
      resolve(err || !Number.isFinite(kb) || stdout.trim() === '' ? undefined : kb / 1024);
    });
  });
}

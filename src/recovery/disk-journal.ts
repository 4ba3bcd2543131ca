/**
 * The job journal on disk, for one machine: `<stateDir>/journal/<agent>/`, one file per running
 * job (`jobs/<jobId>.json`), one per re-dispatch on its way (`pending/…`), and `owner.json`, the
 * directory's lease. A worker started again over the directory (systemd, a container restart, a
 * Kubernetes `emptyDir`) claims its predecessor's files.
 *
 * Each file is written whole to a temporary name, flushed (`fsync`), renamed over the old one and
 * the directory flushed: a crash mid-write leaves the old file or the new one, never half of one.
 * A claim is a rename too, so two workers racing over one file cannot both get it. A file that
 * cannot be read (truncated by a disk that lied, edited by hand) is moved aside as `*.corrupt`
 * and reported; nothing else is affected by it.
 */
import { repeatEvery, systemClock, type Clock } from '../clock.ts';
import { errorMessage } from '../errors.ts';
import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  checkEntry,
  checkPending,
  JournalError,
  type JobStore,
  type JournalEntry,
  type JournalProblem,
  type PendingRecovery,
} from './journal.ts';

export interface DiskJournalOptions {
  stateDir: string;
  agentName: string;
  /** This worker run's id (the owner of the files it writes). */
  owner: string;
  /** How long the directory's lease lasts unless renewed. */
  leaseTtl: number;
  now?: () => number;
  /** Schedules the lease's renewal. Default: the system clock. */
  clock?: Clock;
  /** Whether a process is alive (`process.kill(pid, 0)`); injected for tests. */
  isAlive?: (pid: number) => boolean;
}

interface OwnerFile {
  owner: string;
  pid: number;
  renewedAt: number;
}

/** File names are job ids and hashes, so nothing the server sends becomes a path. */
const safe = (s: string) => encodeURIComponent(s).replace(/\./g, '%2E');

/**
 * The directories journals of this process hold: two workers of one agent in one process would
 * otherwise each take the other's live jobs for a predecessor's (they share the pid).
 */
const heldHere = new Set<string>();

export class DiskJournal implements JobStore {
  readonly kind = 'disk';
  readonly dir: string;
  readonly #o: DiskJournalOptions;
  readonly #now: () => number;
  /** Writes of one file in order: a late checkpoint must not bring back a removed job. */
  readonly #chains = new Map<string, Promise<void>>();
  #stopRenewing: (() => void) | undefined;
  #held = false;
  #closed = false;

  constructor(o: DiskJournalOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.dir = join(o.stateDir, 'journal', o.agentName === '' ? '_automatic' : safe(o.agentName));
  }

  get #jobs() {
    return join(this.dir, 'jobs');
  }
  get #pending() {
    return join(this.dir, 'pending');
  }

  async open(): Promise<void> {
    if (heldHere.has(this.dir) && !this.#held) {
      throw new JournalError(
        `the job journal ${this.dir} is in use by another worker of this process; give each worker its own stateDir`,
      );
    }
    await mkdir(this.#jobs, { recursive: true, mode: 0o700 });
    await mkdir(this.#pending, { recursive: true });
    const ownerFile = join(this.dir, 'owner.json');
    const current = await readFile(ownerFile, 'utf8').then(
      (t) => JSON.parse(t) as OwnerFile,
      () => undefined,
    );
    if (current && this.#inUse(current)) {
      throw new JournalError(
        `the job journal ${this.dir} is in use by another worker (pid ${current.pid}); give each worker its own stateDir`,
      );
    }
    await this.#writeOwner();
    this.#held = true;
    heldHere.add(this.dir);
    this.#stopRenewing?.();
    this.#stopRenewing = repeatEvery(
      this.#o.clock ?? systemClock,
      Math.max(100, Math.floor(this.#o.leaseTtl / 3)),
      () => void this.#writeOwner().catch(() => undefined),
    );
  }

  /** Another live worker renews the lease: its pid is not ours, is alive, and renewed lately. */
  #inUse(o: OwnerFile): boolean {
    if (typeof o.pid !== 'number' || typeof o.renewedAt !== 'number') return false;
    // A restarted container often gets the same pid as its predecessor: ours is not another one.
    if (o.pid === process.pid) return false;
    const alive = this.#o.isAlive ?? isAlive;
    return alive(o.pid) && this.#now() - o.renewedAt < this.#o.leaseTtl;
  }

  #writeOwner(): Promise<void> {
    const o: OwnerFile = { owner: this.#o.owner, pid: process.pid, renewedAt: this.#now() };
    return writeDurably(join(this.dir, 'owner.json'), JSON.stringify(o));
  }

  put(entry: JournalEntry): Promise<void> {
    const file = join(this.#jobs, `${safe(entry.jobId)}.json`);
    return this.#inOrder(entry.jobId, () => writeDurably(file, JSON.stringify(entry)));
  }

  remove(jobId: string): Promise<void> {
    const file = join(this.#jobs, `${safe(jobId)}.json`);
    return this.#inOrder(jobId, () => unlink(file).catch(ignoreMissing));
  }

  #inOrder(key: string, step: () => Promise<void>): Promise<void> {
    const next = (this.#chains.get(key) ?? Promise.resolve()).then(step);
    const settled = next.catch(() => undefined);
    this.#chains.set(key, settled);
    void settled.then(() => {
      if (this.#chains.get(key) === settled) this.#chains.delete(key);
    });
    return next;
  }

  async claimOrphans(): Promise<{ entries: JournalEntry[]; problems: JournalProblem[] }> {
    const entries: JournalEntry[] = [];
    const problems: JournalProblem[] = [];
    for (const name of await readdir(this.#jobs)) {
      if (!name.endsWith('.json')) continue;
      const file = join(this.#jobs, name);
      const claimed = `${file}.claimed-${randomUUID()}`;
      let text: string;
      try {
        const ours = await readFile(file, 'utf8');
        // Our own jobs are not orphans (a claim runs once, at start, before any job of ours).
        if (ours.includes(`"owner":${JSON.stringify(this.#o.owner)}`)) continue;
        await rename(file, claimed);
        text = await readFile(claimed, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // claimed by another
        problems.push({ where: file, error: String(err) });
        continue;
      }
      try {
        entries.push(checkEntry(JSON.parse(text)));
        await unlink(claimed).catch(ignoreMissing);
      } catch (err) {
        const aside = `${file}.corrupt`;
        await rename(claimed, aside).catch(() => undefined);
        problems.push({ where: aside, error: errorMessage(err) });
      }
    }
    // Temporary files of a write that a crash interrupted: the rename never happened.
    for (const name of await readdir(this.#jobs)) {
      if (name.endsWith('.tmp')) await rm(join(this.#jobs, name), { force: true });
    }
    return { entries, problems };
  }

  #pendingFile(roomName: string, agentName: string, metadata: string): string {
    const key = `${safe(roomName)}~${safe(agentName)}~${hash(metadata)}`;
    return join(this.#pending, `${key}.json`);
  }

  putPending(p: PendingRecovery): Promise<void> {
    const { roomName, agentName, metadata } = p.entry;
    return writeDurably(this.#pendingFile(roomName, agentName, metadata), JSON.stringify(p));
  }

  async takePending(
    roomName: string,
    agentName: string,
    metadata: string,
  ): Promise<PendingRecovery | undefined> {
    const file = this.#pendingFile(roomName, agentName, metadata);
    const taken = `${file}.taken-${randomUUID()}`;
    try {
      await rename(file, taken);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const p = checkPending(JSON.parse(await readFile(taken, 'utf8')));
      if (p.expiresAt < this.#now()) return undefined;
      if (p.entry.metadata !== metadata) return undefined;
      return p;
    } finally {
      await unlink(taken).catch(ignoreMissing);
    }
  }

  leaseHeld(): boolean {
    return this.#held;
  }

  async owns(jobId: string): Promise<boolean> {
    const file = join(this.#jobs, `${safe(jobId)}.json`);
    return readFile(file, 'utf8').then(
      () => true,
      () => false,
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopRenewing?.();
    await Promise.all(this.#chains.values());
    if (this.#held) {
      heldHere.delete(this.dir);
      await unlink(join(this.dir, 'owner.json')).catch(() => undefined);
    }
    this.#held = false;
  }
}

/** Writes `file` whole or not at all, and flushed: a temporary file, fsync, rename, dir fsync. */
async function writeDurably(file: string, contents: string): Promise<void> {
  const tmp = `${file}.${process.pid}-${randomUUID()}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(contents);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const dir = await open(join(file, '..'), 'r');
  try {
    await dir.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic there.
  } finally {
    await dir.close();
  }
}

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A short, stable name for a metadata string (FNV-1a, 32 bits; collisions are re-checked). */
function hash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16);
}

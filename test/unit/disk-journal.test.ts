/**
 * The disk journal (src/recovery/disk-journal.ts) on a real filesystem: a worker started again
 * claims its predecessor's jobs once; a write killed half-way leaves the old file; an unreadable
 * file is reported and moved aside without costing another job; a directory in use by a live
 * worker is refused; a pending recovery is taken once.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskJournal } from '../../src/recovery/disk-journal.ts';
import { JournalError, type JournalEntry } from '../../src/recovery/journal.ts';

const dirs: string[] = [];
const open: DiskJournal[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((j) => j.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'agentstate-journal-'));
  dirs.push(d);
  return d;
}

function journal(dir: string, owner: string, isAlive = () => false): DiskJournal {
  const j = new DiskJournal({ stateDir: dir, agentName: '', owner, leaseTtl: 1_000, isAlive });
  open.push(j);
  return j;
}

function entry(jobId: string, owner: string, checkpoint: unknown = null): JournalEntry {
  return {
    jobId,
    dispatchId: `AD_${jobId}`,
    roomName: `room-${jobId}`,
    agentName: '',
    jobType: 'JT_ROOM',
    participantIdentity: undefined,
    agentIdentity: `agent-${jobId}`,
    agentParticipantName: '',
    agentParticipantMetadata: '',
    agentAttributes: {},
    metadata: 'm',
    workerId: 'AW_1',
    owner,
    attempt: 1,
    firstStartedAt: 1,
    checkpoint: checkpoint as never,
  };
}

describe('the disk journal', () => {
  it('gives a worker started again its predecessor’s open jobs, each to one claimer only', async () => {
    const dir = stateDir();
    const before = journal(dir, 'run-1');
    await before.open();
    await before.put(entry('AJ_1', 'run-1'));
    await before.put(entry('AJ_2', 'run-1', { tick: 4 }));
    await before.put(entry('AJ_3', 'run-1'));
    await before.remove('AJ_3');
    // run-1 goes away; its files stay, as after a crash (one process holds a directory at a time).
    await before.close();
    const x = journal(dir, 'run-2');
    const y = journal(dir, 'run-3');
    await x.open();
    const [cx, cy] = await Promise.all([x.claimOrphans(), y.claimOrphans()]);
    const ids = [...cx.entries, ...cy.entries].map((e) => e.jobId).sort();
    expect(ids).toEqual(['AJ_1', 'AJ_2']);
    expect([...cx.entries, ...cy.entries].find((e) => e.jobId === 'AJ_2')?.checkpoint).toEqual({
      tick: 4,
    });
    expect((await x.claimOrphans()).entries).toEqual([]);
  });

  it('keeps the last whole file when a writer is SIGKILLed mid-write', async () => {
    const dir = stateDir();
    // A real process writing big checkpoints as fast as it can, killed at a random moment.
    const script = `
      import { DiskJournal } from ${JSON.stringify(new URL('../../src/recovery/disk-journal.ts', import.meta.url).href)};
      const j = new DiskJournal({ stateDir: ${JSON.stringify(dir)}, agentName: '', owner: 'writer', leaseTtl: 60000 });
      await j.open();
      const base = ${JSON.stringify(entry('AJ_w', 'writer'))};
      for (let i = 0; ; i++) {
        await j.put({ ...base, checkpoint: { i, blob: 'x'.repeat(60000) } });
        if (i === 3) process.stdout.write('writing\\n');
      }`;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`writer exited (${code})`)));
    });
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const j = journal(dir, 'reader');
    await j.open();
    const { entries, problems } = await j.claimOrphans();
    expect(problems).toEqual([]);
    expect(entries).toHaveLength(1);
    expect((entries[0]!.checkpoint as { i: number }).i).toBeGreaterThanOrEqual(3);
    // No temporary file of the interrupted write is left behind.
    expect(readdirSync(join(j.dir, 'jobs')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 30_000);

  it('reports a truncated or malformed file, moves it aside, and still claims the others', async () => {
    const dir = stateDir();
    const before = journal(dir, 'run-1');
    await before.open();
    await before.put(entry('AJ_ok', 'run-1'));
    const jobs = join(before.dir, 'jobs');
    writeFileSync(join(jobs, 'AJ_cut.json'), '{"jobId":"AJ_cut","dispatch');
    writeFileSync(join(jobs, 'AJ_shape.json'), '{"jobId":42}');
    await before.close();
    const j = journal(dir, 'run-2');
    await j.open();
    const { entries, problems } = await j.claimOrphans();
    expect(entries.map((e) => e.jobId)).toEqual(['AJ_ok']);
    expect(problems.map((p) => p.where).sort()).toEqual([
      join(jobs, 'AJ_cut.json.corrupt'),
      join(jobs, 'AJ_shape.json.corrupt'),
    ]);
    expect(problems.find((p) => p.where.includes('AJ_shape'))?.error).toMatch(/jobId/);
    expect(readdirSync(jobs).sort()).toEqual(['AJ_cut.json.corrupt', 'AJ_shape.json.corrupt']);
  });

  it('refuses a directory whose lease a live worker renews, naming the directory', async () => {
    const dir = stateDir();
    const first = journal(dir, 'run-1');
    await first.open();
    // A second worker of this process is refused at once.
    await expect(journal(dir, 'run-1b').open()).rejects.toThrow(/in use by another worker/);
    await first.close();
    // Another process (another pid) that renewed the lease just now, and is alive.
    const ownerFile = join(first.dir, 'owner.json');
    writeFileSync(
      ownerFile,
      JSON.stringify({ owner: 'run-x', pid: process.pid + 100_000, renewedAt: Date.now() }),
    );
    const second = journal(dir, 'run-2', () => true);
    await expect(second.open()).rejects.toThrow(JournalError);
    await expect(second.open()).rejects.toThrow(/in use by another worker.*stateDir/);
    // Dead owner: taken over at once.
    const third = journal(dir, 'run-3', () => false);
    await expect(third.open()).resolves.toBeUndefined();
  });

  it('hands a pending recovery to one taker, and not once it is stale', async () => {
    const dir = stateDir();
    const j = journal(dir, 'run-1');
    await j.open();
    const e = entry('AJ_p', 'run-1');
    await j.putPending({ entry: e, detectedAt: Date.now(), expiresAt: Date.now() + 10_000 });
    const taken = await Promise.all([
      j.takePending(e.roomName, '', 'm'),
      j.takePending(e.roomName, '', 'm'),
    ]);
    expect(taken.filter(Boolean)).toHaveLength(1);
    expect(await j.takePending(e.roomName, '', 'other metadata')).toBeUndefined();
    await j.putPending({ entry: e, detectedAt: 0, expiresAt: Date.now() - 1 });
    expect(await j.takePending(e.roomName, '', 'm')).toBeUndefined();
  });
});

/** The dev watcher: one callback per burst, nested directories (new ones too), ignored folders. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { watchFiles } from '../../src/cli/watch-files.ts';

let dir: string;
let stop: (() => void) | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentstate-watch-'));
  await mkdir(join(dir, 'node_modules', 'pkg'), { recursive: true });
  await mkdir(join(dir, 'lib'));
});
afterEach(async () => {
  stop?.();
  await rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('watchFiles', () => {
  it('reports a burst of changes once, including nested and new directories', async () => {
    const calls: string[][] = [];
    stop = watchFiles(dir, (files) => calls.push(files), { debounceMs: 100 });
    await writeFile(join(dir, 'agent.ts'), '1');
    await writeFile(join(dir, 'lib', 'util.ts'), '1');
    await writeFile(join(dir, 'agent.ts'), '2');
    await sleep(400);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toEqual(expect.arrayContaining(['agent.ts', 'lib/util.ts']));

    await mkdir(join(dir, 'fresh'));
    await sleep(300);
    calls.length = 0;
    await writeFile(join(dir, 'fresh', 'new.ts'), '1');
    await sleep(400);
    expect(calls.flat()).toContain('fresh/new.ts');
  });

  it('ignores node_modules and stops cleanly, pending callback included', async () => {
    const calls: string[][] = [];
    stop = watchFiles(dir, (files) => calls.push(files), { debounceMs: 100 });
    await writeFile(join(dir, 'node_modules', 'pkg', 'index.js'), '1');
    await sleep(400);
    expect(calls).toHaveLength(0);
    await writeFile(join(dir, 'agent.ts'), '1');
    stop();
    await sleep(400);
    expect(calls).toHaveLength(0);
  });
});

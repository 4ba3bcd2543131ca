#!/usr/bin/env node
// `npm run build` (and `prepare`, so `npm ci`, `npm pack` and git installs carry a fresh build):
// compiles src/ and machines/ with tsc into dist/ (same tree, so the job entry and the inspector's
// page keep their relative paths), then copies the files tsc does not emit (the inspector page).
// Plain JavaScript, so it needs nothing but the devDependencies' TypeScript.
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');

rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], {
  stdio: 'inherit',
});
if (r.status !== 0) {
  console.error('build: tsc failed');
  process.exit(r.status ?? 1);
}
cpSync(join(root, 'src/inspector/page'), join(dist, 'src/inspector/page'), { recursive: true });

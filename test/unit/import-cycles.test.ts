/**
 * No import cycle, type-only imports included (`npm run cycles`, part of `npm run lint`).
 * ESLint's `import-x/no-cycle` skips type-only imports, so the check is dpdm's; this test shows
 * it fires on a cycle closed only by `import type`, and that the tree has none.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const dpdm = createRequire(import.meta.url).resolve('dpdm/lib/bin/dpdm.js');

function cycles(...patterns: string[]) {
  const r = spawnSync(
    process.execPath,
    [dpdm, '--no-warning', '--no-tree', '--exit-code', 'circular:1', ...patterns],
    { encoding: 'utf8', cwd: new URL('../..', import.meta.url).pathname },
  );
  return { status: r.status, out: r.stdout + r.stderr };
}

describe('import cycles', () => {
  it('are found when only a type import closes them', () => {
    const r = cycles('test/fixtures/import-cycle/*.ts');
    expect(r.status).toBe(1);
    expect(r.out).toMatch(
      /test\/fixtures\/import-cycle\/[ab]\.ts -> test\/fixtures\/import-cycle\/[ab]\.ts/,
    );
  });

  it('are none in src/ and machines/', () => {
    const r = cycles('src/**/*.ts', 'machines/**/*.ts');
    expect(r.out).toMatch(/no circular dependency/);
    expect(r.status).toBe(0);
  });
});

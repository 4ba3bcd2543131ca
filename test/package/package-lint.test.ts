/**
 * The tarball as published passes the package linters: publint (exports, files, fields) and
 * Are the Types Wrong (each entry point resolves to JavaScript and matching declarations).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';

const app = inject('packedProject');
const tarball = (() => {
  const root = dirname(app);
  const name = readdirSync(root).find((f) => f.endsWith('.tgz'));
  if (!name) throw new Error(`no tarball in ${root}`);
  return join(root, name);
})();
const repoBin = (name: string) =>
  fileURLToPath(new URL(`../../node_modules/.bin/${name}`, import.meta.url));

function run(bin: string, args: string[]): { code: number; out: string } {
  try {
    const out = execFileSync(repoBin(bin), args, { encoding: 'utf8', timeout: 120_000 });
    return { code: 0, out };
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string };
    return { code: e.status ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('the published tarball', () => {
  it('passes publint with no errors or warnings', () => {
    const r = run('publint', ['--strict', tarball]);
    expect(r.out).toContain('All good');
    expect(r.code).toBe(0);
  });

  it('passes Are the Types Wrong for ESM consumers', () => {
    // esm-only: the package is ESM; CommonJS `require` of it is not offered (Node 20.19+ can
    // still require() it synchronously, and attw counts that as a dynamic import).
    const r = run('attw', ['--profile', 'esm-only', '--format', 'json', tarball]);
    const report = JSON.parse(r.out) as {
      analysis: { problems: { kind: string; entrypoint: string; resolutionKind: string }[] };
    };
    // The JSON lists every finding; the profile only excuses the CommonJS and node10 resolutions.
    const counted = report.analysis.problems.filter(
      (p) => p.resolutionKind !== 'node10' && p.resolutionKind !== 'node16-cjs',
    );
    expect(counted).toEqual([]);
    expect(r.code).toBe(0);
  });
});

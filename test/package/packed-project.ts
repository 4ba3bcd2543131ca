/**
 * Global setup of the `package` tests: packs the repo as npm would publish it (`npm pack`, which
 * runs `prepare`, so the tarball carries a fresh build), then installs that tarball into an empty
 * ESM project in a temp directory, as a user would, next to TypeScript and @types/node for the
 * consumer type check. The tests get the project's path through `inject('packedProject')`.
 * Everything is removed at teardown. A failing pack or install fails the run: it never skips.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    packedProject: string;
  }
}

const repo = fileURLToPath(new URL('../..', import.meta.url));

function npm(args: string[], cwd: string): string {
  return execFileSync('npm', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 300_000,
    env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false' },
  });
}

/** The version the repo pins, so the consumer checks against what we develop with. */
function devVersion(name: string): string {
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
    devDependencies: Record<string, string>;
  };
  const v = pkg.devDependencies[name];
  if (!v) throw new Error(`package.json has no devDependency ${name}`);
  return v;
}

export default function setup(project: TestProject): () => void {
  const root = mkdtempSync(join(tmpdir(), 'agentstate-package-'));
  const packed = npm(['pack', '--json', '--pack-destination', root, repo], repo);
  const tarball = (JSON.parse(packed) as { filename: string }[])[0]?.filename;
  if (!tarball) throw new Error(`npm pack printed no file name:\n${packed}`);

  const app = join(root, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify(
      {
        name: 'agentstate-consumer',
        private: true,
        type: 'module',
        dependencies: { agentstate: `file:../${tarball}` },
        devDependencies: {
          typescript: devVersion('typescript'),
          '@types/node': devVersion('@types/node'),
        },
      },
      null,
      2,
    ),
  );
  npm(['install', '--prefer-offline', '--no-package-lock'], app);
  project.provide('packedProject', app);
  return () => rmSync(root, { recursive: true, force: true });
}

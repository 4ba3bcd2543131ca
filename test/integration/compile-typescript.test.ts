/**
 * TypeScript agent files compiled once by the worker (src/agent-file/compile-typescript.ts): the
 * output is plain JavaScript that `node` imports with no loader, the user's own files are bundled
 * with their own `import.meta`, packages stay imports, and a broken file is a clear error.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentCompileError,
  compileTypeScriptAgent,
} from '../../src/agent-file/compile-typescript.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentstate-compile-'));
  await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n');
  await writeFile(
    join(dir, 'helper.ts'),
    'export const where: string = import.meta.url;\nexport const dirOf = (): string => import.meta.dirname;\n',
  );
  await writeFile(
    join(dir, 'agent.ts'),
    [
      "import { createRequire } from 'node:module';",
      "import { where, dirOf } from './helper.js';",
      'interface Shape { n: number }',
      'const s: Shape = { n: 1 };',
      'export default { entrypointFnc: () => undefined, where, dir: dirOf(), self: import.meta.url, n: s.n, req: typeof createRequire };',
    ].join('\n'),
  );
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('compiling a TypeScript agent', () => {
  it('writes JavaScript beside the file that plain node imports, each file keeping its own import.meta', async () => {
    const out = await compileTypeScriptAgent(join(dir, 'agent.ts'));
    expect(dirname(out)).toBe(join(dir, '.agentstate'));
    expect(out).toMatch(/\.mjs$/);
    const printed = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(pathToFileURL(out).href)}); console.log(JSON.stringify(m.default))`,
      ],
      { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } },
    );
    expect(JSON.parse(printed)).toEqual({
      where: pathToFileURL(join(dir, 'helper.ts')).href,
      dir,
      self: pathToFileURL(join(dir, 'agent.ts')).href,
      n: 1,
      req: 'function',
    });
    expect(await readFile(`${out}.map`, 'utf8')).toContain('helper.ts');
  });

  it('replaces the previous output in place on a rebuild', async () => {
    const first = await compileTypeScriptAgent(join(dir, 'agent.ts'));
    await writeFile(
      join(dir, 'helper.ts'),
      "export const where = 'v2';\nexport const dirOf = () => 'd';\n",
    );
    const second = await compileTypeScriptAgent(join(dir, 'agent.ts'));
    expect(second).toBe(first);
    expect(await readFile(second, 'utf8')).toContain('v2');
  });

  it('reports a file that does not compile with its name and line', async () => {
    await writeFile(join(dir, 'broken.ts'), 'export default {\n  entrypointFnc: ( => 1,\n};\n');
    const err = await compileTypeScriptAgent(join(dir, 'broken.ts')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentCompileError);
    expect((err as Error).message).toMatch(/could not compile broken\.ts: .+broken\.ts:2\)/);
  });
});

describe('compiling the same agent from several workers at once', () => {
  it('shares one build, so concurrent callers all get the same complete file', async () => {
    const outs = await Promise.all(
      Array.from({ length: 5 }, () => compileTypeScriptAgent(join(dir, 'agent.ts'))),
    );
    expect(new Set(outs).size).toBe(1);
    expect(await readFile(outs[0]!, 'utf8')).toContain('entrypointFnc');
  });
});

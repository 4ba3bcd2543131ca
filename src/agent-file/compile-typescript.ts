/**
 * TypeScript agent files without a build step, and without a TypeScript loader in any process:
 * the worker bundles the agent file once per (re)load with esbuild into plain JavaScript, and the
 * worker and every job process import that. A child never transpiles anything.
 *
 * What the bundle keeps from the source:
 * - Packages stay external (`import 'agentstate'`, `@livekit/rtc-node`, …) and resolve exactly as
 *   they would from the agent file: the bundle is written beside it, in `.agentstate/` (same
 *   package scope, same `node_modules` above it). Where that directory cannot be written (a
 *   read-only image), the nearest `node_modules/.cache/agentstate/` above the file is used, which
 *   resolves packages the same way except a package importing itself by name.
 * - The user's own files are bundled in, and each keeps its own `import.meta.url`,
 *   `import.meta.filename` and `import.meta.dirname`, so files read next to a module still load.
 * - A source map beside it, for stack traces under `--enable-source-maps`.
 * agentstate's own files reached by a relative path (only inside this repo) are left external
 * too, so there is never a second copy of the framework in a bundle.
 *
 * esbuild is imported only here, and only when a TypeScript agent is compiled: a JavaScript
 * agent loads neither esbuild nor any loader.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, join, parse, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BuildResult, Plugin } from 'esbuild';
import { writeFileAtomically } from '../atomic-write.ts';
import { AgentStateError } from '../errors.ts';
import { withEsbuild } from '../esbuild-session.ts';
import { PACKAGE_ROOT } from '../package-root.ts';
import { isTypeScriptFile } from './typescript-file.ts';

const USER_SOURCE = /\.(?:[cm]?[jt]s|[jt]sx)$/;

/** The agent file could not be compiled (a syntax or type-stripping error, or a missing import). */
export class AgentCompileError extends AgentStateError {}

/** Where the bundle of `file` goes: stable per source path, so a rebuild replaces it in place. */
export function compiledPathFor(file: string, dir = join(dirname(file), '.agentstate')): string {
  const hash = createHash('sha256').update(file).digest('hex').slice(0, 12);
  const ext = file.endsWith('.cts') ? '.cjs' : '.mjs';
  return join(dir, `${parse(file).name}-${hash}${ext}`);
}

/**
 * Bundles the TypeScript agent at `file` (an absolute path) and returns the path of the
 * JavaScript to import. The file is replaced atomically, so a process starting during a rebuild
 * imports either the old bundle or the new one, never half of one.
 */
export function compileTypeScriptAgent(file: string): Promise<string> {
  // Several workers in one process (a WorkerGroup, tests) may compile the same file at once:
  // they share one build, and so never race on its output.
  const running = inFlight.get(file);
  if (running) return running;
  const build = compile(file).finally(() => inFlight.delete(file));
  inFlight.set(file, build);
  return build;
}

const inFlight = new Map<string, Promise<string>>();

async function compile(file: string): Promise<string> {
  const out = writableOutput(file);
  let result: BuildResult;
  try {
    result = await withEsbuild((esbuild) =>
      esbuild.build({
        entryPoints: [file],
        outfile: out,
        bundle: true,
        write: false,
        platform: 'node',
        target: `node${process.versions.node.split('.')[0]}`,
        format: file.endsWith('.cts') ? 'cjs' : 'esm',
        packages: 'external',
        sourcemap: 'linked',
        sourcesContent: true,
        logLevel: 'silent',
        // Bundled CommonJS files may `require` packages; in an ES module that needs a real require.
        banner: file.endsWith('.cts')
          ? {}
          : {
              js: "import { createRequire as __agentstateCreateRequire } from 'node:module'; const require = __agentstateCreateRequire(import.meta.url);",
            },
        define: {
          'import.meta.url': '__agentstateImportMetaUrl',
          'import.meta.filename': '__agentstateImportMetaFilename',
          'import.meta.dirname': '__agentstateImportMetaDirname',
        },
        plugins: [frameworkStaysExternal(), ownImportMeta()],
      }),
    );
  } catch (cause) {
    const errors = (
      cause as { errors?: { text: string; location?: { file: string; line: number } | null }[] }
    ).errors;
    const first = errors?.[0];
    const where = first?.location ? ` (${first.location.file}:${first.location.line})` : '';
    throw new AgentCompileError(
      `could not compile ${basename(file)}: ${first?.text ?? String(cause)}${where}`,
      { cause },
    );
  }
  // The map first, then the code that points to it; each by rename, so readers never see a partial file.
  const files = [...(result.outputFiles ?? [])].sort((a) => (a.path.endsWith('.map') ? -1 : 1));
  for (const f of files) writeFileAtomically(f.path, f.contents);
  return out;
}

/** Beside the file when that directory can be written, else the nearest `node_modules/.cache`. */
function writableOutput(file: string): string {
  const beside = compiledPathFor(file);
  try {
    mkdirSync(dirname(beside), { recursive: true });
    accessSync(dirname(beside), constants.W_OK);
    return beside;
  } catch {
    let dir = dirname(file);
    for (;;) {
      const nm = join(dir, 'node_modules');
      if (existsSync(nm)) {
        const out = compiledPathFor(file, join(nm, '.cache', 'agentstate'));
        mkdirSync(dirname(out), { recursive: true });
        return out;
      }
      const up = dirname(dir);
      if (up === dir) return beside; // nowhere better: let the write fail with its own error
      dir = up;
    }
  }
}

/** agentstate's own files (src/, machines/, dist/ of this package) are imported, never bundled. */
function frameworkStaysExternal(): Plugin {
  const own = ['src', 'machines', 'dist'].map((d) => join(PACKAGE_ROOT, d) + sep);
  return {
    name: 'agentstate-framework-external',
    setup(build) {
      build.onResolve({ filter: /^(?:\.\.?\/|\/|file:)/ }, async (args) => {
        if (args.pluginData === 'agentstate-resolving') return undefined;
        const spec = args.path.startsWith('file:') ? fileURLToPath(args.path) : args.path;
        const r = await build.resolve(spec, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: args.resolveDir,
          pluginData: 'agentstate-resolving',
        });
        if (r.errors.length > 0 || !own.some((d) => r.path.startsWith(d))) return undefined;
        return { path: pathToFileURL(r.path).href, external: true };
      });
    },
  };
}

/** Each bundled user file answers `import.meta.url` (and friends) with its own location. */
function ownImportMeta(): Plugin {
  return {
    name: 'agentstate-own-import-meta',
    setup(build) {
      build.onLoad({ filter: USER_SOURCE }, async (args) => {
        if (args.path.includes(`${sep}node_modules${sep}`)) return undefined;
        let source = await readFile(args.path, 'utf8');
        // A shebang must stay first; as a comment it keeps its line.
        if (source.startsWith('#!')) source = `//${source}`;
        // On the first line, so the source map's line numbers stay those of the file.
        const prelude =
          `var __agentstateImportMetaUrl = ${JSON.stringify(pathToFileURL(args.path).href)},` +
          ` __agentstateImportMetaFilename = ${JSON.stringify(args.path)},` +
          ` __agentstateImportMetaDirname = ${JSON.stringify(dirname(args.path))};`;
        return { contents: prelude + source, loader: loaderFor(args.path) };
      });
    },
  };
}

function loaderFor(path: string): 'ts' | 'tsx' | 'js' | 'jsx' {
  const ext = extname(path);
  if (ext === '.tsx') return 'tsx';
  if (ext === '.jsx') return 'jsx';
  return isTypeScriptFile(path) ? 'ts' : 'js';
}

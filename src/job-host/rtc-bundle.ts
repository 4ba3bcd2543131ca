/**
 * Worker side of the job process's quick load of `@livekit/rtc-node`: one prebuilt file instead of
 * the ~125 CommonJS modules rtc-node is (its FFI protocol classes, protobuf-es, pino and their
 * helpers). Node resolves, reads, wraps and compiles each of them in every new job process, a
 * large share of a start's CPU; one bundle with a V8 code cache loads in a fraction of that
 * (docs/measurements.md). Vite pre-bundles dependencies for the same reason.
 *
 * The bundle is built here, once per installed rtc-node, with esbuild (already a dependency, for
 * TypeScript agents), from the files the worker's own `import '@livekit/rtc-node'` resolves to.
 * It goes into the nearest `node_modules/.cache/agentstate/` above rtc-node (else the system's
 * temporary directory), with a manifest of every file it was built from (path, size, mtime): a
 * changed file (an upgrade, a patch) makes the next worker build it again. Job processes load it
 * (`src/job-process/rtc-preload.ts`) in place of rtc-node's own files, under the same module
 * identity, so an agent's `import { Room } from '@livekit/rtc-node'` gets the very same classes.
 *
 * Nothing here is needed for correctness: whatever fails (no esbuild binary, a read-only disk,
 * a layout we do not know) leaves job processes loading rtc-node as Node always does. Processes
 * started while the bundle is still being built (the first start after an install) do the same.
 * `AGENTSTATE_RTC_BUNDLE=0` turns it off.
 */
import { withDeadline } from '../clock.ts';
import { createHash } from 'node:crypto';
import {
  accessSync,
  constants,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomically } from '../atomic-write.ts';
import { withEsbuild } from '../esbuild-session.ts';
import type { Logger } from '../log/logger.ts';
import type { RtcBundle } from '../../machines/jobIpc.contract.ts';

/** Set to `0` to have job processes load `@livekit/rtc-node` file by file, as Node does. */
export const RTC_BUNDLE_ENV = 'AGENTSTATE_RTC_BUNDLE';

/** Bumped when what the bundle holds or how it is loaded changes: older bundles are not used. */
const FORMAT = 5;

interface Manifest {
  format: number;
  bundle: RtcBundle;
  /** Every file esbuild read for the bundle: [path, size, mtimeMs]. */
  inputs: [string, number, number][];
}

type State =
  | { status: 'unprepared' }
  /** `done` settles (never rejects) once the state is `ready` or `unavailable`. */
  | { status: 'building'; done: Promise<void> }
  | { status: 'ready'; bundle: RtcBundle }
  | { status: 'unavailable' };

let state: State = { status: 'unprepared' };

/**
 * The bundle job processes should load, if there is one yet. The first call finds it on disk (a
 * few hundred `stat`s) or starts building it in the background and answers `undefined` until the
 * build is done; later calls only read the outcome. One per worker process, shared by its workers.
 */
export function rtcBundleForJobs(log: Logger): RtcBundle | undefined {
  if (state.status === 'unprepared') prepare(log);
  return state.status === 'ready' ? state.bundle : undefined;
}

/** The bundle once the background build, if one runs, is done (tests start from it). */
export async function rtcBundleSettled(log: Logger): Promise<RtcBundle | undefined> {
  rtcBundleForJobs(log);
  if (state.status === 'building') await state.done;
  return rtcBundleForJobs(log);
}

/**
 * How long the build may take before job processes give up on it for this worker's life (it takes
 * ~0.1–0.3 s; esbuild stuck on a bad disk must not leave the state `building` for good).
 */
const BUILD_TIMEOUT_MS = 30_000;

function prepare(log: Logger): void {
  if (process.env[RTC_BUNDLE_ENV] === '0') {
    state = { status: 'unavailable' };
    return;
  }
  let plan: Plan;
  try {
    plan = planBundle();
  } catch (err) {
    // An unknown layout of rtc-node's files, or no cache directory this user may write.
    log.debug('job processes load @livekit/rtc-node file by file: no bundle can be made', {
      error: err,
    });
    state = { status: 'unavailable' };
    return;
  }
  const found = readValidManifest(plan.manifestFile);
  if (found) {
    state = { status: 'ready', bundle: found.bundle };
    return;
  }
  const startedAt = performance.now();
  const done = withDeadline(build(plan), BUILD_TIMEOUT_MS, 'the bundle build').then(
    (bundle) => {
      state = { status: 'ready', bundle };
      log.debug('bundled @livekit/rtc-node for job processes', {
        file: bundle.file,
        ms: Math.round(performance.now() - startedAt),
      });
    },
    (err: unknown) => {
      state = { status: 'unavailable' };
      log.debug('job processes load @livekit/rtc-node file by file: bundling it failed', {
        error: err,
      });
    },
  );
  state = { status: 'building', done };
}

interface Plan {
  /** The module files the bundle stands in for, as Node names them (real paths). */
  modules: string[];
  /** `@livekit/protocol`'s ES entry, where the job runtime's classes come from. */
  protocol: string;
  /** Where the bundle's remaining `require`s (the native binding) resolve from. */
  requireFrom: string;
  file: string;
  manifestFile: string;
}

/**
 * What to bundle: rtc-node's CommonJS entry (what its ES entry re-exports); the two modules the
 * job process's warm-up reaches directly (its FFI client and the FFI bindings); and the protobuf
 * runtime beside them. Each is then one instance in the process, whichever way it is reached.
 * Beside these, the two `@livekit/protocol` classes the job runtime needs (`Job`, `JobType`:
 * `src/job-process/livekit-protocol.ts`), from the package's ES build, where esbuild can leave
 * out the ~430 message types a job process never uses; evaluating them all was ~8 ms of every
 * start (bench/results/start-cpu.md). They use the bundle's protobuf runtime, and stand in for
 * no module: anything else that requires `@livekit/protocol` gets the package as usual.
 */
function planBundle(): Plan {
  const require = createRequire(import.meta.url);
  const entry = realpathSync(require.resolve('@livekit/rtc-node'));
  if (!entry.endsWith('.cjs')) throw new Error(`unexpected entry ${entry}`);
  const rtcRequire = createRequire(entry);
  const bindings = realpathSync(rtcRequire.resolve('@livekit/rtc-ffi-bindings'));
  const native = join(dirname(bindings), 'native.js');
  statSync(native);
  const modules = [
    entry,
    realpathSync(join(dirname(entry), 'ffi_client.cjs')),
    bindings,
    realpathSync(createRequire(bindings).resolve('@bufbuild/protobuf')),
  ];
  if (modules.some((m) => m.endsWith('.mjs'))) throw new Error('an ES module among the parts');
  // The ES build the job runtime's `import` of the package would get.
  const protocol = realpathSync(fileURLToPath(import.meta.resolve('@livekit/protocol')));
  const versions = [entry, bindings, protocol].map((f) => packageVersion(f)).join('+');
  const esbuildVersion = packageVersion(require.resolve('esbuild'));
  const key = createHash('sha256')
    .update([FORMAT, ...modules, protocol, versions, esbuildVersion, process.version].join('\n'))
    .digest('hex')
    .slice(0, 12);
  const file = join(cacheDirFor(entry), `rtc-node-${packageVersion(entry)}-${key}.cjs`);
  return { modules, protocol, requireFrom: native, file, manifestFile: `${file}.json` };
}

/** The package.json nearest above `file` that names a version, and that version. */
function packageOf(file: string): { manifest: string; version: string } {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const manifest = join(dir, 'package.json');
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { version?: string };
      if (pkg.version) return { manifest, version: pkg.version };
    } catch {
      // not here: one level up
    }
  }
  return { manifest: '', version: '0' };
}

function packageVersion(file: string): string {
  return packageOf(file).version;
}

/** The nearest `node_modules/.cache/agentstate` above rtc-node, or a per-user temporary one. */
function cacheDirFor(entry: string): string {
  const at = entry.lastIndexOf(`${sep}node_modules${sep}`);
  if (at >= 0) {
    const dir = join(entry.slice(0, at), 'node_modules', '.cache', 'agentstate');
    try {
      mkdirSync(dir, { recursive: true });
      accessSync(dir, constants.W_OK);
      return dir;
    } catch {
      // read-only (an image's node_modules): a temporary directory of our own
    }
  }
  // Only ours: job processes run what is found here, so nobody else may write to it.
  const dir = join(tmpdir(), `agentstate-cache-${safeUser()}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const s = statSync(dir);
  if (s.uid !== process.getuid?.() || (s.mode & 0o022) !== 0) {
    throw new Error(`${dir} is not this user's own directory`);
  }
  return dir;
}

function safeUser(): string {
  try {
    return userInfo().username.replace(/[^\w.-]/g, '_');
  } catch {
    return String(process.getuid?.() ?? 'user');
  }
}

/** The manifest's bundle, if the bundle is there and every file it was built from is unchanged. */
function readValidManifest(manifestFile: string): Manifest | undefined {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest;
    if (manifest.format !== FORMAT) return undefined;
    statSync(manifest.bundle.file);
    for (const [path, size, mtimeMs] of manifest.inputs) {
      const s = statSync(path);
      if (s.size !== size || s.mtimeMs !== mtimeMs) return undefined;
    }
  } catch {
    return undefined;
  }
  return manifest;
}

/**
 * Removes the bundles in `dir` that no worker would use any more (an older rtc-node, format or
 * Node), with their manifests and code caches; one whose manifest still holds is kept (another
 * install, or another Node, sharing the directory).
 */
function removeStaleBundles(dir: string, keep: string): void {
  try {
    for (const name of readdirSync(dir)) {
      if (!name.startsWith('rtc-node-') || !name.endsWith('.cjs')) continue;
      const file = join(dir, name);
      if (file === keep || readValidManifest(`${file}.json`)) continue;
      for (const other of readdirSync(dir)) {
        if (other.startsWith(name)) rmSync(join(dir, other), { force: true });
      }
    }
  } catch {
    // Left for the next build: nothing depends on it.
  }
}

async function build(plan: Plan): Promise<RtcBundle> {
  // esbuild names its inputs relative to its working directory.
  const cwd = dirname(plan.modules[0] ?? process.cwd());
  const result = await withEsbuild((esbuild) =>
    esbuild.build({
      stdin: {
        // The modules in the order of `RtcBundle.modules`; each `require` is bundled, once.
        contents: [
          `export const modules = [${plan.modules.map((m) => `require(${JSON.stringify(m)})`).join(', ')}];`,
          `export { Job, JobType } from ${JSON.stringify(plan.protocol)};`,
        ].join('\n'),
        resolveDir: cwd,
        loader: 'js',
      },
      absWorkingDir: cwd,
      bundle: true,
      write: false,
      metafile: true,
      platform: 'node',
      format: 'cjs',
      target: `node${process.versions.node.split('.')[0]}`,
      // No comments and no indentation: a third less to read and compile in every job process,
      // and all ASCII (a comment's one non-ASCII character made V8 hold the whole source as
      // two-byte text). Names are kept, so stack traces still name rtc-node's functions.
      minifyWhitespace: true,
      charset: 'ascii',
      // The native binding stays a `require`, resolved from the bindings' own directory.
      external: ['@livekit/rtc-ffi-bindings-*', '*.node'],
      // The protocol's ES build imports the protobuf runtime as ESM: it gets the CommonJS build
      // of the same package instead, the one the FFI bindings require, so the bundle holds a
      // single runtime (two, should the packages ever depend on different installs of it).
      plugins: [
        {
          name: 'protobuf-runtime-as-commonjs',
          setup(b) {
            b.onResolve({ filter: /^@bufbuild\/protobuf$/ }, (args) => ({
              path: realpathSync(
                createRequire(join(args.resolveDir, 'importer.js')).resolve('@bufbuild/protobuf'),
              ),
            }));
          },
        },
      ],
      logLevel: 'silent',
    }),
  );
  const code = result.outputFiles[0]?.contents;
  if (!code) throw new Error('esbuild produced no output');
  const inputs = Object.keys(result.metafile.inputs)
    .filter((p) => !p.startsWith('<'))
    .map((p): [string, number, number] => {
      const s = statSync(join(cwd, p));
      return [join(cwd, p), s.size, s.mtimeMs];
    });
  const bundle: RtcBundle = {
    file: plan.file,
    // An install replaces these: a job process checks them before it trusts the bundle.
    sentinels: [...new Set([...plan.modules, plan.protocol].map((m) => packageOf(m).manifest))]
      .filter((f) => f !== '')
      .map((f): [string, number, number] => {
        const st = statSync(f);
        return [f, st.size, st.mtimeMs];
      }),
    codeCache: `${plan.file}.${process.arch}-v8-${process.versions.v8}.cache`,
    modules: plan.modules,
    requireFrom: plan.requireFrom,
  };
  writeFileAtomically(plan.file, code);
  // The manifest last: until it is there, no worker takes the bundle as built.
  writeFileAtomically(
    plan.manifestFile,
    JSON.stringify({ format: FORMAT, bundle, inputs } satisfies Manifest),
  );
  removeStaleBundles(dirname(plan.file), plan.file);
  return bundle;
}

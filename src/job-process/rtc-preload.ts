/**
 * Child side of the quick load of `@livekit/rtc-node` (the worker side, and why: `src/job-host/
 * rtc-bundle.ts`). Before anything in the job process imports rtc-node, its prebuilt bundle is
 * compiled, from V8's code cache when there is one, and run once; each module it stands in for is
 * then put into `require.cache` under that module's own file name, loaded. Node finds a module
 * there before it looks at the disk, for `require` and for `import` alike (an ES import of a
 * CommonJS file takes its exports from that cache), so the agent's `import '@livekit/rtc-node'`,
 * the job runtime's and the warm-up's all get the bundle's single instance.
 *
 * The bundle also brings the two `@livekit/protocol` classes the job runtime needs, without the
 * rest of the package (`bundledJobProtocol`, read by `./livekit-protocol.ts`).
 *
 * Any failure leaves the cache untouched, and rtc-node loads from its own files as it always does.
 */
import { errorMessage } from '../errors.ts';
import { existsSync, readFileSync, statSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';
import { writeFileAtomically } from '../atomic-write.ts';
import type { RtcBundle } from '../../machines/jobIpc.contract.ts';
import type * as ProtocolTypes from '@livekit/protocol';

/** What the job runtime takes of `@livekit/protocol`. */
export type JobProtocol = Pick<typeof ProtocolTypes, 'Job' | 'JobType'>;

/** What the bundle exports (`src/job-host/rtc-bundle.ts`). */
interface BundleExports {
  /** The exports of `RtcBundle.modules`, in that order. */
  modules: unknown[];
  Job: JobProtocol['Job'];
  JobType: JobProtocol['JobType'];
}

let jobProtocol: JobProtocol | undefined;

/** The protocol classes the bundle brought, once rtc-node came from it; else `undefined`. */
export function bundledJobProtocol(): JobProtocol | undefined {
  return jobProtocol;
}

function isBundleExports(x: unknown, modules: number): x is BundleExports {
  const e = x as Partial<BundleExports> | null;
  return (
    typeof e === 'object' &&
    e !== null &&
    Array.isArray(e.modules) &&
    e.modules.length === modules &&
    typeof e.Job === 'function' &&
    typeof e.JobType === 'object'
  );
}

/** How the preload went; `saveCodeCache` finishes what it started. */
export interface RtcPreload {
  /** `bundle`: rtc-node came from the bundle; `files`: Node loads it as usual. */
  loadedFrom: 'bundle' | 'files';
  /** Why not from the bundle, when not. */
  reason?: string;
  /**
   * Writes the code cache when the bundle was compiled without one (or V8 refused it). Called
   * once the process is warm, so the cache also holds the functions the warm-up compiled.
   */
  saveCodeCache(): void;
}

type CommonJsWrapper = (
  exports: unknown,
  require: NodeJS.Require,
  module: { exports: unknown },
  filename: string,
  dirname: string,
) => void;

interface CacheableModule {
  exports: unknown;
  filename: string;
  loaded: boolean;
  paths: string[];
}

/** The internals of `node:module` this relies on: documented, but missing from its types. */
const ModuleInternals = Module as unknown as {
  new (id: string): CacheableModule;
  wrap(source: string): string;
  _nodeModulePaths(dir: string): string[];
};

const notSaved = (): void => {};

export function preloadRtcNode(bundle: RtcBundle | undefined): RtcPreload {
  if (!bundle) return { loadedFrom: 'files', reason: 'no bundle', saveCodeCache: notSaved };
  const require = createRequire(import.meta.url);
  if (bundle.modules.some((m) => require.cache[m] !== undefined)) {
    return { loadedFrom: 'files', reason: 'already loaded', saveCodeCache: notSaved };
  }
  if (!sentinelsHold(bundle)) {
    return { loadedFrom: 'files', reason: 'rtc-node changed on disk', saveCodeCache: notSaved };
  }
  let script: Script;
  let exported: unknown;
  let hadCache: boolean;
  try {
    const source = readFileSync(bundle.file, 'utf8');
    const cachedData = existsSync(bundle.codeCache) ? readFileSync(bundle.codeCache) : undefined;
    script = new Script(ModuleInternals.wrap(source), { filename: bundle.file, cachedData });
    hadCache = cachedData !== undefined && !script.cachedDataRejected;
    const wrapper = script.runInThisContext() as CommonJsWrapper;
    const holder = { exports: {} as unknown };
    wrapper.call(
      holder.exports,
      holder.exports,
      createRequire(bundle.requireFrom),
      holder,
      bundle.file,
      dirname(bundle.requireFrom),
    );
    exported = holder.exports;
  } catch (err) {
    return { loadedFrom: 'files', reason: errorMessage(err), saveCodeCache: notSaved };
  }
  if (!isBundleExports(exported, bundle.modules.length)) {
    return {
      loadedFrom: 'files',
      reason: 'the bundle exports something else',
      saveCodeCache: notSaved,
    };
  }
  const { modules, Job, JobType } = exported;
  jobProtocol = { Job, JobType };
  bundle.modules.forEach((file, i) => {
    const m = new ModuleInternals(file);
    m.filename = file;
    m.paths = ModuleInternals._nodeModulePaths(dirname(file));
    m.exports = modules[i];
    m.loaded = true;
    require.cache[file] = m as unknown as NodeJS.Module;
  });
  return {
    loadedFrom: 'bundle',
    saveCodeCache: hadCache
      ? notSaved
      : () => {
          try {
            writeFileAtomically(bundle.codeCache, script.createCachedData());
          } catch {
            // A read-only cache directory: the next process compiles the bundle again.
          }
        },
  };
}

/** Whether the bundled packages are still the ones installed (a `stat` per package). */
function sentinelsHold(bundle: RtcBundle): boolean {
  try {
    return bundle.sentinels.every(([file, size, mtimeMs]) => {
      const s = statSync(file);
      return s.size === size && s.mtimeMs === mtimeMs;
    });
  } catch {
    return false;
  }
}

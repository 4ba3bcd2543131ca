/**
 * Watches the agent's directory for `agent dev` hot reload: one callback per burst of changes
 * (editors write a file in several steps), ignoring dependency, VCS and test-output folders.
 *
 * On macOS and Windows the platform watches a tree natively. Elsewhere (Linux) Node's
 * `recursive: true` puts an inotify watch on every directory, node_modules included, which can
 * exhaust the user's watch limit; so we watch each directory ourselves and skip ignored ones.
 */
import { readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join, relative, sep } from 'node:path';

export interface WatchFilesOptions {
  /** Quiet time after the last change before `onChange` runs. Default 200 ms. */
  debounceMs?: number;
  /** Directory or file names whose changes are ignored, at any depth. */
  ignore?: readonly string[];
  onError?: (err: Error) => void;
}

export const DEFAULT_IGNORED: readonly string[] = [
  'node_modules',
  // Where compiled TypeScript agents go when no node_modules is above them (src/agent-file).
  '.agentstate',
  '.git',
  'test-artifacts',
  'dist',
  'coverage',
];

const NATIVE_RECURSIVE = process.platform === 'darwin' || process.platform === 'win32';

/**
 * Calls `onChange(files)` (paths relative to `dir`) once changes under `dir` settle. Returns
 * the stopper, which closes every watcher and cancels a pending callback.
 */
export function watchFiles(
  dir: string,
  onChange: (files: string[]) => void,
  options: WatchFilesOptions = {},
): () => void {
  const debounceMs = options.debounceMs ?? 200;
  const ignored = new Set(options.ignore ?? DEFAULT_IGNORED);
  const changed = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const onPath = (rel: string) => {
    if (stopped || rel.split(/[\\/]/).some((segment) => ignored.has(segment))) return;
    changed.add(rel);
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      const files = [...changed];
      changed.clear();
      if (!stopped) onChange(files);
    }, debounceMs);
  };
  const onError = (err: Error) => options.onError?.(err);

  const stopWatching = NATIVE_RECURSIVE
    ? watchNative(dir, onPath, onError)
    : watchEachDirectory(dir, ignored, onPath, onError);
  return () => {
    if (stopped) return;
    stopped = true;
    if (timer) clearTimeout(timer);
    stopWatching();
  };
}

function watchNative(dir: string, onPath: (rel: string) => void, onError: (e: Error) => void) {
  const watcher = watch(dir, { recursive: true }, (_e, file) => onPath(file?.toString() ?? ''));
  watcher.on('error', onError);
  return () => {
    watcher.off('error', onError);
    watcher.close();
  };
}

function watchEachDirectory(
  root: string,
  ignored: ReadonlySet<string>,
  onPath: (rel: string) => void,
  onError: (e: Error) => void,
): () => void {
  const watchers = new Map<string, FSWatcher>();
  const forget = (d: string) => {
    const w = watchers.get(d);
    if (!w) return;
    watchers.delete(d);
    w.removeAllListeners('error');
    w.close();
  };
  const add = (d: string) => {
    if (watchers.has(d)) return;
    let w: FSWatcher;
    try {
      w = watch(d, (event, file) => {
        const full = file === null ? d : join(d, file.toString());
        onPath(relative(root, full).split(sep).join('/'));
        // A new directory (or one renamed in) needs its own watcher.
        if (event === 'rename' && file !== null && isDirectory(full)) addTree(full);
      });
    } catch (err) {
      // Gone already (created and removed in one burst): nothing to watch.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onError(err as Error);
      return;
    }
    w.on('error', (err) => {
      // A removed directory reports an error on some kernels; its watcher is just dropped.
      forget(d);
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') onError(err);
    });
    watchers.set(d, w);
  };
  const addTree = (d: string) => {
    add(d);
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory() && !ignored.has(e.name)) addTree(join(d, e.name));
    }
  };
  addTree(root);
  return () => {
    for (const d of [...watchers.keys()]) forget(d);
  };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

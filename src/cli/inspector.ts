/**
 * The inspector as the CLI uses it: on by default for `agent dev`, opt-in for `agent start`
 * (`--inspect`), off with `--no-inspect`. Imported lazily by the CLI so a production worker
 * without `--inspect` never loads it.
 */
import type { FlagValue } from './flags.ts';
import { InvalidOptionError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { startInspector, type Inspector } from '../inspector/server.ts';

/** Stable across restarts so a dev's browser tab keeps working; a free port if it is taken. */
export const DEFAULT_INSPECTOR_PORT = 7870;

/**
 * `flag` is the parsed `--inspect` value: `undefined` (not given), `true`, `false`
 * (`--no-inspect`) or a port number.
 */
export async function startCliInspector(
  command: string,
  flag: FlagValue,
  log: Logger,
  secrets: readonly (string | undefined)[],
): Promise<Inspector | undefined> {
  const wanted = flag === undefined ? command === 'dev' : flag !== false && flag !== 'false';
  if (!wanted) return undefined;
  const known = secrets.filter((s): s is string => typeof s === 'string' && s.length > 0);
  if (flag === 'stately') {
    const { startStatelyInspector } = await import('../inspector/stately.ts');
    const stately = await startStatelyInspector(log, known);
    return { url: 'https://stately.ai/inspect', ...stately };
  }
  const port = typeof flag === 'number' || /^\d+$/.test(String(flag)) ? Number(flag) : undefined;
  if (flag !== true && flag !== undefined && port === undefined) {
    throw new InvalidOptionError('--inspect', `expected a port or "stately", got ${String(flag)}`);
  }
  let inspector: Inspector;
  try {
    inspector = await startInspector({ port: port ?? DEFAULT_INSPECTOR_PORT, secrets: known });
  } catch (err) {
    // Only the default port may silently move; a port the user chose must be theirs.
    if (port !== undefined || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    inspector = await startInspector({ port: 0, secrets: known });
  }
  log.info(`inspector: ${inspector.url}`);
  return inspector;
}

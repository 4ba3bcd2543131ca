/**
 * Loads a user's agent file for the `agent` bin: its default export is a `WorkerOptions`
 * (or the plain init object), or the file calls `cli.runApp(opts)` while being loaded.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AgentStateError } from '../errors.ts';
import { WorkerOptions, type WorkerOptionsInit } from '../options.ts';

const LOADING = Symbol.for('agentstate.cli.loadingAgent');
type LoadingSlot = { [LOADING]?: { options?: WorkerOptions } };

/** The agent file could not be found or does not define an agent. */
export class AgentFileError extends AgentStateError {}

/** True while the bin imports an agent file: `cli.runApp` then hands its options over. */
export function captureRunAppOptions(opts: WorkerOptions): boolean {
  const slot = (globalThis as LoadingSlot)[LOADING];
  if (!slot) return false;
  slot.options = opts;
  return true;
}

export async function loadAgentFile(
  file: string,
): Promise<{ options: WorkerOptions; path: string }> {
  const path = resolve(file);
  if (!existsSync(path)) throw new AgentFileError(`agent file not found: ${file}`);
  const slot: { options?: WorkerOptions } = {};
  (globalThis as LoadingSlot)[LOADING] = slot;
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
  } catch (cause) {
    throw new AgentFileError(
      `could not load ${file}: ${cause instanceof Error ? cause.message : String(cause)}`,
      {
        cause,
      },
    );
  } finally {
    delete (globalThis as LoadingSlot)[LOADING];
  }
  const found = toOptions(mod.default) ?? slot.options;
  if (!found) {
    throw new AgentFileError(
      `${file} does not define an agent: export default new WorkerOptions({ entrypointFnc }) or call cli.runApp(opts)`,
    );
  }
  return { options: found, path };
}

/** Accepts a `WorkerOptions` or the init object it is built from. */
export function toOptions(value: unknown): WorkerOptions | undefined {
  if (value instanceof WorkerOptions) return value;
  // A second copy of the package (e.g. src vs a symlinked install) fails `instanceof`; an
  // object carrying an entrypoint is accepted and validated again.
  if (value && typeof value === 'object' && 'entrypointFnc' in value) {
    return new WorkerOptions(value as WorkerOptionsInit);
  }
  return undefined;
}

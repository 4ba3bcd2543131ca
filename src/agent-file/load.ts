/**
 * The one way an agent file is loaded, in the worker (the `agent` bin) and in every job process:
 * import the module, then take its default export (a `WorkerOptions` or the init object it is
 * built from) or, failing that, the options the file handed over by calling `cli.runApp(opts)`
 * (or `new Worker(opts).run()` in a job process) while it was being imported.
 *
 * TypeScript agents are compiled first (./compile-typescript.ts): the worker imports the
 * compiled JavaScript, and job processes get its path, so no process needs a TypeScript loader.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { AgentStateError, errorMessage } from '../errors.ts';
import { registeredAgentOptions } from '../runtime-registry.ts';
import { WorkerOptions, type WorkerOptionsInit } from '../options/worker-options.ts';
import { isTypeScriptFile } from './typescript-file.ts';

const LOADING = Symbol.for('agentstate.cli.loadingAgent');
type LoadingSlot = { [LOADING]?: { options?: WorkerOptions } };

/** The agent file could not be found, compiled or imported, or does not define an agent. */
export class AgentFileError extends AgentStateError {}

/** A loaded agent: its options, the file the user named, and the JavaScript that processes import. */
export interface LoadedAgent {
  options: WorkerOptions;
  /** Absolute path of the user's file (what hot reload watches). */
  path: string;
  /** The module to import: the file itself, or its compiled JavaScript. */
  module: URL;
}

/** True while an agent file is being imported by `loadAgentFile`: `cli.runApp` then hands its options over. */
export function captureRunAppOptions(opts: WorkerOptions): boolean {
  const slot = (globalThis as LoadingSlot)[LOADING];
  if (!slot) return false;
  slot.options = opts;
  return true;
}

/** The JavaScript module to import for an agent file: compiled when it is TypeScript. */
export async function agentModuleFor(path: string): Promise<URL> {
  if (!isTypeScriptFile(path)) return pathToFileURL(path);
  try {
    // Only the worker compiles; a job process, which imports this file too, never loads the compiler.
    const { compileTypeScriptAgent } = await import('./compile-typescript.ts');
    return pathToFileURL(await compileTypeScriptAgent(path));
  } catch (cause) {
    throw new AgentFileError(errorMessage(cause), { cause });
  }
}

/** Loads the agent file the user named (`agent start ./agent.ts`) in the worker process. */
export async function loadAgentFile(file: string): Promise<LoadedAgent> {
  const path = resolve(file);
  if (!existsSync(path)) throw new AgentFileError(`agent file not found: ${file}`);
  const module = await agentModuleFor(path);
  const options = await importAgentModule(module, file);
  return { options, path, module };
}

/**
 * Imports an agent module (a path or `file:` URL of JavaScript, or TypeScript under a loader) and
 * finds its options. `label` names the file in errors.
 */
export async function importAgentModule(
  module: URL,
  label = fileURLToPath(module),
): Promise<WorkerOptions> {
  const url = module.href;
  const slot: { options?: WorkerOptions } = {};
  (globalThis as LoadingSlot)[LOADING] = slot;
  let mod: { default?: unknown };
  try {
    mod = (await import(url)) as { default?: unknown };
  } catch (cause) {
    throw new AgentFileError(`could not load ${label}: ${errorMessage(cause)}`, { cause });
  } finally {
    delete (globalThis as LoadingSlot)[LOADING];
  }
  const found = toOptions(mod.default) ?? slot.options ?? registeredAgentOptions();
  if (!found) {
    throw new AgentFileError(
      `${label} does not define an agent: export default new WorkerOptions({ entrypointFnc }) or call cli.runApp(opts)`,
    );
  }
  return found;
}

/** Accepts a `WorkerOptions` or the init object it is built from. */
export function toOptions(value: unknown): WorkerOptions | undefined {
  if (value instanceof WorkerOptions) return value;
  // A second copy of the package (e.g. sources beside a build) fails `instanceof`; an object
  // carrying an entrypoint is accepted and validated again.
  if (value && typeof value === 'object' && 'entrypointFnc' in value) {
    return new WorkerOptions(value as WorkerOptionsInit);
  }
  return undefined;
}

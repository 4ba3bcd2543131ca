/**
 * Where this copy of agentstate lives, and whether it runs from its TypeScript sources (the
 * repo's own tests and scripts, under tsx) or from its build (`dist/`, as installed from npm).
 * Job processes need to know: a build starts them with plain `node`, sources need tsx.
 */
import { fileURLToPath } from 'node:url';

/** True when this module was loaded as `src/package-root.ts` rather than `dist/src/package-root.js`. */
export const RUNS_FROM_SOURCE: boolean = import.meta.url.endsWith('.ts');

/** The package's root directory (where package.json is): src/ is one level below it, dist/src/ two. */
export const PACKAGE_ROOT: string = fileURLToPath(
  new URL(RUNS_FROM_SOURCE ? '..' : '../..', import.meta.url),
);

/**
 * The export condition under which `agentstate` resolves to its sources (package.json `exports`).
 * Only the repo uses it; published builds never set it.
 */
export const SOURCE_CONDITION = 'agentstate-source';

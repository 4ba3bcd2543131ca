/** The framework's version, sent to the server at registration and shown on `/worker`. */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { PACKAGE_ROOT } from './package-root.ts';

const pkg = createRequire(import.meta.url)(join(PACKAGE_ROOT, 'package.json')) as {
  version: string;
};
export const VERSION: string = pkg.version;

/**
 * Which agent files are TypeScript. Apart from ./compile-typescript.ts so that deciding costs a
 * job process nothing: it only ever imports JavaScript, and loading the compiler's module
 * (node:crypto, node:fs/promises) would add milliseconds to every start.
 */
const TYPESCRIPT = /\.(?:ts|mts|cts|tsx)$/;

/** Whether an agent file needs compiling before plain `node` can import it. */
export function isTypeScriptFile(file: string): boolean {
  return TYPESCRIPT.test(file);
}

/** What every bench script reads from its command line. */

/** The value after `name` on the command line (`--jobs 5` → `'5'`), if `name` is there. */
export function argOf(name: string, argv: readonly string[] = process.argv): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

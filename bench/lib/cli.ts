/** What every bench script reads from its command line, and the one free port it may need. */
import { createServer } from 'node:net';

/** The value after `name` on the command line (`--jobs 5` → `'5'`), if `name` is there. */
export function argOf(name: string, argv: readonly string[] = process.argv): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** A loopback TCP port free right now (the OS picks it; it is closed again before returning). */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? done(a.port) : fail(new Error('no port'))));
    });
  });
}

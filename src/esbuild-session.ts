/**
 * esbuild's service process, shared by the builds running at the moment and stopped when the
 * last of them is done (it is ~12 MB, and a worker builds rarely: a TypeScript agent at start
 * and at each reload, rtc-node's bundle once per install). `esbuild.stop()` while another build
 * is in flight leaves that build's promise pending forever, so no caller stops it on its own.
 * The next build after a stop starts a new service.
 */
type Esbuild = typeof import('esbuild');

let users = 0;

export async function withEsbuild<T>(build: (esbuild: Esbuild) => Promise<T>): Promise<T> {
  const esbuild = await import('esbuild');
  users++;
  try {
    return await build(esbuild);
  } finally {
    if (--users === 0) await esbuild.stop();
  }
}

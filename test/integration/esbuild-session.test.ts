/**
 * Builds that overlap share esbuild's service process (src/esbuild-session.ts): the one that
 * ends first must not stop it under the other (which would leave that build pending forever).
 */
import { describe, expect, it } from 'vitest';
import { withEsbuild } from '../../src/esbuild-session.ts';

const within = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([
    p,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms).unref(),
    ),
  ]);

describe('esbuild session', () => {
  it('lets a longer build finish when a shorter one beside it ends first', async () => {
    const long = withEsbuild((esbuild) =>
      esbuild.build({
        entryPoints: [import.meta.resolve('@livekit/rtc-node').replace('file://', '')],
        bundle: true,
        platform: 'node',
        write: false,
        external: ['*.node', '@livekit/rtc-ffi-bindings-*'],
        logLevel: 'silent',
      }),
    );
    const short = withEsbuild((esbuild) =>
      esbuild.build({ stdin: { contents: 'export const a = 1' }, write: false }),
    );
    expect((await within(short, 10_000)).outputFiles).toHaveLength(1);
    const built = await within(long, 20_000);
    expect(built.outputFiles[0]!.contents.length).toBeGreaterThan(100_000);
  });

  it('starts the service again for a build after the last one stopped it', async () => {
    const tiny = () =>
      withEsbuild((esbuild) => esbuild.build({ stdin: { contents: 'let b = 2' }, write: false }));
    await tiny();
    expect((await within(tiny(), 10_000)).outputFiles).toHaveLength(1);
  });
});

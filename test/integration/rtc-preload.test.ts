/**
 * Job processes load `@livekit/rtc-node` from the worker's prebuilt bundle (src/job-host/rtc-bundle.ts,
 * src/job-process/rtc-preload.ts): real processes, the real bundle, and the ways back to loading
 * it file by file.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import type { RtcBundle } from '../../machines/jobIpc.contract.ts';
import { rtcBundleSettled } from '../../src/job-host/rtc-bundle.ts';
import { fixture, jobInfo, recordingLogger, useProcesses } from './job-process.harness.ts';

const start = useProcesses();
const quiet = recordingLogger([]);

async function runOnce(rtcBundle: () => RtcBundle | undefined) {
  const h = start({
    agentModule: fixture('rtc-identity'),
    rtcBundle,
    env: { AGENTSTATE_LOG_LEVEL: 'DEBUG' },
  });
  await h.waitFor('PROCESS_PREWARMED');
  h.child.send({ type: 'LAUNCH_REQUESTED', job: jobInfo({}) });
  await h.waitFor('JOB_ENDED');
  await vi.waitFor(() => expect(h.log('rtc-node')).toBeDefined(), { timeout: 5_000 });
  return h;
}

describe('rtc-node bundle for job processes', () => {
  it('builds the bundle once, beside the packages, with a manifest of what it was built from', async () => {
    const bundle = await rtcBundleSettled(quiet);
    expect(bundle).toBeDefined();
    expect(bundle!.file).toMatch(/node_modules[/\\]\.cache[/\\]agentstate[/\\]rtc-node-/);
    expect(existsSync(bundle!.file)).toBe(true);
    const manifest = JSON.parse(readFileSync(`${bundle!.file}.json`, 'utf8')) as {
      inputs: [string, number, number][];
    };
    // rtc-node, its FFI bindings, protobuf-es, pino and @livekit/protocol, file by file.
    expect(manifest.inputs.length).toBeGreaterThan(100);
    expect(manifest.inputs.some(([p]) => p.includes('rtc-node/dist/room.cjs'))).toBe(true);
    expect(bundle!.sentinels.map(([f]) => f)).toEqual(
      expect.arrayContaining([expect.stringMatching(/rtc-node[/\\]package\.json$/)]),
    );
    expect(await rtcBundleSettled(quiet)).toEqual(bundle);
  });

  it('builds it again when a file it was built from changed', async () => {
    const bundle = (await rtcBundleSettled(quiet))!;
    const manifestFile = `${bundle.file}.json`;
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as {
      inputs: [string, number, number][];
    };
    const [first] = manifest.inputs;
    // As an upgrade or a patch in place would leave it: one input no longer what was bundled.
    first![2] -= 1000;
    writeFileSync(manifestFile, JSON.stringify(manifest));
    const stale = join(dirname(bundle.file), 'rtc-node-0.0.1-000000000000.cjs');
    for (const f of [stale, `${stale}.json`, `${stale}.x64.cache`]) writeFileSync(f, '{}');
    vi.resetModules();
    const fresh = await import('../../src/job-host/rtc-bundle.ts');
    const records: Parameters<typeof recordingLogger>[0] = [];
    expect(await fresh.rtcBundleSettled(recordingLogger(records))).toEqual(bundle);
    expect(records.map((r) => r.message)).toContain('bundled @livekit/rtc-node for job processes');
    const rebuilt = JSON.parse(readFileSync(manifestFile, 'utf8')) as typeof manifest;
    expect(rebuilt.inputs[0]![2]).toBe(first![2] + 1000);
    // A bundle of an older install, beside it, is removed with its manifest and code cache.
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(`${stale}.json`)).toBe(false);
    expect(existsSync(`${stale}.x64.cache`)).toBe(false);
  });

  it('is off with AGENTSTATE_RTC_BUNDLE=0', async () => {
    vi.resetModules();
    vi.stubEnv('AGENTSTATE_RTC_BUNDLE', '0');
    try {
      const fresh = await import('../../src/job-host/rtc-bundle.ts');
      expect(await fresh.rtcBundleSettled(quiet)).toBeUndefined();
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('gives the agent the classes the framework uses, without loading rtc-node file by file', async () => {
    const bundle = await rtcBundleSettled(quiet);
    const h = await runOnce(() => bundle);
    // ctx.job parses with the bundle's protocol classes, and the package is not loaded whole.
    expect(h.log('rtc-node')?.fields).toMatchObject({
      sameRoom: true,
      rtcFiles: 2,
      protocolFiles: 0,
    });
    expect(h.log('rtc-node')?.fields.jobId).toEqual(expect.any(String));
    expect(h.log('@livekit/rtc-node loaded from its own files')).toBeUndefined();
    // The first process to load the bundle leaves V8's code cache for the next ones.
    await vi.waitFor(() => expect(existsSync(bundle!.codeCache)).toBe(true), { timeout: 5_000 });
    const again = await runOnce(() => bundle);
    expect(again.log('rtc-node')?.fields).toMatchObject({ sameRoom: true, rtcFiles: 2 });
  });

  it('loads rtc-node from its own files when there is no bundle', async () => {
    const h = await runOnce(() => undefined);
    expect(h.log('rtc-node')?.fields).toMatchObject({ sameRoom: true, protocolFiles: 1 });
    expect(h.log('rtc-node')?.fields.jobId).toEqual(expect.any(String));
    expect(h.log('rtc-node')?.fields.rtcFiles).toBeGreaterThan(10);
    expect(h.log('@livekit/rtc-node loaded from its own files')?.fields).toMatchObject({
      reason: 'no bundle',
    });
  });

  it('falls back to the files, and still runs the job, when the bundle cannot be loaded', async () => {
    const bundle = (await rtcBundleSettled(quiet))!;
    const broken = {
      ...bundle,
      file: `${bundle.file}.broken.cjs`,
      codeCache: `${bundle.file}.none`,
    };
    writeFileSync(broken.file, 'module.exports = [1, 2];');
    onTestFinished(() => rmSync(broken.file, { force: true }));
    const h = await runOnce(() => broken);
    expect(h.log('rtc-node')?.fields).toMatchObject({ sameRoom: true });
    expect(h.log('rtc-node')?.fields.rtcFiles).toBeGreaterThan(10);
    expect(h.log('@livekit/rtc-node loaded from its own files')?.fields).toMatchObject({
      reason: 'the bundle exports something else',
    });
    const reinstalled = {
      ...bundle,
      sentinels: bundle.sentinels.map(([f, size, mtime]): [string, number, number] => [
        f,
        size,
        mtime - 1,
      ]),
    };
    const r = await runOnce(() => reinstalled);
    expect(r.log('rtc-node')?.fields.rtcFiles).toBeGreaterThan(10);
    expect(r.log('@livekit/rtc-node loaded from its own files')?.fields.reason).toBe(
      'rtc-node changed on disk',
    );
    const missing = { ...bundle, file: `${bundle.file}.missing.cjs` };
    const m = await runOnce(() => missing);
    expect(m.log('rtc-node')?.fields.rtcFiles).toBeGreaterThan(10);
    expect(m.log('@livekit/rtc-node loaded from its own files')?.fields.reason).toMatch(/ENOENT/);
  });
});

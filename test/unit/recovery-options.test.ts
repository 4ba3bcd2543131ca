import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidOptionError, WorkerOptions, type WorkerOptionsInit } from '../../src/index.ts';
import { resolveOptions } from '../../src/options/resolve.ts';

const entrypointFnc = () => undefined;
const env = {
  LIVEKIT_URL: 'ws://env.test:7880',
  LIVEKIT_API_KEY: 'envkey',
  LIVEKIT_API_SECRET: 'envsecret',
};
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'agentstate-opts-'));
  dirs.push(d);
  return d;
}

function invalid(init: Partial<WorkerOptionsInit>): InvalidOptionError {
  try {
    new WorkerOptions({ entrypointFnc, ...init });
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidOptionError);
    return err as InvalidOptionError;
  }
  throw new Error('expected construction to fail');
}

describe('recovery and stateDir options', () => {
  it('turns recovery on by default with two attempts and the disk journal in the state directory', () => {
    const dir = tmp();
    const r = resolveOptions(new WorkerOptions({ entrypointFnc }), {
      env: { ...env, AGENTSTATE_STATE_DIR: dir },
    });
    expect(r.recovery).toEqual({ redisUrl: undefined, maxAttempts: 2, leaseTtl: 10_000 });
    expect(r.stateDir).toBe(dir);
    expect(r.stateDirProblem).toBeUndefined();
  });

  it('prefers the stateDir option to AGENTSTATE_STATE_DIR, and recovery.redisUrl to AGENTSTATE_REDIS_URL', () => {
    const dir = tmp();
    const o = new WorkerOptions({
      entrypointFnc,
      stateDir: dir,
      recovery: { redisUrl: 'redis://option:6379', maxAttempts: 3 },
    });
    const r = resolveOptions(o, {
      env: { ...env, AGENTSTATE_STATE_DIR: '/nope', AGENTSTATE_REDIS_URL: 'redis://env:6379' },
    });
    expect(r.recovery && r.recovery.redisUrl).toBe('redis://option:6379');
    expect(r.recovery && r.recovery.maxAttempts).toBe(3);
    const fromEnv = resolveOptions(new WorkerOptions({ entrypointFnc, stateDir: dir }), {
      env: { ...env, AGENTSTATE_REDIS_URL: 'redis://env:6379' },
    });
    expect(fromEnv.recovery && fromEnv.recovery.redisUrl).toBe('redis://env:6379');
  });

  it('has recovery off with `recovery: false`', () => {
    const r = resolveOptions(new WorkerOptions({ entrypointFnc, recovery: false }), { env });
    expect(r.recovery).toBe(false);
  });

  it('says why when no state directory is writable', () => {
    // A path under a regular file: unwritable for everyone, root included (modes are not).
    const file = join(tmp(), 'a-file');
    writeFileSync(file, 'x');
    const r = resolveOptions(new WorkerOptions({ entrypointFnc, stateDir: join(file, 'state') }), {
      env,
    });
    expect(r.stateDir).toBeUndefined();
    expect(r.stateDirProblem).toMatch(
      /no writable state directory .*a-file\/state: (ENOTDIR|EEXIST)/,
    );
  });

  it('names the option at fault', () => {
    expect(invalid({ recovery: { maxAttempts: 0 } }).message).toMatch(/recovery\.maxAttempts/);
    expect(invalid({ recovery: { redisUrl: 'http://x' } }).message).toMatch(
      /recovery\.redisUrl.*redis:\/\//,
    );
    expect(invalid({ recovery: { leaseTtl: 5 } }).message).toMatch(/recovery\.leaseTtl/);
    expect(invalid({ recovery: 'yes' as never }).message).toMatch(/recovery/);
    expect(invalid({ stateDir: '' }).message).toMatch(/stateDir/);
    expect(() =>
      resolveOptions(new WorkerOptions({ entrypointFnc }), {
        env: { ...env, AGENTSTATE_REDIS_URL: 'not a url' },
      }),
    ).toThrow(/AGENTSTATE_REDIS_URL/);
  });
});

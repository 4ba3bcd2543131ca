import { describe, expect, it } from 'vitest';
import {
  InvalidOptionError,
  WorkerOptions,
  WorkerPermissions,
  WorkerType,
  type WorkerOptionsInit,
} from '../../src/index.ts';
import { redact } from '../../src/log/logger.ts';
import { resolveServerCredentials } from '../../src/options/sources.ts';
import { resolveOptions, type ResolveSources } from '../../src/options/resolve.ts';

const entrypointFnc = () => undefined;
const env = {
  LIVEKIT_URL: 'ws://env.test:7880',
  LIVEKIT_API_KEY: 'envkey',
  LIVEKIT_API_SECRET: 'envsecret',
};

function invalid(init: Partial<WorkerOptionsInit>): InvalidOptionError {
  try {
    new WorkerOptions({ entrypointFnc, ...init });
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidOptionError);
    return err as InvalidOptionError;
  }
  throw new Error('expected construction to fail');
}

describe('WorkerOptions', () => {
  it('has the seed defaults', () => {
    const o = new WorkerOptions({ entrypointFnc });
    expect(o).toMatchObject({
      drainTimeout: 30 * 60_000,
      workerType: WorkerType.ROOM,
      loadThreshold: 0.7,
      maxJobs: Infinity,
      initializeProcessTimeout: 10_000,
      jobStartBudget: 15_000,
      shutdownProcessTimeout: 60_000,
      jobMemoryLimitMb: 0,
      port: 8081,
    });
    expect(o.permissions).toMatchObject({
      canPublish: true,
      canSubscribe: true,
      canPublishData: true,
      canUpdateMetadata: true,
      hidden: false,
    });
  });

  it('requires entrypointFnc and names it', () => {
    const err = invalid({ entrypointFnc: undefined });
    expect(err.option).toBe('entrypointFnc');
    expect(err.message).toContain('`entrypointFnc`');
  });

  it.each([
    ['loadThreshold', { loadThreshold: 1.5 }],
    ['loadThreshold', { loadThreshold: Number.NaN }],
    ['drainTimeout', { drainTimeout: -1 }],
    ['numIdleProcesses', { numIdleProcesses: 1.5 }],
    ['maxJobs', { maxJobs: 0 }],
    ['requestTimeout', { requestTimeout: 5_000 }],
    ['jobStartBudget', { jobStartBudget: -1 }],
    ['jobStartBudget', { jobStartBudget: Infinity }],
    ['workerType', { workerType: 'rooms' as never }],
    ['requestFnc', { requestFnc: 'yes' as never }],
    ['wsUrl', { wsUrl: 'not a url' }],
    ['wsUrl', { wsUrl: 'ftp://host' }],
    ['permissions.canPublishSources', { permissions: { canPublishSources: ['webcam' as never] } }],
    ['permissions.hidden', { permissions: { hidden: 'yes' as never } }],
    ['elasticIdleProcesses', { elasticIdleProcesses: 4 as never }],
    ['elasticIdleProcesses', { elasticIdleProcesses: { min: 1 } as never }],
    ['elasticIdleProcesses', { numIdleProcesses: 2, elasticIdleProcesses: { min: 1, max: 4 } }],
    ['elasticIdleProcesses.min', { elasticIdleProcesses: { min: -1, max: 4 } }],
    ['elasticIdleProcesses.max', { elasticIdleProcesses: { min: 3, max: 2 } }],
    ['elasticIdleProcesses.max', { elasticIdleProcesses: { min: 0, max: 0 } }],
    ['elasticIdleProcesses.max', { elasticIdleProcesses: { min: 1, max: 65 } }],
    ['elasticIdleProcesses.memoryMb', { elasticIdleProcesses: { min: 1, max: 4, memoryMb: 0 } }],
  ])('rejects an invalid %s with an error naming it', (option, init) => {
    expect(invalid(init).option).toBe(option);
  });

  it.each([WorkerType.ROOM, WorkerType.PUBLISHER, WorkerType.PARTICIPANT])(
    'accepts the %s worker type',
    (workerType) => {
      expect(new WorkerOptions({ entrypointFnc, workerType }).workerType).toBe(workerType);
    },
  );

  it('accepts Infinity as a load threshold that never reports full because of load', () => {
    expect(new WorkerOptions({ entrypointFnc, loadThreshold: Infinity }).loadThreshold).toBe(
      Infinity,
    );
    expect(invalid({ loadThreshold: 2 }).option).toBe('loadThreshold');
  });

  it('honours an explicit 0', () => {
    const o = new WorkerOptions({
      entrypointFnc,
      numIdleProcesses: 0,
      loadThreshold: 0,
      drainTimeout: 0,
      port: 0,
      jobMemoryWarnMb: 0,
    });
    expect(o).toMatchObject({
      numIdleProcesses: 0,
      loadThreshold: 0,
      drainTimeout: 0,
      port: 0,
      jobMemoryWarnMb: 0,
    });
    const r = resolveOptions(o, { env, mode: 'production' });
    expect(r.numIdleProcesses).toBe(0);
  });

  it('never mutates the caller object, and freezes its own', () => {
    const init = { entrypointFnc, permissions: { canPublish: false } };
    const copy = structuredClone({ permissions: init.permissions });
    const o = new WorkerOptions(init);
    expect(init.permissions).toEqual(copy.permissions);
    expect(Object.keys(init)).toEqual(['entrypointFnc', 'permissions']);
    expect(Object.isFrozen(o)).toBe(true);
    expect(o.permissions).toBeInstanceOf(WorkerPermissions);
    const r = resolveOptions(o, { env });
    expect(Object.isFrozen(r)).toBe(true);
    expect(o.wsUrl).toBeUndefined();
  });
});

describe('resolveOptions', () => {
  it('reads credentials from the environment', () => {
    const r = resolveOptions(new WorkerOptions({ entrypointFnc }), { env });
    expect(r).toMatchObject({ wsUrl: env.LIVEKIT_URL, apiKey: 'envkey', apiSecret: 'envsecret' });
  });

  it('lets flags win over options, and options over the environment', () => {
    const o = new WorkerOptions({ entrypointFnc, wsUrl: 'ws://opts.test', apiKey: 'optkey' });
    expect(resolveOptions(o, { env })).toMatchObject({ wsUrl: 'ws://opts.test', apiKey: 'optkey' });
    const r = resolveOptions(o, { env, overrides: { wsUrl: 'wss://flag.test', drainTimeout: 5 } });
    expect(r).toMatchObject({ wsUrl: 'wss://flag.test', apiKey: 'optkey', drainTimeout: 5 });
  });

  it('lets --max-jobs override maxJobs (Infinity: no cap) and names it when invalid', () => {
    const o = new WorkerOptions({ entrypointFnc, maxJobs: 4 });
    expect(resolveOptions(o, { env }).maxJobs).toBe(4);
    expect(resolveOptions(o, { env, overrides: { maxJobs: 2 } }).maxJobs).toBe(2);
    expect(resolveOptions(o, { env, overrides: { maxJobs: Infinity } }).maxJobs).toBe(Infinity);
    expect(() => resolveOptions(o, { env, overrides: { maxJobs: 0 } })).toThrow(/`maxJobs`/);
  });

  it("checks every override with the option's own limits", () => {
    const o = new WorkerOptions({ entrypointFnc });
    const bad = (overrides: ResolveSources['overrides']) => () =>
      resolveOptions(o, { env, overrides });
    expect(bad({ numIdleProcesses: 65 })).toThrow(/`numIdleProcesses`.*\[0, 64\]/);
    expect(bad({ port: 70_000 })).toThrow(/`port`.*\[0, 65535\]/);
    expect(bad({ loadThreshold: 1.5 })).toThrow(/`loadThreshold`/);
    expect(bad({ drainTimeout: -1 })).toThrow(/`drainTimeout`/);
    expect(bad({ wsUrl: 'ftp://host' })).toThrow(/`wsUrl`/);
    const url = new URL('file:///srv/agent.js');
    expect(resolveOptions(o, { env, overrides: { agentModule: url } }).agentModule.href).toBe(
      url.href,
    );
    // A path, relative or absolute, is the same module as a file: URL, always.
    expect(
      resolveOptions(o, { env, overrides: { agentModule: '/srv/agent.js' } }).agentModule.href,
    ).toBe(url.href);
    expect(
      resolveOptions(o, { env, overrides: { agentModule: 'agent.js' } }).agentModule.href,
    ).toBe(new URL('agent.js', `file://${process.cwd()}/`).href);
  });

  it('never lets an absent override replace an option', () => {
    const o = new WorkerOptions({ entrypointFnc, port: 9000, maxJobs: 3 });
    const r = resolveOptions(o, { env, overrides: { port: undefined, maxJobs: undefined } });
    expect(r).toMatchObject({ port: 9000, maxJobs: 3 });
  });

  it('names the missing credential', () => {
    const o = new WorkerOptions({ entrypointFnc });
    expect(() => resolveOptions(o, { env: {} })).toThrow(/`wsUrl`.*LIVEKIT_URL/);
    expect(() => resolveOptions(o, { env: { LIVEKIT_URL: 'ws://x' } })).toThrow(/`apiKey`/);
    expect(() =>
      resolveOptions(o, { env: { LIVEKIT_URL: 'ws://x', LIVEKIT_API_KEY: 'k' } }),
    ).toThrow(/`apiSecret`/);
  });

  it('registers without a name (automatic dispatch) when neither the option nor the environment names the agent', () => {
    expect(resolveOptions(new WorkerOptions({ entrypointFnc }), { env }).agentName).toBe('');
  });

  it('takes the agent name from LIVEKIT_AGENT_NAME when the option is not given', () => {
    const o = new WorkerOptions({ entrypointFnc });
    expect(resolveOptions(o, { env: { ...env, LIVEKIT_AGENT_NAME: 'from-env' } }).agentName).toBe(
      'from-env',
    );
  });

  it('lets the agentName option beat LIVEKIT_AGENT_NAME, an explicit empty name included', () => {
    const named = new WorkerOptions({ entrypointFnc, agentName: 'support' });
    const unnamed = new WorkerOptions({ entrypointFnc, agentName: '' });
    const withEnv = { ...env, LIVEKIT_AGENT_NAME: 'from-env' };
    expect(resolveOptions(named, { env: withEnv }).agentName).toBe('support');
    expect(resolveOptions(unnamed, { env: withEnv }).agentName).toBe('');
  });

  it('lets LIVEKIT_AGENT_NAME_OVERRIDE beat the option and LIVEKIT_AGENT_NAME', () => {
    const o = new WorkerOptions({ entrypointFnc, agentName: 'support' });
    const r = resolveOptions(o, {
      env: { ...env, LIVEKIT_AGENT_NAME: 'plain', LIVEKIT_AGENT_NAME_OVERRIDE: 'override' },
    });
    expect(r.agentName).toBe('override');
    expect(o.agentName).toBe('support');
  });

  it('treats an empty LIVEKIT_AGENT_NAME_OVERRIDE or LIVEKIT_AGENT_NAME as unset', () => {
    const o = new WorkerOptions({ entrypointFnc, agentName: 'support' });
    expect(resolveOptions(o, { env: { ...env, LIVEKIT_AGENT_NAME_OVERRIDE: '' } }).agentName).toBe(
      'support',
    );
    const bare = new WorkerOptions({ entrypointFnc });
    expect(resolveOptions(bare, { env: { ...env, LIVEKIT_AGENT_NAME: '' } }).agentName).toBe('');
  });

  it('keeps an elastic pool with its memory default, unless --num-idle-processes fixes the pool', () => {
    const o = new WorkerOptions({ entrypointFnc, elasticIdleProcesses: { min: 1, max: 6 } });
    expect(o.elasticIdleProcesses).toEqual({ min: 1, max: 6, memoryMb: 1024 });
    expect(resolveOptions(o, { env }).elasticIdleProcesses).toEqual(o.elasticIdleProcesses);
    const fixed = resolveOptions(o, { env, overrides: { numIdleProcesses: 3 } });
    expect(fixed.elasticIdleProcesses).toBeUndefined();
    expect(fixed.numIdleProcesses).toBe(3);
  });

  it('keeps one warm process in development and up to four in production', () => {
    const o = new WorkerOptions({ entrypointFnc });
    expect(resolveOptions(o, { env, mode: 'development' }).numIdleProcesses).toBe(1);
    const prod = resolveOptions(o, { env, mode: 'production' }).numIdleProcesses;
    expect(prod).toBeGreaterThanOrEqual(1);
    expect(prod).toBeLessThanOrEqual(4);
  });
});

describe('resolveServerCredentials (workers and agent dispatch)', () => {
  it('takes the given values over the environment, and registers the secret for redaction', () => {
    const secret = 'flag-secret-for-redaction';
    const c = resolveServerCredentials({ wsUrl: 'wss://flag.test', apiSecret: secret }, env);
    expect(c).toEqual({ wsUrl: 'wss://flag.test', apiKey: 'envkey', apiSecret: secret });
    expect(redact(`token ${secret}`)).toBe('token [redacted]');
  });

  it('checks the URL and names a missing credential', () => {
    expect(() => resolveServerCredentials({}, {})).toThrow(/`wsUrl`.*LIVEKIT_URL/);
    expect(() => resolveServerCredentials({ wsUrl: 'ftp://x' }, env)).toThrow(/`wsUrl`/);
    expect(() => resolveServerCredentials({}, { ...env, LIVEKIT_API_KEY: '' })).toThrow(/`apiKey`/);
  });
});

describe('eventLoopStallThreshold', () => {
  const entrypointFnc = async () => {};
  it('defaults to 500 ms and accepts 0 (watch off)', () => {
    expect(new WorkerOptions({ entrypointFnc }).eventLoopStallThreshold).toBe(500);
    expect(
      new WorkerOptions({ entrypointFnc, eventLoopStallThreshold: 0 }).eventLoopStallThreshold,
    ).toBe(0);
  });
  it('names the option when the value is bad', () => {
    expect(() => new WorkerOptions({ entrypointFnc, eventLoopStallThreshold: -1 })).toThrow(
      /eventLoopStallThreshold/,
    );
    expect(() => new WorkerOptions({ entrypointFnc, eventLoopStallThreshold: 61_000 })).toThrow(
      /eventLoopStallThreshold/,
    );
  });
});

describe('tracerProvider', () => {
  const entrypointFnc = async () => {};
  it('is kept as given, and absent by default', () => {
    const provider = { getTracer: () => ({}) } as unknown as WorkerOptionsInit['tracerProvider'];
    expect(new WorkerOptions({ entrypointFnc, tracerProvider: provider }).tracerProvider).toBe(
      provider,
    );
    expect(new WorkerOptions({ entrypointFnc }).tracerProvider).toBeUndefined();
  });
  it('names the option when it is not a TracerProvider', () => {
    for (const bad of [null, 'otlp', {}, { getTracer: 'no' }]) {
      expect(
        () =>
          new WorkerOptions({
            entrypointFnc,
            tracerProvider: bad as unknown as WorkerOptionsInit['tracerProvider'],
          }),
      ).toThrow(/tracerProvider.*TracerProvider/);
    }
  });
});

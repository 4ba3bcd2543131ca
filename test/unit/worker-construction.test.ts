/**
 * A `Worker` resolves its options once, when it is built: a bad option or a missing credential
 * throws there, naming the option, and what it resolved (environment included) is what it runs
 * with — nothing is read again later.
 */
import { describe, expect, it } from 'vitest';
import { InvalidOptionError, Worker, WorkerOptions } from '../../src/index.ts';

const entrypointFnc = () => undefined;
const env = {
  LIVEKIT_URL: 'ws://env.test:7880',
  LIVEKIT_API_KEY: 'envkey',
  LIVEKIT_API_SECRET: 'envsecret',
  LIVEKIT_AGENT_DEPLOYMENT: 'staging',
};

describe('Worker construction', () => {
  it('throws at construction when a credential is missing, naming it', () => {
    let err: unknown;
    try {
      new Worker(new WorkerOptions({ entrypointFnc }), { env: { LIVEKIT_URL: env.LIVEKIT_URL } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidOptionError);
    expect((err as InvalidOptionError).option).toBe('apiKey');
  });

  it('throws at construction for a bad CLI override', () => {
    expect(() => new Worker({ entrypointFnc }, { env, overrides: { loadThreshold: 2 } })).toThrow(
      InvalidOptionError,
    );
  });

  it('holds the resolved options from the start, the deployment from the environment', () => {
    const worker = new Worker(
      { entrypointFnc, agentName: 'support' },
      { env, overrides: { port: 0 }, handleSignals: false },
    );
    expect(worker.resolvedOptions).toMatchObject({
      wsUrl: env.LIVEKIT_URL,
      apiKey: 'envkey',
      agentName: 'support',
      port: 0,
      deployment: 'staging',
    });
    expect(worker.status).toBe('connecting');
  });
});

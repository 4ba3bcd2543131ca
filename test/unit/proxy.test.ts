/** Which proxy the server connection takes, from the `httpProxy` option and the environment. */
import { describe, expect, it } from 'vitest';
import { InvalidOptionError, WorkerOptions } from '../../src/index.ts';
import { resolveOptions } from '../../src/options/resolve.ts';
import {
  bypassesProxy,
  proxyEnvForJobs,
  proxyFor,
  redactProxyUrl,
} from '../../src/options/proxy.ts';

const wss = new URL('wss://lk.example.com/agent');
const ws = new URL('ws://127.0.0.1:7880/agent');
const entrypointFnc = () => undefined;
const creds = { LIVEKIT_API_KEY: 'k', LIVEKIT_API_SECRET: 's' };

function optionError(fn: () => unknown): InvalidOptionError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidOptionError);
    return err as InvalidOptionError;
  }
  throw new Error('expected an InvalidOptionError');
}

describe('proxyFor', () => {
  it('connects directly when neither the option nor the environment names a proxy', () => {
    expect(proxyFor(wss, undefined, {})).toBeUndefined();
  });

  it('takes HTTPS_PROXY for wss:// and HTTP_PROXY for ws://, upper case before lower case', () => {
    const env = {
      HTTPS_PROXY: 'http://secure:1',
      https_proxy: 'http://lower-secure:1',
      HTTP_PROXY: 'http://plain:1',
      http_proxy: 'http://lower-plain:1',
    };
    expect(proxyFor(wss, undefined, env)).toEqual({
      url: 'http://secure:1',
      source: 'HTTPS_PROXY',
    });
    expect(proxyFor(ws, undefined, env)).toEqual({ url: 'http://plain:1', source: 'HTTP_PROXY' });
    expect(proxyFor(wss, undefined, { https_proxy: 'http://lower:1' })?.source).toBe('https_proxy');
    expect(proxyFor(ws, undefined, { http_proxy: 'http://lower:1' })?.source).toBe('http_proxy');
    // As in rtc-node and curl, HTTP_PROXY does not apply to secure connections.
    expect(proxyFor(wss, undefined, { HTTP_PROXY: 'http://plain:1' })).toBeUndefined();
  });

  it('lets the httpProxy option beat the environment, and null turn the proxy off', () => {
    const env = { HTTPS_PROXY: 'http://from-env:1', HTTP_PROXY: 'http://from-env:1' };
    expect(proxyFor(wss, 'http://opt:3128', env)).toEqual({
      url: 'http://opt:3128',
      source: 'httpProxy',
    });
    expect(proxyFor(ws, 'http://opt:3128', env)?.source).toBe('httpProxy');
    expect(proxyFor(wss, null, env)).toBeUndefined();
  });

  it('goes direct to hosts NO_PROXY names, for the option and the environment alike', () => {
    const env = { HTTP_PROXY: 'http://p:1', NO_PROXY: 'localhost, 127.0.0.1' };
    expect(proxyFor(ws, undefined, env)).toBeUndefined();
    expect(proxyFor(ws, 'http://opt:1', env)).toBeUndefined();
    expect(proxyFor(wss, 'http://opt:1', env)?.source).toBe('httpProxy');
  });

  it('names the variable or option holding an invalid proxy URL', () => {
    expect(optionError(() => proxyFor(wss, undefined, { HTTPS_PROXY: 'nope' })).option).toBe(
      'HTTPS_PROXY',
    );
    expect(optionError(() => proxyFor(ws, undefined, { http_proxy: 'socks5://p:1' })).option).toBe(
      'http_proxy',
    );
    expect(optionError(() => proxyFor(ws, 'ftp://p', {})).option).toBe('httpProxy');
  });
});

describe('NO_PROXY', () => {
  it.each([
    ['*', 'wss://lk.example.com', true],
    ['example.com', 'wss://lk.example.com', true],
    ['.example.com', 'wss://lk.example.com', true],
    ['*.example.com', 'wss://lk.example.com', true],
    ['EXAMPLE.COM', 'wss://lk.example.com', true],
    ['lk.example.com:443', 'wss://lk.example.com', true],
    ['lk.example.com:8443', 'wss://lk.example.com', false],
    ['ample.com', 'wss://lk.example.com', false],
    ['other.org example.com', 'wss://lk.example.com', true],
    ['127.0.0.1:7880', 'ws://127.0.0.1:7880', true],
    ['[::1]', 'ws://[::1]:7880', true],
    ['::1', 'ws://[::1]:7880', true],
    ['10.0.0.0/8', 'ws://10.1.2.3', false],
    ['', 'ws://127.0.0.1', false],
  ])('NO_PROXY=%j for %s: direct = %s', (noProxy, target, direct) => {
    expect(bypassesProxy(new URL(target), noProxy)).toBe(direct);
  });
});

describe('proxy settings', () => {
  it('never shows proxy credentials in messages', () => {
    expect(redactProxyUrl('http://user:s3cret@proxy.corp:3128/')).toBe('http://proxy.corp:3128');
    const err = optionError(() => proxyFor(ws, 'http://user:s3cret@bad host', {}));
    expect(err.message).not.toContain('s3cret');
  });

  it('hands job processes the option, removes the variables for null, and changes nothing by default', () => {
    expect(proxyEnvForJobs('http://p:1')).toEqual({
      HTTPS_PROXY: 'http://p:1',
      https_proxy: 'http://p:1',
      HTTP_PROXY: 'http://p:1',
      http_proxy: 'http://p:1',
    });
    const none = proxyEnvForJobs(null);
    expect(Object.keys(none).sort()).toEqual([
      'HTTPS_PROXY',
      'HTTP_PROXY',
      'http_proxy',
      'https_proxy',
    ]);
    expect(Object.values(none).every((v) => v === undefined)).toBe(true);
    expect(proxyEnvForJobs(undefined)).toEqual({});
  });

  it('validates the httpProxy option at construction and resolves it with the server URL', () => {
    expect(optionError(() => new WorkerOptions({ entrypointFnc, httpProxy: 'x' })).option).toBe(
      'httpProxy',
    );
    expect(
      optionError(() => new WorkerOptions({ entrypointFnc, httpProxy: 3128 as never })).option,
    ).toBe('httpProxy');
    const o = new WorkerOptions({ entrypointFnc, httpProxy: 'http://p:3128' });
    expect(
      resolveOptions(o, { env: { ...creds, LIVEKIT_URL: 'wss://lk.example.com' } }).proxy,
    ).toEqual({ url: 'http://p:3128', source: 'httpProxy' });
    const fromEnv = resolveOptions(new WorkerOptions({ entrypointFnc }), {
      env: { ...creds, LIVEKIT_URL: 'https://lk.example.com', HTTPS_PROXY: 'http://e:1' },
    });
    expect(fromEnv.proxy).toEqual({ url: 'http://e:1', source: 'HTTPS_PROXY' });
  });
});

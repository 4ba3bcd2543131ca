/**
 * The checks option values pass, each throwing an `InvalidOptionError` that names the option.
 * Written once and used wherever a value arrives: an agent's `WorkerOptions`, the command line's
 * overrides of them (`resolveOptions`) and a group's `WorkerGroupOptions`, so a limit is stated
 * in one place.
 */
import { InvalidOptionError } from '../errors.ts';

/** The limits an agent and a group share: a job cap, a load threshold, the health server. */
export const sharedLimits = {
  /** `undefined` or `Infinity`: no cap. */
  maxJobs(name: string, value: number | undefined): number {
    return value === undefined || value === Infinity ? Infinity : int(name, value, 0, 1, 100_000);
  },
  loadThreshold(name: string, value: number | undefined): number {
    return threshold(name, value, 0.7);
  },
  host(name: string, value: string | undefined): string {
    return str(name, value) ?? '0.0.0.0';
  },
  port(name: string, value: number | undefined): number {
    return int(name, value, 8081, 0, 65535);
  },
};

export function checkUrl(name: string, value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch (cause) {
    throw new InvalidOptionError(name, `not a URL: ${JSON.stringify(value)}`, { cause });
  }
  if (!['ws:', 'wss:', 'http:', 'https:'].includes(url.protocol)) {
    throw new InvalidOptionError(
      name,
      `expected ws://, wss://, http:// or https://, got ${url.protocol}//`,
    );
  }
}

/** A load threshold: a number in [0, 1], or `Infinity` to never be full because of load. */
function threshold(name: string, value: number | undefined, dflt: number): number {
  if (value === Infinity) return Infinity;
  return num(name, value, dflt, 0, 1, 'a number in [0, 1], or Infinity');
}

export function fn<T>(name: string, value: T | undefined, required: boolean): T | undefined {
  if (value === undefined || value === null) {
    if (required) throw new InvalidOptionError(name, 'is required (a function)');
    return undefined;
  }
  if (typeof value !== 'function') throw new InvalidOptionError(name, 'must be a function');
  return value;
}

export function bool(name: string, value: boolean | undefined, dflt: boolean): boolean {
  if (value === undefined) return dflt;
  if (typeof value !== 'boolean') throw new InvalidOptionError(name, 'must be true or false');
  return value;
}

export function str(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InvalidOptionError(name, 'must be a string');
  return value;
}

export function num(
  name: string,
  value: number | undefined,
  dflt: number,
  min: number,
  max: number,
  expected: string,
): number {
  if (value === undefined) return dflt;
  if (typeof value !== 'number' || Number.isNaN(value) || value < min || value > max) {
    throw new InvalidOptionError(name, `expected ${expected}, got ${String(value)}`);
  }
  return value;
}

export function int(
  name: string,
  value: number | undefined,
  dflt: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return dflt;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(
      name,
      `expected an integer in [${min}, ${max}], got ${String(value)}`,
    );
  }
  return value;
}

export function ms(name: string, value: number | undefined, dflt: number): number {
  return num(name, value, dflt, 0, 2 ** 31 - 1, 'a duration in milliseconds (≥ 0)');
}

/**
 * Checks a proxy URL: `http://[user:password@]host[:port]` or `https://…`. Throws an
 * `InvalidOptionError` naming `name` (the option or the environment variable).
 */
export function parseProxyUrl(name: string, value: string): URL {
  const url = urlWithProtocol(name, value, ['http:', 'https:'], 'an http:// or https:// proxy URL');
  if (!url.hostname) throw new InvalidOptionError(name, 'the proxy URL has no host');
  return url;
}

/** Drops anything between `//` and `@` in a string that may not parse as a URL. */
export function redactUrlCredentials(value: string): string {
  return value.replace(/\/\/[^/@]*@/, '//[redacted]@');
}

/** A `redis://` or `rediss://` URL (the job journal's store for a fleet). */
export function checkRedisUrl(name: string, value: string): void {
  urlWithProtocol(name, value, ['redis:', 'rediss:'], 'a redis:// or rediss:// URL');
}

/** `value` parsed as a URL of one of `protocols`, or an error naming `name` (credentials hidden). */
function urlWithProtocol(
  name: string,
  value: string,
  protocols: readonly string[],
  expected: string,
): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch (cause) {
    const shown = JSON.stringify(redactUrlCredentials(value));
    throw new InvalidOptionError(name, `not a URL: ${shown}`, { cause });
  }
  if (!protocols.includes(url.protocol)) {
    throw new InvalidOptionError(name, `expected ${expected}, got ${url.protocol}//`);
  }
  return url;
}

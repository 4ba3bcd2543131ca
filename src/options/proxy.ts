/**
 * Which HTTP(S) proxy the worker's connection to the LiveKit server goes through: the
 * `httpProxy` option, else the environment (`HTTPS_PROXY` for `wss://`, `HTTP_PROXY` for
 * `ws://`, upper case before lower case, as `@livekit/rtc-node` reads them in job processes),
 * unless `NO_PROXY` names the server's host. Pure: the tunnel itself is `https-proxy-agent`'s
 * (see `src/protocol/server-link.ts`). The worker's only: job processes get the proxy through
 * their environment (`proxyEnvForJobs`).
 */
import { parseProxyUrl, redactUrlCredentials } from './checks.ts';

/** Where the proxy setting came from, for messages: the option or the variable's name. */
export type ProxySource = 'httpProxy' | 'HTTPS_PROXY' | 'https_proxy' | 'HTTP_PROXY' | 'http_proxy';

/** The proxy a connection goes through. */
export interface ResolvedProxy {
  /** The proxy's URL, credentials included (never log it: use `redactProxyUrl`). */
  url: string;
  source: ProxySource;
}

/**
 * The proxy for a connection to `target` (a `ws:`/`wss:`/`http:`/`https:` URL), or `undefined`
 * for a direct connection. `option` is the `httpProxy` option: a URL, `null` (never a proxy,
 * whatever the environment says) or `undefined` (the environment decides). `NO_PROXY` applies
 * to both the option and the environment.
 */
export function proxyFor(
  target: URL,
  option: string | null | undefined,
  env: NodeJS.ProcessEnv,
): ResolvedProxy | undefined {
  if (option === null) return undefined;
  let chosen: ResolvedProxy | undefined;
  if (option !== undefined) {
    parseProxyUrl('httpProxy', option);
    chosen = { url: option, source: 'httpProxy' };
  } else {
    const secure = target.protocol === 'wss:' || target.protocol === 'https:';
    const names: readonly ProxySource[] = secure
      ? ['HTTPS_PROXY', 'https_proxy']
      : ['HTTP_PROXY', 'http_proxy'];
    for (const name of names) {
      const value = env[name];
      if (value === undefined || value === '') continue;
      parseProxyUrl(name, value);
      chosen = { url: value, source: name };
      break;
    }
  }
  if (!chosen) return undefined;
  const noProxy = env.NO_PROXY ?? env.no_proxy;
  return bypassesProxy(target, noProxy) ? undefined : chosen;
}

/**
 * Whether `NO_PROXY` sends `target` direct. Entries are separated by commas or spaces: `*`
 * (everything), a host name (that host and its subdomains; a leading `.` or `*.` means the
 * same), or an IP address, each optionally with `:port`. Case-insensitive. CIDR ranges are
 * not supported (an entry like `10.0.0.0/8` matches nothing).
 */
export function bypassesProxy(target: URL, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = target.port || defaultPort(target.protocol);
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    const { name, port: entryPort } = splitHostPort(entry);
    if (entryPort !== undefined && entryPort !== port) continue;
    const bare = name.replace(/^\*?\./, '');
    if (!bare) continue;
    if (host === bare || host.endsWith(`.${bare}`)) return true;
  }
  return false;
}

/** `http://user:secret@host:3128/` → `http://host:3128` (for messages and logs). */
export function redactProxyUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return redactUrlCredentials(url);
  }
}

/**
 * The environment a job process gets for the proxy: with the `httpProxy` option set, the
 * variables every HTTP stack in the child reads (rtc-node's signalling WebSocket among them)
 * name that proxy; with `null`, they are removed; otherwise the child inherits the worker's
 * environment unchanged (`{}`). `undefined` values delete a variable from the child's
 * environment.
 */
export function proxyEnvForJobs(
  option: string | null | undefined,
): Record<string, string | undefined> {
  if (option === undefined) return {};
  const value = option ?? undefined;
  const env: Record<string, string | undefined> = {
    HTTPS_PROXY: value,
    https_proxy: value,
    HTTP_PROXY: value,
    http_proxy: value,
  };
  return env;
}

function splitHostPort(entry: string): { name: string; port: string | undefined } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return { name: bracketed[1] ?? '', port: bracketed[2] };
  // More than one colon and no brackets: a bare IPv6 address, no port.
  if ((entry.match(/:/g) ?? []).length > 1) return { name: entry, port: undefined };
  const [name = '', port] = entry.split(':');
  return { name, port };
}

function defaultPort(protocol: string): string {
  return protocol === 'wss:' || protocol === 'https:' ? '443' : '80';
}

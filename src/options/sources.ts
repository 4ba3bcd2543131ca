/**
 * Where option values come from besides the options object: the environment (the server and its
 * credentials, the agent name, the deployment) and the main script (the agent module). Used by
 * `resolveOptions` and by `agent dispatch`, so both find the server the same way.
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import { homedir, tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvalidOptionError } from '../errors.ts';
import { registerSecret } from '../log/logger.ts';
import { checkRedisUrl, checkUrl } from './checks.ts';

/** The server a worker (or `agent dispatch`) talks to, and the credentials it signs with. */
export interface ServerCredentials {
  readonly wsUrl: string;
  readonly apiKey: string;
  readonly apiSecret: string;
}

/**
 * The given values (flags, else options), else `LIVEKIT_URL`, `LIVEKIT_API_KEY` and
 * `LIVEKIT_API_SECRET`; all three are required. The secret is registered for log redaction here,
 * the one place it is looked up, before anything can fail.
 */
export function resolveServerCredentials(
  given: Partial<ServerCredentials>,
  env: NodeJS.ProcessEnv,
): ServerCredentials {
  const wsUrl = given.wsUrl ?? nonEmpty(env.LIVEKIT_URL);
  const apiKey = given.apiKey ?? nonEmpty(env.LIVEKIT_API_KEY);
  const apiSecret = given.apiSecret ?? nonEmpty(env.LIVEKIT_API_SECRET);
  registerSecret(apiSecret);
  if (!wsUrl) throw new InvalidOptionError('wsUrl', 'required: pass --url or set LIVEKIT_URL');
  checkUrl('wsUrl', wsUrl);
  if (!apiKey)
    throw new InvalidOptionError('apiKey', 'required: pass --api-key or set LIVEKIT_API_KEY');
  if (!apiSecret) {
    throw new InvalidOptionError(
      'apiSecret',
      'required: pass --api-secret or set LIVEKIT_API_SECRET',
    );
  }
  return { wsUrl, apiKey, apiSecret };
}

/**
 * The name the worker registers with, as LiveKit's frameworks pick it: the override variable
 * (set by a deployment, beats the code), then the option (an explicit `''` included), then the
 * plain variable, then `''`. An empty variable counts as unset.
 */
export function resolveAgentName(option: string | undefined, env: NodeJS.ProcessEnv): string {
  return (
    nonEmpty(env.LIVEKIT_AGENT_NAME_OVERRIDE) ?? option ?? nonEmpty(env.LIVEKIT_AGENT_NAME) ?? ''
  );
}

/** `LIVEKIT_AGENT_DEPLOYMENT`, sent with the registration (`''` when unset). */
export function resolveDeployment(env: NodeJS.ProcessEnv): string {
  return env.LIVEKIT_AGENT_DEPLOYMENT ?? '';
}

/**
 * The module job processes import, as a `file:` URL: the option (a path, relative to the current
 * directory, or a `file:` URL), else the main script.
 */
export function resolveAgentModule(mod: string | URL | undefined): URL {
  const m = mod ?? process.argv[1];
  if (m === undefined || m === '') {
    throw new InvalidOptionError(
      'agentModule',
      'cannot tell which file defines the agent; pass agentModule',
    );
  }
  if (m instanceof URL) return m;
  return m.startsWith('file:') ? new URL(m) : pathToFileURL(resolve(m));
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** Where the worker's state directory is, or why there is none. */
export type StateDirResolution = { dir: string } | { dir: undefined; problem: string };

/**
 * The state directory: the option, else `AGENTSTATE_STATE_DIR`, else the first writable of
 * `$XDG_STATE_HOME/agentstate`, `~/.local/state/agentstate` and `<tmpdir>/agentstate-<user>`.
 * A directory given (option or variable) is the only one tried: a deployment that names one
 * means it. Created if missing.
 */
export function resolveStateDir(
  option: string | undefined,
  env: NodeJS.ProcessEnv,
): StateDirResolution {
  const given = option ?? nonEmpty(env.AGENTSTATE_STATE_DIR);
  const candidates = given
    ? [given]
    : [
        ...(nonEmpty(env.XDG_STATE_HOME) ? [join(env.XDG_STATE_HOME!, 'agentstate')] : []),
        ...homeState(),
        join(tmpdir(), `agentstate-${userName()}`),
      ];
  const problems: string[] = [];
  for (const dir of candidates) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      accessSync(dir, constants.W_OK);
      return { dir };
    } catch (err) {
      problems.push(`${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  return { dir: undefined, problem: `no writable state directory (${problems.join('; ')})` };
}

function homeState(): string[] {
  try {
    const home = homedir();
    return home ? [join(home, '.local', 'state', 'agentstate')] : [];
  } catch {
    return [];
  }
}

function userName(): string {
  try {
    return userInfo().username.replace(/[^\w.-]+/g, '_') || String(process.getuid?.() ?? 'user');
  } catch {
    return String(process.getuid?.() ?? 'user');
  }
}

/** The option, else `AGENTSTATE_REDIS_URL` (checked like the option), else none. */
export function resolveRedisUrl(
  option: string | undefined,
  env: NodeJS.ProcessEnv,
): string | undefined {
  if (option !== undefined) return option;
  const v = nonEmpty(env.AGENTSTATE_REDIS_URL);
  if (v !== undefined) checkRedisUrl('AGENTSTATE_REDIS_URL', v);
  return v;
}

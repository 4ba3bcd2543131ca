/**
 * JWTs as livekit-server v1.13.5 handles them on the agent path: verifying the worker's token
 * (HS256 only, issuer = API key, 1 min leeway, `exp` optional at that protocol version) and
 * signing job tokens like `agent.BuildAgentToken`.
 *
 * Both are written on node:crypto rather than livekit-server-sdk: its `TokenVerifier` requires
 * `exp` and its `AccessToken` refuses a join token with an empty identity, while the server
 * accepts the former and issues the latter. Faithfulness wins here.
 */
import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import type { WorkerPermissionsSnapshot } from './types.ts';

const BASE57 = '23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** A LiveKit-style id: prefix + 12 characters of the shortuuid base-57 alphabet (`AW_…`, `AJ_…`). */
export function guid(prefix: string): string {
  let id = prefix;
  for (let i = 0; i < 12; i++) id += BASE57[randomInt(BASE57.length)];
  return id;
}

/** Claims of a worker token the emulator looks at. */
export interface WorkerClaims {
  iss?: unknown;
  nbf?: unknown;
  exp?: unknown;
  video?: { agent?: unknown } | null;
}

export type VerifyResult =
  { ok: true; apiKey: string; claims: WorkerClaims } | { ok: false; reason: string };

/** The server's `nbf`/`exp` leeway (go-jose `DefaultLeeway`). */
const LEEWAY_S = 60;

function b64urlJson(part: string): unknown {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

/** Verifies a worker's JWT against the known keys, as the server's auth middleware does. */
export function verifyWorkerToken(token: string, keys: Record<string, string>): VerifyResult {
  const parts = token.split('.');
  const [h, p, s] = parts;
  if (parts.length !== 3 || h === undefined || p === undefined || s === undefined) {
    return { ok: false, reason: 'malformed token' };
  }
  let header: unknown;
  let claims: WorkerClaims;
  try {
    header = b64urlJson(h);
    claims = b64urlJson(p) as WorkerClaims;
  } catch {
    return { ok: false, reason: 'malformed token' };
  }
  if (
    typeof header !== 'object' ||
    header === null ||
    (header as { alg?: unknown }).alg !== 'HS256'
  ) {
    return { ok: false, reason: 'only HS256 tokens are accepted' };
  }
  if (typeof claims !== 'object' || claims === null)
    return { ok: false, reason: 'malformed token' };
  const apiKey = claims.iss;
  if (typeof apiKey !== 'string' || !Object.hasOwn(keys, apiKey)) {
    return { ok: false, reason: 'unknown API key' };
  }
  const secret = keys[apiKey] ?? '';
  const expected = createHmac('sha256', secret).update(`${h}.${p}`).digest();
  const given = Buffer.from(s, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'invalid signature' };
  }
  const now = Date.now() / 1000;
  if (typeof claims.nbf === 'number' && now + LEEWAY_S < claims.nbf) {
    return { ok: false, reason: 'token not valid yet' };
  }
  if (typeof claims.exp === 'number' && now - LEEWAY_S > claims.exp) {
    return { ok: false, reason: 'token expired' };
  }
  return { ok: true, apiKey, claims };
}

/** What the job token is built from (the worker's accept answer and registration). */
export interface JobTokenInput {
  apiKey: string;
  apiSecret: string;
  room: string;
  identity: string;
  name: string;
  metadata: string;
  attributes: Record<string, string>;
  agentName: string;
  permissions: WorkerPermissionsSnapshot;
}

/** A job token's lifetime (`BuildAgentToken` uses one hour). */
export const JOB_TOKEN_TTL_S = 3600;

/**
 * Signs the token of a `JobAssignment` with the claim layout of Go's `auth.AccessToken`:
 * explicit permission booleans, `hidden` only when set, empty strings omitted, and the
 * attribute `lk.agent_name` always set to the worker's agent name.
 */
export function signJobToken(input: JobTokenInput): string {
  const now = Math.floor(Date.now() / 1000);
  const p = input.permissions;
  const video: Record<string, unknown> = {
    roomJoin: true,
    room: input.room,
    canPublish: p.canPublish,
    canSubscribe: p.canSubscribe,
    canPublishData: p.canPublishData,
    canUpdateOwnMetadata: p.canUpdateMetadata,
    canSubscribeMetrics: p.canSubscribeMetrics,
    agent: true,
  };
  if (p.hidden) video['hidden'] = true;
  const claims: Record<string, unknown> = {
    iss: input.apiKey,
    nbf: now,
    exp: now + JOB_TOKEN_TTL_S,
    kind: 'agent',
    video,
    attributes: { ...input.attributes, 'lk.agent_name': input.agentName },
  };
  if (input.identity !== '') claims['sub'] = input.identity;
  if (input.name !== '') claims['name'] = input.name;
  if (input.metadata !== '') claims['metadata'] = input.metadata;
  const enc = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const body = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(claims)}`;
  const sig = createHmac('sha256', input.apiSecret).update(body).digest('base64url');
  return `${body}.${sig}`;
}

/**
 * The HTTP side of `/agent`, in the order livekit-server v1.13.5 applies it: the auth
 * middleware (a token that is present must be valid → else 401), the exact `/agent` route
 * (else 404), the upgrade check (else 404), then the `video.agent` grant (else 401).
 */
import type { IncomingMessage } from 'node:http';
import { verifyWorkerToken } from './tokens.ts';

export type UpgradeDecision =
  | { ok: true; apiKey: string; protocol: number }
  | { ok: false; status: 401 | 404; path: string; reason: string };

/** Decides what to do with a request for the agent endpoint. */
export function decideAgentRequest(
  req: IncomingMessage,
  keys: Record<string, string>,
  isUpgrade: boolean,
): UpgradeDecision {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  // The server's RemoveDoubleSlashes middleware runs before routing.
  const path = url.pathname.replace(/\/{2,}/g, '/');
  const refuse = (status: 401 | 404, reason: string): UpgradeDecision => ({
    ok: false,
    status,
    path,
    reason,
  });

  let token: string | undefined;
  const header = req.headers.authorization;
  if (header !== undefined && header !== '') {
    if (!header.startsWith('Bearer ')) return refuse(401, 'authorization header is not Bearer');
    token = header.slice('Bearer '.length);
  } else {
    token = url.searchParams.get('access_token') ?? undefined;
  }
  let claims: { video?: { agent?: unknown } | null } | undefined;
  let apiKey = '';
  if (token !== undefined && token !== '') {
    const v = verifyWorkerToken(token, keys);
    if (!v.ok) return refuse(401, v.reason);
    claims = v.claims;
    apiKey = v.apiKey;
  }

  if (path !== '/agent') return refuse(404, 'not found');
  if (!isUpgrade) return refuse(404, 'not a websocket upgrade');
  if (claims?.video?.agent !== true) return refuse(401, 'permission denied: no agent grant');

  // `strconv.Atoi(r.FormValue("protocol"))`: anything but an integer keeps the default 1.
  const raw = url.searchParams.get('protocol') ?? '';
  const protocol = /^[+-]?\d+$/.test(raw) ? Number.parseInt(raw, 10) : 1;
  return { ok: true, apiKey, protocol };
}

const STATUS_TEXT = { 401: 'Unauthorized', 404: 'Not Found' } as const;

/** A plain HTTP response, for refusing on a raw upgrade socket. */
export function rawHttpResponse(status: 401 | 404, body: string): string {
  return (
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' +
    body
  );
}

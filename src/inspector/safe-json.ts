/**
 * Turns chart context and event payloads into small, JSON-safe, secret-free values for the
 * page. Context holds job tokens (JWTs) and protobuf messages with bigints; the page is only
 * on loopback, but a screenshot or a shared screen must never show a credential either.
 */
import { isSecretKey, redact } from '../log/logger.ts';

export interface SafeJsonLimits {
  maxDepth: number;
  maxString: number;
  maxKeys: number;
  maxItems: number;
  /** Upper bound on the serialized size; past it the value is cut to a shallower depth. */
  maxBytes: number;
}

export const CONTEXT_LIMITS: SafeJsonLimits = {
  maxDepth: 6,
  maxString: 400,
  maxKeys: 60,
  maxItems: 50,
  maxBytes: 64_000,
};

export const EVENT_LIMITS: SafeJsonLimits = {
  maxDepth: 4,
  maxString: 200,
  maxKeys: 30,
  maxItems: 20,
  maxBytes: 4_000,
};

// The secret-key rule is the logs' (`isSecretKey`), applied at every depth here because the
// page shows deeper structures than a log line (where `redact` stops at depth 4).
const REDACTED = '[redacted]';

/**
 * A JSON-safe, redacted, bounded copy of `value`. `secrets` are literal values (the API secret)
 * that are scrubbed wherever they appear, whatever the key.
 */
export function safeJson(
  value: unknown,
  limits: SafeJsonLimits,
  secrets: readonly string[] = [],
): unknown {
  const out = copy(value, 0, limits, secrets, new WeakSet());
  if (jsonSize(out) <= limits.maxBytes) return out;
  const shallow = copy(value, 0, { ...limits, maxDepth: 2 }, secrets, new WeakSet());
  return jsonSize(shallow) <= limits.maxBytes ? shallow : `[${typeof value} too large to show]`;
}

function copy(
  v: unknown,
  depth: number,
  limits: SafeJsonLimits,
  secrets: readonly string[],
  seen: WeakSet<object>,
): unknown {
  switch (typeof v) {
    case 'string':
      return scrubString(v, limits, secrets);
    case 'number':
      // JSON has no Infinity (maxJobs is Infinity without a cap); keep it readable.
      return Number.isFinite(v) ? v : String(v);
    case 'boolean':
      return v;
    case 'bigint':
      return v.toString();
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (v === null || typeof v !== 'object') return null;
  if (isActorRef(v)) return `[actor ${v.id}]`;
  if (seen.has(v)) return '[circular]';
  if (depth >= limits.maxDepth) return Array.isArray(v) ? `[${v.length} items]` : '{…}';
  if (v instanceof Uint8Array) return `[${v.byteLength} bytes]`;
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Error) return { name: v.name, message: scrubString(v.message, limits, secrets) };
  seen.add(v);
  try {
    if (Array.isArray(v) || v instanceof Set) {
      const items = [...v];
      const kept = items
        .slice(0, limits.maxItems)
        .map((x) => copy(x, depth + 1, limits, secrets, seen) ?? null);
      if (items.length > limits.maxItems) kept.push(`… ${items.length - limits.maxItems} more`);
      return kept;
    }
    const entries = v instanceof Map ? [...v.entries()] : Object.entries(v);
    const out: Record<string, unknown> = {};
    let n = 0;
    for (const [k, x] of entries) {
      const key = String(k);
      if (n++ >= limits.maxKeys) {
        out['…'] = `${entries.length - limits.maxKeys} more keys`;
        break;
      }
      if (isSecretKey(key)) {
        out[key] = REDACTED;
        continue;
      }
      const c = copy(x, depth + 1, limits, secrets, seen);
      if (c !== undefined) out[key] = c;
    }
    return out;
  } finally {
    seen.delete(v);
  }
}

const jsonSize = (v: unknown): number => JSON.stringify(v)?.length ?? 0;

function scrubString(s: string, limits: SafeJsonLimits, secrets: readonly string[]): string {
  let out = redact(s) as string;
  for (const secret of secrets) {
    if (secret) out = out.split(secret).join(REDACTED);
  }
  return out.length > limits.maxString ? `${out.slice(0, limits.maxString)}…` : out;
}

function isActorRef(v: object): v is { id: string } {
  return 'sessionId' in v && 'send' in v && typeof (v as { send: unknown }).send === 'function';
}

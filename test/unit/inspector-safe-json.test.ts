import { describe, expect, it } from 'vitest';
import { CONTEXT_LIMITS, EVENT_LIMITS, safeJson } from '../../src/inspector/safe-json.ts';

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';

describe('inspector context redaction', () => {
  it('redacts secret-named keys and JWTs at any depth, and literal secrets anywhere', () => {
    const deep = { a: { b: { c: { d: { token: 'x', note: `Bearer ${JWT}` } } } } };
    const out = JSON.stringify(
      safeJson({ deep, apiSecret: 's', msg: 'the secret is hunter2-xyz' }, CONTEXT_LIMITS, [
        'hunter2-xyz',
      ]),
    );
    expect(out).not.toContain(JWT);
    expect(out).not.toContain('hunter2-xyz');
    expect(out).toContain('"token":"[redacted]"');
    expect(out).toContain('"apiSecret":"[redacted]"');
  });

  it('makes values JSON-safe and bounded', () => {
    const circular: Record<string, unknown> = { n: 10n, inf: Infinity, fn: () => 1 };
    circular.self = circular;
    expect(safeJson(circular, EVENT_LIMITS)).toEqual({
      n: '10',
      inf: 'Infinity',
      self: '[circular]',
    });
    const big = { items: Array.from({ length: 5000 }, (_, i) => ({ i, s: 'x'.repeat(300) })) };
    expect(JSON.stringify(safeJson(big, EVENT_LIMITS)).length).toBeLessThanOrEqual(
      EVENT_LIMITS.maxBytes,
    );
  });
});

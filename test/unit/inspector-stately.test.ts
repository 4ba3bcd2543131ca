import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors.ts';
import { startCliInspector } from '../../src/cli/inspector.ts';
import { statelySanitizers } from '../../src/inspector/stately.ts';
import { createLogger } from '../../src/log/logger.ts';

// `startStatelyInspector` itself is not run here: it connects to Stately's relay on the
// internet, which tests must never do. What it sends is decided by these sanitizers.
describe('--inspect=stately', () => {
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJl';
  const { sanitizeContext, sanitizeEvent } = statelySanitizers(['very-secret-value']);

  it('sends context with tokens and the API secret removed', () => {
    const clean = JSON.stringify(
      sanitizeContext({
        jobs: { AJ_1: { token: jwt, note: `uses ${jwt}` } },
        options: { apiSecret: 'very-secret-value', label: 'key very-secret-value' },
      }),
    );
    expect(clean).not.toContain(jwt);
    expect(clean).not.toContain('very-secret-value');
    expect(clean).toContain('AJ_1');
  });

  it('sends events with tokens removed, keeping their type', () => {
    const clean = sanitizeEvent({ type: 'JOB_ASSIGNED', token: jwt } as { type: string });
    expect(clean.type).toBe('JOB_ASSIGNED');
    expect(JSON.stringify(clean)).not.toContain(jwt);
  });

  it('rejects an --inspect value that is neither a port nor "stately"', async () => {
    await expect(
      startCliInspector('start', 'elsewhere', createLogger(), []),
    ).rejects.toBeInstanceOf(InvalidOptionError);
  });
});

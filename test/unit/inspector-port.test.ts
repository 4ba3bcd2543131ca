import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log/logger.ts';
import { DEFAULT_INSPECTOR_PORT, startCliInspector } from '../../src/cli/inspector.ts';
import { startInspector } from '../../src/inspector/server.ts';

async function occupiedPort(): Promise<{ port: number; close: () => Promise<void> }> {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as { port: number }).port;
  return { port, close: () => new Promise((r) => blocker.close(() => r())) };
}

describe('inspector port', () => {
  it('rejects (never crashes) when the chosen port is taken', async () => {
    const busy = await occupiedPort();
    try {
      await expect(startInspector({ port: busy.port })).rejects.toMatchObject({
        code: 'EADDRINUSE',
      });
    } finally {
      await busy.close();
    }
  });

  it('moves the default port to a free one when it is taken', async () => {
    // Hold the default port (if something else already holds it, that serves just as well).
    const blocker = createServer();
    await new Promise<void>((r) => {
      blocker.once('error', () => r());
      blocker.listen(DEFAULT_INSPECTOR_PORT, '127.0.0.1', r);
    });
    try {
      const inspector = await startCliInspector('dev', undefined, createLogger(), []);
      try {
        expect(inspector?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
        expect(inspector?.url).not.toContain(`:${DEFAULT_INSPECTOR_PORT}/`);
      } finally {
        await inspector?.close();
      }
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  it('keeps a port the user chose, failing clearly when it is taken', async () => {
    const busy = await occupiedPort();
    try {
      await expect(startCliInspector('dev', busy.port, createLogger(), [])).rejects.toMatchObject({
        code: 'EADDRINUSE',
      });
    } finally {
      await busy.close();
    }
  });
});

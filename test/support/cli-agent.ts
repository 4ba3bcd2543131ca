/**
 * Helpers for the CLI tests: run the real `agent` bin against an emulator with the fixture
 * agent, read its health server's port from its logs, and ask that server things.
 */
import type { Emulator } from '../../src/testing/index.ts';
import { startAgent, type AgentProcess, type LogRecord } from './agent-process.ts';

export const CLI_AGENT = 'test/fixtures/cli/agent.ts';

/** A secret no ordinary log text contains, so finding it in output means it leaked. */
export const TEST_SECRET = 'sk-test-7f3c9a1e5b2d';
export const TEST_KEY = 'cli-test-key';

export function startCliAgent(
  emu: Emulator,
  args: string[],
  env: Record<string, string | undefined> = {},
): AgentProcess {
  return startAgent(args, {
    LIVEKIT_URL: emu.url,
    LIVEKIT_API_KEY: TEST_KEY,
    LIVEKIT_API_SECRET: TEST_SECRET,
    LOG_LEVEL: undefined,
    LOG_FORMAT: undefined,
    ...env,
  });
}

export const isRegistered = (r: LogRecord): boolean => r.message === 'registered with the server';

/** The health server's bound port, from its `health server listening` record. */
export async function healthPort(agent: AgentProcess): Promise<number> {
  const r = await agent.waitForLog((x) => x.message === 'health server listening', 'health server');
  return r.port as number;
}

export async function get(
  port: number,
  path: string,
): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return {
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    body: await res.text(),
  };
}

/** Polls until `probe` resolves truthy, or fails after `timeoutMs`. */
export async function until<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

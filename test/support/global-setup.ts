/**
 * Runs once before the suites: makes sure the pinned livekit-server is available, building it
 * (cached outside the repo) when it is not, so `npm test` works on a fresh machine. Fails the
 * run — never skips — when the server cannot be had.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { resolveLiveKitServerBinary } from './livekit-server.ts';

export default function setup(): void {
  try {
    process.env.LIVEKIT_SERVER_BIN = resolveLiveKitServerBinary();
    return;
  } catch {
    // not built yet: build it below
  }
  const script = fileURLToPath(new URL('../../scripts/livekit-server.sh', import.meta.url));
  const out = execFileSync('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] }).toString();
  const bin = out.trim().split('\n').at(-1);
  if (!bin) throw new Error('scripts/livekit-server.sh printed no binary path');
  process.env.LIVEKIT_SERVER_BIN = bin;
}

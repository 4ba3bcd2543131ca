/**
 * Runs once before the suites: makes sure the pinned livekit-server and Jaeger (the trace tests'
 * OTLP backend) are available, building each (cached outside the repo) when it is not, so
 * `npm test` works on a fresh machine. Fails the run — never skips — when one cannot be had.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { resolveJaegerBinary } from './jaeger.ts';
import { resolveLiveKitServerBinary } from './livekit-server.ts';

export default function setup(): void {
  process.env.LIVEKIT_SERVER_BIN = cachedOrBuilt(resolveLiveKitServerBinary, 'livekit-server.sh');
  process.env.JAEGER_BIN = cachedOrBuilt(resolveJaegerBinary, 'jaeger.sh');
}

function cachedOrBuilt(resolve: () => string, scriptName: string): string {
  try {
    return resolve();
  } catch {
    // not built yet: build it below
  }
  const script = fileURLToPath(new URL(`../../scripts/${scriptName}`, import.meta.url));
  const out = execFileSync('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] }).toString();
  const bin = out.trim().split('\n').at(-1);
  if (!bin) throw new Error(`scripts/${scriptName} printed no binary path`);
  return bin;
}

/**
 * A strict TypeScript project that installed the package type-checks against it with
 * `skipLibCheck: false`, so our declarations, and everything they pull in, pass the user's own
 * compiler settings.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';

const app = inject('packedProject');

const CONSUMER = `
import {
  WorkerOptions, WorkerPermissions, WorkerType, Worker, cli,
  type JobContext, type JobRequest, type JobProcess,
} from 'agentstate';
import { startEmulator, type Emulator } from 'agentstate/testing';

const opts = new WorkerOptions({
  entrypointFnc: async (ctx: JobContext): Promise<void> => {
    await ctx.connect();
    const who = await ctx.waitForParticipant();
    ctx.addShutdownCallback((reason: string) => console.log(who.identity, reason));
  },
  requestFnc: async (req: JobRequest): Promise<void> => {
    await req.accept({ name: 'agent', identity: \`a-\${req.id}\`, attributes: { k: 'v' } });
  },
  prewarmFnc: (proc: JobProcess): void => {
    proc.userdata.model = { loaded: proc.pid };
  },
  permissions: new WorkerPermissions({ canPublish: true, hidden: false }),
  workerType: WorkerType.ROOM,
  loadFnc: (w) => Math.min(w.activeJobs.length / 10, 1),
  loadThreshold: 0.9,
});

export async function main(): Promise<void> {
  const emu: Emulator = await startEmulator();
  const worker = new Worker(opts, { handleSignals: false });
  const status: string = worker.status;
  console.log(status, emu.url);
  await worker.stop();
  await emu.close();
}

cli.runApp(opts);
`;

describe('the package types', () => {
  // The deadline is tsc's own (120 s): a full check of the package's declarations and @types/node
  // takes 9-12 s on a quiet 2-core machine (slowest on Node 22), over 30 s on a busy one.
  it('type-check a strict nodenext consumer with skipLibCheck false', () => {
    const dir = join(app, 'typed');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'consumer.ts'), CONSUMER);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noUncheckedIndexedAccess: true,
          skipLibCheck: false,
          noEmit: true,
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    let output = '';
    try {
      output = execFileSync(
        process.execPath,
        [join(app, 'node_modules/typescript/bin/tsc'), '-p', dir],
        { cwd: app, encoding: 'utf8', timeout: 120_000 },
      );
    } catch (err) {
      output = String((err as { stdout?: string }).stdout ?? err);
    }
    expect(output.trim()).toBe('');
  }, 120_000);
});

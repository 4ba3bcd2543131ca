/**
 * `cli.runApp(opts)` at the bottom of an agent file: the file run as a script is the command
 * line; the same file imported elsewhere (here, by this test) starts nothing.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const echoAgent = fileURLToPath(new URL('../../examples/echo-agent.ts', import.meta.url));

describe('cli.runApp', () => {
  it('is the command line when the agent file is the script node runs', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--conditions=agentstate-source', '--import', 'tsx', echoAgent, '--help'],
      {
        timeout: 30_000,
      },
    );
    expect(stdout).toContain('Available Commands');
    expect(stdout).toMatch(/start\s+Run the worker in production/);
  });

  it('does nothing when the agent file is merely imported', async () => {
    const mod = (await import('../../examples/echo-agent.ts')) as { default: unknown };
    // Still here: importing did not parse this process's argv or exit it.
    expect(mod.default).toBeDefined();
  });
});

/**
 * The real `agent` bin's usage surface: `--help` for every command, and usage errors (unknown
 * flags and commands, missing files and arguments, bad values) exit 2 with a message.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { AGENT_COMMAND } from '../support/agent-process.ts';

const AGENT = 'test/fixtures/cli/agent.ts';

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [...AGENT_COMMAND, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    // No server is reachable: a usage error must be reported before any connection attempt.
    env: {
      ...process.env,
      LIVEKIT_URL: 'ws://127.0.0.1:9',
      LIVEKIT_API_KEY: 'key',
      LIVEKIT_API_SECRET: 'not-a-real-secret',
      ...env,
    },
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('agent --help', () => {
  it('lists every command', () => {
    const r = run(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of ['start', 'dev', 'connect', 'dispatch']) expect(r.out).toContain(cmd);
    expect(r.out).toContain('--log-level');
  });

  it.each([
    ['start', ['--port', '--num-idle-processes', '--drain-timeout', '--log-format', 'production']],
    ['dev', ['--watch', '--no-watch', '--port', 'development']],
    ['connect', ['--room', '--participant-identity', 'named room']],
    ['dispatch', ['--room', '--agent-name', '--metadata']],
  ])('%s --help describes its flags', (cmd, words) => {
    const r = run([cmd, '--help']);
    expect(r.code).toBe(0);
    for (const w of words) expect(r.out).toContain(w);
    expect(r.out).toContain('--api-secret'); // global flags are shown too
  });

  it('--version prints the version', () => {
    const r = run(['--version']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/\d+\.\d+\.\d+/);
  });
});

describe('usage errors exit 2 with a message', () => {
  it.each([
    ['an unknown flag', ['start', AGENT, '--bogus'], /Unknown flag: --bogus/],
    ['a flag of another command', ['start', AGENT, '--room', 'x'], /Unknown flag: --room/],
    ['an unknown command', ['launch', AGENT], /Invalid command: launch/],
    ['a missing file argument', ['start'], /Insufficient arguments/],
    [
      'a file that does not exist',
      ['start', 'nope/agent.ts'],
      /agent file not found: nope\/agent.ts/,
    ],
    ['a bad log level', ['start', AGENT, '--log-level', 'LOUD'], /Invalid --log-level "LOUD"/],
    ['a bad log format', ['dev', AGENT, '--log-format', 'xml'], /Invalid --log-format "xml"/],
    ['a non-numeric option', ['start', AGENT, '--drain-timeout', 'soon'], /--drain-timeout.*soon/],
    ['an out-of-range option', ['start', AGENT, '--load-threshold', '2'], /loadThreshold/],
    ['connect without --room', ['connect', AGENT], /--room.*required/],
    [
      'missing credentials',
      ['start', AGENT],
      /apiSecret.*LIVEKIT_API_SECRET/,
      { LIVEKIT_API_SECRET: '' },
    ],
  ])('%s', (_what, args, message, env?: Record<string, string>) => {
    const r = run(args, env);
    expect(r.out).toMatch(message);
    expect(r.code).toBe(2);
  });
});

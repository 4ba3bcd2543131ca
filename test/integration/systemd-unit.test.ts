/**
 * deploy/systemd/agentstate.service checked against systemd and the code: `systemd-analyze
 * verify` accepts it (every key and value known to systemd), the stop is a drain of the worker
 * alone (`KillMode=mixed`, SIGTERM), the stop timeout outlasts the drain it passes plus the
 * worker's own deadlines after it, and its command line is one the real `agent` bin runs and
 * drains on SIGTERM (against the emulator).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shutdownBudget } from '../../machines/jobProcess.contract.ts';
import { PROCESS_EXIT_GRACE } from '../../machines/worker.context.ts';
import { WorkerOptions } from '../../src/index.ts';
import { startEmulator, type Emulator } from '../../src/testing/index.ts';
import { killAllAgents } from '../support/agent-process.ts';
import {
  CLI_AGENT,
  isRegistered,
  startCliAgent,
  TEST_KEY,
  TEST_SECRET,
} from '../support/cli-agent.ts';
import { flagValue } from '../support/manifests.ts';

const UNIT_FILE = 'deploy/systemd/agentstate.service';
const unitText = readFileSync(UNIT_FILE, 'utf8');
const defaults = new WorkerOptions({ entrypointFnc: () => undefined });

/** `[Section]` → key → values (a key may repeat), comments and blank lines dropped. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (!current || eq < 0) throw new Error(`${UNIT_FILE}: not a unit line: ${line}`);
    const key = line.slice(0, eq).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

const unit = parseUnit(unitText);
const service = unit.get('Service')!;
/** The one value of a `[Service]` key; a missing or repeated key fails. */
function one(key: string): string {
  const values = service.get(key) ?? [];
  if (values.length !== 1)
    throw new Error(`${UNIT_FILE}: [Service] ${key} set ${values.length} times`);
  return values[0]!;
}

/** A systemd time span (`12min`, `90s`, `1h 30min`, a bare number of seconds) in ms. */
function timeSpanMs(span: string): number {
  const units: Record<string, number> = {
    ms: 1,
    s: 1000,
    sec: 1000,
    min: 60_000,
    m: 60_000,
    h: 3_600_000,
  };
  let total = 0;
  for (const part of span.trim().split(/\s+/)) {
    const m = /^(\d+(?:\.\d+)?)([a-z]*)$/.exec(part);
    if (!m) throw new Error(`not a time span: ${span}`);
    const unitMs = m[2] === '' ? 1000 : units[m[2]!];
    if (unitMs === undefined) throw new Error(`unknown time unit in ${span}`);
    total += Number(m[1]) * unitMs;
  }
  return total;
}

const execStart = one('ExecStart').split(/\s+/);
const [executable, ...args] = execStart;

describe('the systemd unit (deploy/systemd/agentstate.service)', () => {
  it('is accepted by systemd-analyze verify, every key known', () => {
    // verify also checks that ExecStart's program exists: the installed bin is stood in for by
    // an executable file, the rest of the unit is verified as it is.
    const dir = mkdtempSync(join(tmpdir(), 'agentstate-unit-'));
    try {
      const stub = join(dir, 'agent');
      writeFileSync(stub, '#!/bin/sh\n');
      chmodSync(stub, 0o755);
      const copy = join(dir, 'agentstate.service');
      writeFileSync(copy, unitText.replace(`ExecStart=${executable!} `, `ExecStart=${stub} `));
      const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
      expect(r.error, 'systemd-analyze (Debian package systemd) must be installed').toBeUndefined();
      expect(r.stderr + r.stdout).toBe('');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops by draining the worker alone, and outlasts the drain it passes', () => {
    expect(one('KillMode')).toBe('mixed');
    expect(one('KillSignal')).toBe('SIGTERM');
    expect(one('Restart')).toBe('on-failure');
    expect(executable).toMatch(/\/node_modules\/\.bin\/agent$/);
    expect(args[0]).toBe('start');
    const drainMs = Number(flagValue(args, '--drain-timeout') ?? defaults.drainTimeout);
    expect(drainMs).toBeGreaterThan(0);
    // After the drain: the jobs' own shutdown and exit, then the wait for the last exits.
    const afterDrain =
      shutdownBudget({
        initializeTimeout: defaults.initializeProcessTimeout,
        shutdownTimeout: defaults.shutdownProcessTimeout,
      }) + PROCESS_EXIT_GRACE;
    expect(timeSpanMs(one('TimeoutStopSec'))).toBeGreaterThan(drainMs + afterDrain);
  });

  describe('its command line, run by the real agent bin', () => {
    let emu: Emulator;
    beforeAll(async () => {
      emu = await startEmulator({ keys: { [TEST_KEY]: TEST_SECRET } });
    });
    afterAll(async () => {
      await killAllAgents();
      await emu?.close();
    });

    it('registers, and drains and exits 0 on the SIGTERM systemctl stop sends', async () => {
      const agentFile = args.findIndex((a) => a.endsWith('.js'));
      expect(agentFile).toBeGreaterThan(0);
      const runArgs = args.map((a, i) => (i === agentFile ? CLI_AGENT : a));
      const worker = startCliAgent(emu, [...runArgs, '--port', '0', '--host', '127.0.0.1']);
      await worker.waitForLog(isRegistered, 'registration');
      worker.child.kill('SIGTERM');
      await worker.waitForLog(
        (r) => r.message.startsWith('SIGTERM received: draining'),
        'draining on SIGTERM',
      );
      expect(await worker.exited).toBe(0);
    });
  });
});

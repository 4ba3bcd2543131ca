/**
 * Installs the peer frameworks pinned in bench/peers.json under bench/peers/ when they are missing
 * or at another version: `npm install --prefix bench/peers/js …` and a virtualenv
 * `bench/peers/py` (`python3 -m venv` + pip). Nothing here touches the framework's own
 * package.json or node_modules.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PeerPins {
  'agents-js': { packages: Record<string, string> };
  'livekit-agents': { python: string; packages: Record<string, string> };
}

export interface PeerInstall {
  ok: boolean;
  /** Why the peer cannot run here (install failure), when `ok` is false. */
  error?: string;
  versions: Record<string, string>;
}

export function readPins(benchDir: string): PeerPins {
  return JSON.parse(readFileSync(join(benchDir, 'peers.json'), 'utf8')) as PeerPins;
}

function run(cmd: string, args: string[], cwd: string): { ok: boolean; output: string } {
  const res = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 480_000 });
  const output = `${res.stdout ?? ''}${res.stderr ?? ''}${res.error ? String(res.error) : ''}`;
  return { ok: res.status === 0, output };
}

function installedNpmVersion(dir: string, name: string): string | undefined {
  const file = join(dir, 'node_modules', name, 'package.json');
  if (!existsSync(file)) return undefined;
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

export function ensureAgentsJs(
  benchDir: string,
  pins: PeerPins,
  log: (s: string) => void,
): PeerInstall {
  const dir = join(benchDir, 'peers', 'js');
  const wanted = pins['agents-js'].packages;
  mkdirSync(dir, { recursive: true });
  const stale = Object.entries(wanted).filter(([n, v]) => installedNpmVersion(dir, n) !== v);
  if (stale.length > 0) {
    log(`installing ${stale.map(([n, v]) => `${n}@${v}`).join(' ')} into ${dir}`);
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'agentstate-bench-peer-js', private: true, type: 'module' }, null, 2),
    );
    const specs = Object.entries(wanted).map(([n, v]) => `${n}@${v}`);
    const res = run(
      'npm',
      ['install', '--prefix', dir, '--no-audit', '--no-fund', ...specs],
      benchDir,
    );
    if (!res.ok)
      return { ok: false, error: `npm install failed:\n${res.output.slice(-2000)}`, versions: {} };
  }
  // The fixture lives in bench/agents/ (checked in); it runs from here so its imports resolve.
  copyFileSync(join(benchDir, 'agents', 'agents-js.mjs'), join(dir, 'agent.mjs'));
  const versions = Object.fromEntries(
    Object.keys(wanted).map((n) => [n, installedNpmVersion(dir, n) ?? '?']),
  );
  return { ok: true, versions };
}

export function pythonOf(benchDir: string): string {
  return join(benchDir, 'peers', 'py', 'bin', 'python');
}

function installedPipVersion(python: string, name: string): string | undefined {
  if (!existsSync(python)) return undefined;
  const res = spawnSync(python, ['-m', 'pip', 'show', name], { encoding: 'utf8' });
  return /^Version:\s*(\S+)/m.exec(res.stdout ?? '')?.[1];
}

export function ensureLiveKitAgentsPy(
  benchDir: string,
  pins: PeerPins,
  log: (s: string) => void,
): PeerInstall {
  const venv = join(benchDir, 'peers', 'py');
  const python = pythonOf(benchDir);
  const wanted = pins['livekit-agents'].packages;
  if (!existsSync(python)) {
    log(`creating virtualenv ${venv}`);
    const res = run(pins['livekit-agents'].python, ['-m', 'venv', venv], benchDir);
    if (!res.ok)
      return {
        ok: false,
        error: `python3 -m venv failed:\n${res.output.slice(-2000)}`,
        versions: {},
      };
  }
  const stale = Object.entries(wanted).filter(([n, v]) => installedPipVersion(python, n) !== v);
  if (stale.length > 0) {
    const specs = stale.map(([n, v]) => `${n}==${v}`);
    log(`pip installing ${specs.join(' ')} into ${venv}`);
    const res = run(
      python,
      ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...specs],
      benchDir,
    );
    if (!res.ok)
      return { ok: false, error: `pip install failed:\n${res.output.slice(-2000)}`, versions: {} };
  }
  const versions: Record<string, string> = {};
  for (const n of [...Object.keys(wanted), 'livekit'])
    versions[n] = installedPipVersion(python, n) ?? '?';
  return { ok: true, versions };
}

/**
 * When agentstate is benchmarked from another tree (AGENTSTATE_ROOT, e.g. an export of a commit
 * while the working tree is mid-edit), its fixture must sit in that tree so `agentstate` resolves
 * to that tree's sources.
 */
export function placeAgentstateFixture(benchDir: string, agentstateRoot: string): void {
  const dest = join(agentstateRoot, 'bench', 'agents');
  if (join(benchDir, 'agents') === dest) return;
  mkdirSync(dest, { recursive: true });
  for (const f of ['agentstate.ts', 'instrument.ts'])
    copyFileSync(join(benchDir, 'agents', f), join(dest, f));
}

/**
 * The worker image's build and start, without Docker: the Dockerfile's own RUN/COPY/ENV steps run
 * (test/support/dockerfile.ts) in a clean copy of the repository (the files git knows, minus
 * .dockerignore), so the image's package is what `npm pack` makes and its app gets a production
 * install without devDependencies; then the image's CMD starts a worker that registers with the
 * emulator and drains on SIGTERM. Slow by nature (two npm installs), so one test does it all.
 */
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkerOptions } from '../../src/index.ts';
import { startEmulator, type Emulator } from '../../src/testing/index.ts';
import { killAllAgents, startAgent } from '../support/agent-process.ts';
import { get, healthPort, isRegistered } from '../support/cli-agent.ts';
import { dockerIgnores, readDockerignore, runDockerfile } from '../support/dockerfile.ts';
import { withDeadline } from '../support/participants.ts';

const repo = process.cwd();
let emu: Emulator;
let workspace: string;

beforeAll(async () => {
  emu = await startEmulator();
  workspace = mkdtempSync(join(tmpdir(), 'agentstate-image-'));
});
afterAll(async () => {
  await killAllAgents();
  await emu?.close();
  if (workspace) rmSync(workspace, { recursive: true, force: true });
});

/** What `docker build .` would send: the files git tracks or sees, minus .dockerignore. */
function copyContext(into: string): number {
  const ignore = readDockerignore(join(repo, '.dockerignore'));
  const files = execFileSync(
    'git',
    ['ls-files', '--cached', '--others', '--exclude-standard', '-z'],
    {
      cwd: repo,
      encoding: 'utf8',
    },
  )
    .split('\0')
    .filter((f) => f !== '' && existsSync(join(repo, f)) && !dockerIgnores(ignore, f));
  for (const f of files) {
    mkdirSync(dirname(join(into, f)), { recursive: true });
    cpSync(join(repo, f), join(into, f));
  }
  return files.length;
}

/**
 * An npm cache for the image's steps, seeded with a copy of the host's so the installs need not
 * download what the host already has (preferring cached tarballs installs the same versions).
 */
function seededNpmCache(): string {
  const cache = join(workspace, 'npm-cache');
  const host = join(process.env.HOME ?? '/root', '.npm/_cacache');
  if (existsSync(host)) cpSync(host, join(cache, '_cacache'), { recursive: true });
  else mkdirSync(cache, { recursive: true });
  return cache;
}

/** Every package name some installed package depends on (dependencies, optional or peer). */
function runtimeRequirements(nodeModules: string): Set<string> {
  const names = new Set<string>();
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir)) {
      if (entry.startsWith('.')) continue;
      const path = join(dir, entry);
      if (entry.startsWith('@')) {
        visit(path);
        continue;
      }
      const manifest = join(path, 'package.json');
      if (!existsSync(manifest)) continue;
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as Record<
        string,
        Record<string, string> | undefined
      >;
      for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies']) {
        for (const name of Object.keys(pkg[field] ?? {})) names.add(name);
      }
      if (existsSync(join(path, 'node_modules'))) visit(join(path, 'node_modules'));
    }
  };
  visit(nodeModules);
  return names;
}

/** `command` as the image's PATH resolves it. */
function which(command: string, path: string): string {
  for (const dir of path.split(delimiter)) {
    if (existsSync(join(dir, command))) return join(dir, command);
  }
  throw new Error(`${command} is not on the image's PATH (${path})`);
}

describe('the worker image (Dockerfile)', () => {
  it('installs for production from a clean copy and starts a worker that registers', async () => {
    const context = join(workspace, 'context');
    expect(copyContext(context)).toBeGreaterThan(50);
    expect(existsSync(join(context, 'node_modules'))).toBe(false);

    const stages = runDockerfile(join(context, 'Dockerfile'), {
      context,
      workspace,
      // The base image's part: node and npm (the host's), with a HOME and npm cache of the
      // image's own: the steps clean the cache, which must never be the host's.
      baseEnv: {
        PATH: [dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(delimiter),
        HOME: join(workspace, 'home'),
        npm_config_cache: seededNpmCache(),
        npm_config_prefer_offline: 'true',
        npm_config_update_notifier: 'false',
        // The host's extra CAs, which a build on the host's network needs as well: the official
        // Node binaries (unlike a distribution's) trust only their own list.
        ...(process.env.NODE_EXTRA_CA_CERTS
          ? { NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS }
          : {}),
      },
      runTimeoutMs: 240_000,
      onRun: (command, ms) => console.log(`image step (${ms} ms): RUN ${command}`),
    });
    const image = stages.at(-1)!;

    // Production install: the app has agentstate and its runtime dependencies, and none of the
    // repository's devDependencies unless a runtime package needs it too (e.g. @types/node,
    // which @types/ws depends on).
    const app = join(image.workdir, 'node_modules');
    expect(existsSync(join(app, 'agentstate/package.json'))).toBe(true);
    expect(existsSync(join(app, '@livekit/rtc-node/package.json'))).toBe(true);
    const { devDependencies } = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    const needed = runtimeRequirements(app);
    const leaked = Object.keys(devDependencies).filter(
      (d) => existsSync(join(app, d)) && !needed.has(d),
    );
    expect(leaked).toEqual([]);

    // Non-root, and the port the Kubernetes probes use.
    expect(image.user).toBeDefined();
    expect(['root', '0']).not.toContain(image.user!.split(':')[0]);
    const defaultPort = new WorkerOptions({ entrypointFnc: () => undefined }).port;
    expect(image.exposed).toContain(String(defaultPort));

    // The image's CMD, on a free loopback port instead of 8081 (the test machine is shared).
    const [command, ...args] = image.cmd!;
    expect([command, args[0]]).toEqual(['agent', 'start']);
    // `agent` is a node script (its shebang runs node); run it with this node, in the image's
    // working directory, with exactly the image's environment.
    const worker = startAgent(
      [...args, '--port', '0', '--host', '127.0.0.1'],
      {
        ...image.env,
        LIVEKIT_URL: emu.url,
        LIVEKIT_API_KEY: emu.apiKey,
        LIVEKIT_API_SECRET: emu.apiSecret,
      },
      { command: [which(command!, image.env.PATH!)], cwd: image.workdir, inheritEnv: false },
    );
    const port = await healthPort(worker);
    const registered = await worker.waitForLog(isRegistered, 'registration', 30_000);
    await emu.waitForWorker((w) => w.id === registered.workerId);
    expect((await get(port, '/')).status).toBe(200);

    worker.child.kill('SIGTERM');
    expect(await withDeadline(worker.exited, 15_000, 'the worker draining')).toBe(0);
  }, 480_000);
});

/**
 * Runs a Dockerfile's steps without Docker, for a test that the image's install and start
 * commands work from a clean copy of the repository: each stage gets a temp directory standing in
 * for its root filesystem, `WORKDIR`/`COPY`/`ENV` paths are mapped into it, and `RUN` commands run
 * verbatim with `/bin/sh -c` in the mapped working directory. The base image is the host (its
 * `node` and `npm`); `USER`, `EXPOSE` and `CMD` are recorded for the test to check and run.
 *
 * Supports what the repository's Dockerfile uses: FROM … [AS name], WORKDIR, COPY [--from=stage]
 * (files or `.`), RUN (shell form), ENV KEY=VALUE ($VAR expansion), USER, EXPOSE, CMD (exec form).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, relative } from 'node:path';

export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

export interface Stage {
  name: string | undefined;
  /** The stage's stand-in root filesystem. */
  root: string;
  /** Mapped working directory (`WORKDIR`, under `root`). */
  workdir: string;
  /** WORKDIR as written (absolute, inside the image). */
  imageWorkdir: string;
  env: Record<string, string>;
  user: string | undefined;
  exposed: string[];
  cmd: string[] | undefined;
}

export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    while (line.trimEnd().endsWith('\\') && i + 1 < lines.length) {
      line = `${line.trimEnd().slice(0, -1)} ${lines[++i]!.trim()}`;
    }
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const m = /^(\w+)\s+(.*)$/.exec(trimmed);
    if (!m) throw new Error(`Dockerfile line ${start + 1}: cannot parse "${trimmed}"`);
    out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!, line: start + 1 });
  }
  return out;
}

export interface RunOptions {
  /** The build context (a clean copy of the repository). */
  context: string;
  /** Where the stages' stand-in roots go. */
  workspace: string;
  /** The environment the base image stands for (PATH with node, HOME for npm's cache). */
  baseEnv: Record<string, string>;
  /** Per `RUN` command. */
  runTimeoutMs: number;
  /** Called with each `RUN` command and its duration, for the test's log. */
  onRun?: (command: string, ms: number) => void;
}

/** Runs every stage in order; resolves with all of them (the last is the image). */
export function runDockerfile(file: string, options: RunOptions): Stage[] {
  const stages: Stage[] = [];
  let stage: Stage | undefined;
  const fail = (ins: Instruction, why: string): never => {
    throw new Error(`Dockerfile line ${ins.line} (${ins.keyword} ${ins.args}): ${why}`);
  };
  for (const ins of parseDockerfile(readFileSync(file, 'utf8'))) {
    if (ins.keyword === 'FROM') {
      const name = /\s+AS\s+(\S+)$/i.exec(ins.args)?.[1];
      const root = join(options.workspace, `stage-${stages.length}`);
      mkdirSync(root, { recursive: true });
      stage = {
        name,
        root,
        workdir: root,
        imageWorkdir: '/',
        env: { ...options.baseEnv },
        user: undefined,
        exposed: [],
        cmd: undefined,
      };
      stages.push(stage);
      continue;
    }
    if (!stage) return fail(ins, 'before any FROM');
    const s = stage;
    switch (ins.keyword) {
      case 'WORKDIR': {
        const path = isAbsolute(ins.args) ? ins.args : join(s.imageWorkdir, ins.args);
        s.imageWorkdir = path;
        s.workdir = join(s.root, path);
        mkdirSync(s.workdir, { recursive: true });
        break;
      }
      case 'COPY': {
        const words = ins.args.split(/\s+/);
        const from = words[0]!.startsWith('--from=') ? words.shift()!.slice(7) : undefined;
        if (words.some((w) => w.startsWith('--'))) fail(ins, 'unsupported COPY flag');
        const dest = words.pop()!;
        const source = from === undefined ? undefined : stages.find((x) => x.name === from);
        if (from !== undefined && !source) fail(ins, `no stage named ${from}`);
        const target = isAbsolute(dest) ? join(s.root, dest) : join(s.workdir, dest);
        const intoDir = dest.endsWith('/') || dest === '.' || words.length > 1;
        for (const src of words) {
          const path = source
            ? join(source.root, isAbsolute(src) ? src : join(source.imageWorkdir, src))
            : join(options.context, src);
          if (!existsSync(path)) fail(ins, `${src} does not exist`);
          if (statSync(path).isDirectory()) {
            cpSync(path, target, { recursive: true });
          } else {
            mkdirSync(intoDir ? target : join(target, '..'), { recursive: true });
            cpSync(path, intoDir ? join(target, basename(path)) : target);
          }
        }
        break;
      }
      case 'ENV': {
        const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(ins.args);
        if (!m) return fail(ins, 'only ENV KEY=VALUE is supported');
        const expanded = m[2]!.replace(
          /\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g,
          (_, v: string) => s.env[v] ?? '',
        );
        // Paths inside the image (under a WORKDIR of this stage) point into its stand-in root.
        s.env[m[1]!] = expanded
          .split(':')
          .map((part) =>
            part.startsWith('/') && s.imageWorkdir !== '/' && part.startsWith(s.imageWorkdir)
              ? join(s.root, part)
              : part,
          )
          .join(':');
        break;
      }
      case 'RUN': {
        const t0 = Date.now();
        const r = spawnSync('/bin/sh', ['-c', ins.args], {
          cwd: s.workdir,
          env: s.env,
          encoding: 'utf8',
          timeout: options.runTimeoutMs,
          maxBuffer: 64 * 1024 * 1024,
        });
        options.onRun?.(ins.args, Date.now() - t0);
        if (r.status !== 0) {
          const output = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-40).join('\n');
          fail(
            ins,
            `exit ${r.status ?? r.signal ?? r.error?.message} in ${relative(options.workspace, s.workdir)}:\n${output}`,
          );
        }
        break;
      }
      case 'USER':
        s.user = ins.args;
        break;
      case 'EXPOSE':
        s.exposed.push(...ins.args.split(/\s+/));
        break;
      case 'CMD': {
        const parsed: unknown = JSON.parse(ins.args);
        if (!Array.isArray(parsed))
          return fail(ins, 'only the exec form (a JSON array) is supported');
        s.cmd = parsed.map(String);
        break;
      }
      default:
        fail(ins, 'unsupported instruction');
    }
  }
  if (stages.length === 0) throw new Error(`${file} has no FROM`);
  return stages;
}

/**
 * Whether `.dockerignore` excludes `path` (relative to the context): each pattern is matched,
 * as Docker does, against the path and each of its parent directories from the context root;
 * `*` and `?` stay within one path segment, `!` re-includes.
 */
export function dockerIgnores(patterns: readonly string[], path: string): boolean {
  const parts = path.split('/');
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const pattern = (negate ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, '');
    const re = new RegExp(
      `^${pattern
        .split('')
        .map((c) =>
          c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
        )
        .join('')}$`,
    );
    for (let n = 1; n <= parts.length; n++) {
      if (re.test(parts.slice(0, n).join('/'))) {
        ignored = !negate;
        break;
      }
    }
  }
  return ignored;
}

/** `.dockerignore` patterns (comments and blank lines dropped). */
export function readDockerignore(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

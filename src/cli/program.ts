/**
 * The command line, shared by the `agent` bin (`agent dev ./agent.ts`) and `cli.runApp(opts)`
 * (`node agent.js dev`). Usage errors — unknown flags, missing files, bad values — print a
 * clear message and exit with code 2.
 */
import sade from 'sade';
import { AgentStateError, InvalidOptionError } from '../errors.ts';
import {
  createLogger,
  parseLogLevel,
  setLogFormat,
  setLogLevel,
  type LogLevelName,
} from '../log.ts';
import type { WorkerOptions } from '../options.ts';
import { VERSION } from '../version.ts';
import { Worker } from '../worker/worker.ts';
import { AgentFileError, loadAgentFile } from './load-agent.ts';
import { createDispatch } from './dispatch.ts';

export interface ProgramSource {
  /** `runApp`: the options are already known (and the file is the main script). */
  options?: WorkerOptions;
}

interface CommonFlags {
  url?: string;
  'api-key'?: string;
  'api-secret'?: string;
  'log-level'?: string;
  'drain-timeout'?: number;
  'num-idle-processes'?: number;
  _: string[];
}

const EXIT_USAGE = 2;

export async function runProgram(argv: string[], source: ProgramSource = {}): Promise<number> {
  const withFile = source.options === undefined;
  const prog = sade(withFile ? 'agent' : 'agent.js').version(VERSION);
  const fileArg = withFile ? ' <file>' : '';
  prog
    .option('--url', 'LiveKit server URL (env LIVEKIT_URL)')
    .option('--api-key', 'API key (env LIVEKIT_API_KEY)')
    .option('--api-secret', 'API secret (env LIVEKIT_API_SECRET)')
    .option('--log-level', 'DEBUG, INFO, WARNING, ERROR or CRITICAL (env LOG_LEVEL)', 'INFO');

  prog.option('--load-threshold', 'report full at or above this load, in [0, 1] (default 0.7)');
  prog
    .command(`start${fileArg}`)
    .describe('Run the worker in production: JSON logs, production defaults.')
    .option('--drain-timeout', 'ms to wait for running jobs on SIGTERM/SIGINT')
    .option('--num-idle-processes', 'prewarmed idle job processes (default min(cpus, 4))')
    .example(withFile ? 'start ./agent.js --log-level=debug' : 'start');
  prog
    .command(`dev${fileArg}`)
    .describe('Run the worker for development: coloured logs, one idle process.')
    .option('--drain-timeout', 'ms to wait for running jobs on SIGTERM/SIGINT')
    .option('--num-idle-processes', 'prewarmed idle job processes (default 1)')
    .example(withFile ? 'dev ./agent.ts' : 'dev');
  prog
    .command('dispatch')
    .describe('Create an explicit dispatch: ask the server to start an agent in a room.')
    .option('--room', 'room name (created if missing)')
    .option('--agent-name', 'agent name to dispatch (default: the automatic, unnamed agent)', '')
    .option('--metadata', 'job metadata', '');

  const known = new Set([
    'url',
    'api-key',
    'api-secret',
    'log-level',
    'drain-timeout',
    'num-idle-processes',
    'room',
    'agent-name',
    'metadata',
    'help',
    'h',
    'version',
    'v',
    '_',
  ]);
  const parsed = parseOrExit(prog, argv, known);
  if (!parsed) return 0; // --help / --version printed
  const { name, args } = parsed;
  const flags = args[args.length - 1] as CommonFlags & Record<string, unknown>;
  const level = configureLogging(flags, name === 'start' ? 'json' : 'pretty');
  if (level === undefined) return EXIT_USAGE;
  const log = createLogger();

  try {
    if (name === 'dispatch') {
      return await createDispatch(flags, log);
    }
    let options = source.options;
    let agentModule: string | undefined;
    if (!options) {
      const loaded = await loadAgentFile(String(args[0]));
      options = loaded.options;
      agentModule = loaded.path;
    }
    const worker = new Worker(options, {
      mode: name === 'start' ? 'production' : 'development',
      logger: log,
      overrides: {
        wsUrl: flags.url,
        apiKey: flags['api-key'],
        apiSecret: flags['api-secret'],
        drainTimeout: numberFlag(flags, 'drain-timeout'),
        numIdleProcesses: numberFlag(flags, 'num-idle-processes'),
        loadThreshold: numberFlag(flags, 'load-threshold'),
        agentModule,
      },
    });
    await worker.run();
    return 0;
  } catch (err) {
    if (err instanceof InvalidOptionError || err instanceof AgentFileError) {
      log.error(err.message);
      return EXIT_USAGE;
    }
    if (err instanceof AgentStateError) {
      log.error(err.message);
      return 1;
    }
    log.error('worker failed', { error: err });
    return 1;
  }
}

function numberFlag(flags: Record<string, unknown>, name: string): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n))
    throw new InvalidOptionError(`--${name}`, `expected a number, got ${String(v)}`);
  return n;
}

function configureLogging(flags: CommonFlags, format: 'json' | 'pretty'): LogLevelName | undefined {
  const raw = flags['log-level'] ?? process.env.LOG_LEVEL ?? 'INFO';
  const level = parseLogLevel(String(raw));
  if (!level) {
    console.error(
      `Invalid --log-level ${JSON.stringify(raw)}: use DEBUG, INFO, WARNING, ERROR or CRITICAL`,
    );
    return undefined;
  }
  setLogLevel(level);
  setLogFormat(format);
  return level;
}

/**
 * Parses without running, turning sade's usage errors (which exit 1) into exit code 2, and
 * rejecting flags no command knows.
 */
function parseOrExit(
  prog: ReturnType<typeof sade>,
  argv: string[],
  known: Set<string>,
): { name: string; args: unknown[] } | undefined {
  const realExit = process.exit;
  process.exit = ((code?: number) =>
    realExit(code === 1 ? EXIT_USAGE : code)) as typeof process.exit;
  try {
    const res = prog.parse(argv, {
      lazy: true,
      unknown: (flag: string) =>
        known.has(flag.replace(/^-+/, '').split('=')[0]!) ? undefined : `Unknown flag: ${flag}`,
    } as never) as unknown as { name: string; args: unknown[] } | undefined;
    return res;
  } finally {
    process.exit = realExit;
  }
}

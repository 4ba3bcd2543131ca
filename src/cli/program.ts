/**
 * The command line, shared by the `agent` bin (`agent dev ./agent.ts`) and `cli.runApp(opts)`
 * (`node agent.js dev`). Usage errors — unknown flags, missing files, bad values — print a
 * clear message and exit with code 2.
 */
import sade from 'sade';
import { AgentStateError, InvalidOptionError } from '../errors.ts';
import {
  configureLogging,
  createLogger,
  parseLogLevel,
  type LogFormat,
  type Logger,
  type LogLevelName,
} from '../log/logger.ts';
import { WorkerOptions } from '../options/worker-options.ts';
import { VERSION } from '../version.ts';
import { AgentFileError, loadAgentFile } from '../agent-file/load.ts';
import { DEFAULT_KILL_TIMEOUT } from '../../machines/jobProcess.contract.ts';
import { reapJobProcesses } from '../job-host/live-children.ts';
import { createDispatch } from './dispatch.ts';
import type { Flags } from './flags.ts';
import { runGroup } from './run-group.ts';
import { runWorker, type WorkerCommand } from './run-worker.ts';

export interface ProgramSource {
  /** `runApp`: the options are already known (and the file is the main script). */
  options?: WorkerOptions;
}

const EXIT_USAGE = 2;

/** Flags every worker command (`start`, `dev`, `connect`) takes. */
function workerFlags(cmd: ReturnType<typeof sade>, idleDefault: string): void {
  cmd
    .option(
      '--drain-timeout',
      'ms to wait for running jobs on SIGTERM/SIGINT/SIGHUP (default 1800000)',
    )
    .option('--num-idle-processes', `prewarmed idle job processes (default ${idleDefault})`)
    .option('--load-threshold', 'report full at or above this load, in [0, 1] (default 0.7)')
    .option('--max-jobs', 'cap on concurrent jobs of this process (default: no cap)')
    .option(
      '--jobs-per-process',
      'jobs one job process may run in turn; above 1 a process whose job ended cleanly takes the next (default 1)',
    );
}

function defineProgram(withFile: boolean): ReturnType<typeof sade> {
  const prog = sade(withFile ? 'agent' : 'agent.js').version(VERSION);
  const fileArg = withFile ? ' <file>' : '';
  const file = withFile ? ' ./agent.ts' : '';
  prog
    .option('--url', 'LiveKit server URL (env LIVEKIT_URL)')
    .option('--api-key', 'API key (env LIVEKIT_API_KEY)')
    .option('--api-secret', 'API secret (env LIVEKIT_API_SECRET; prefer the env)')
    .option('--log-level', 'DEBUG, INFO, WARNING, ERROR or CRITICAL (env LOG_LEVEL)', 'INFO')
    .option('--log-format', 'json or pretty (default: json for start, pretty otherwise)');

  prog
    .command(`start${fileArg}`)
    .describe(
      'Run the worker in production: JSON logs, min(cpus, 4) warm processes, health and metrics on --port. Several files: one process serving each agent (--max-jobs and --load-threshold then apply to the process as a whole).',
    )
    .option('--host', 'health/metrics server host (default 0.0.0.0)')
    .option('--port', 'health/metrics server port (default 8081; 0 picks a free one)')
    .example(`start${file} --log-level=debug`)
    .example(`start${file} --port 9000`)
    .example(withFile ? 'start ./support.ts ./sales.ts --max-jobs 8' : `start --max-jobs 8`)
    .option(
      '--inspect',
      'serve the live inspector on 127.0.0.1 (optionally =PORT); =stately sends redacted state to stately.ai instead',
    );
  workerFlags(prog, 'min(cpus, 4)');

  prog
    .command(`dev${fileArg}`)
    .describe(
      "Run the worker for development: coloured logs, one warm process, idle processes reloaded when the agent's files change. Several files: one process serving each agent.",
    )
    .option('--watch', 'reload idle processes on file changes; --no-watch turns it off', true)
    .option(
      '--inspect',
      'live inspector port on 127.0.0.1 (default: on, 7870 or a free one); =stately uses stately.ai',
    )
    .option('--no-inspect', 'do not serve the live inspector')
    .option('--host', 'health/metrics server host (default 0.0.0.0)')
    .option('--port', 'serve health/metrics on this port (default: not served; 0 picks one)')
    .example(`dev${file}`)
    .example(`dev${file} --log-level debug`);
  workerFlags(prog, '1');

  prog
    .command(`connect${fileArg}`)
    .describe(
      'Run one job in a named room without a dispatch (the server creates it for this worker), then exit with its outcome.',
    )
    .option('--room', 'room to run the job in (required)')
    .option(
      '--participant-identity',
      'the participant the job is for (PUBLISHER and PARTICIPANT workers)',
    )
    .option('--host', 'health/metrics server host (default 0.0.0.0)')
    .option('--port', 'serve health/metrics on this port (default: not served)')
    .example(`connect${file} --room my-room`);
  workerFlags(prog, '1');

  prog
    .command('dispatch')
    .describe('Create an explicit dispatch: ask the server to start an agent in a room.')
    .option('--room', 'room name (required; created if missing)')
    .option('--agent-name', 'agent name to dispatch (default: the automatic, unnamed agent)', '')
    .option('--metadata', 'job metadata', '')
    .example('dispatch --room my-room --agent-name support');
  return prog;
}

export async function runProgram(argv: string[], source: ProgramSource = {}): Promise<number> {
  keepRunningWithoutOutput();
  const withFile = source.options === undefined;
  const parsed = parseOrExit(defineProgram(withFile), argv);
  if (!parsed) return 0; // --help / --version printed
  const name = parsed.name as WorkerCommand | 'dispatch';
  const args = parsed.args;
  const flags = args[args.length - 1] as Flags;

  const logging = configureFromFlags(flags, name === 'start' ? 'json' : 'pretty');
  if (typeof logging === 'string') {
    console.error(logging);
    return EXIT_USAGE;
  }
  const log = createLogger();

  try {
    return await runCommand(name, args, flags, source, withFile, log);
  } finally {
    await reapLeftovers(log);
  }
}

/**
 * A terminal that closed (the SIGHUP that drains) or a reader that went away (`agent start |
 * head`) makes every later write to stdout and stderr fail (EIO, EPIPE), and an unhandled stream
 * error would kill the worker with its running jobs. The output is lost instead; the worker runs
 * on, drains and exits as it would have.
 */
function keepRunningWithoutOutput(): void {
  const lost = new Set(['EIO', 'EPIPE', 'ERR_STREAM_DESTROYED']);
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (!lost.has(err.code ?? '')) throw err;
    });
  }
}

/**
 * The worker waits for its processes' exits before it stops; whatever ended the command, none
 * may outlive it (a fatal error could leave some): each survivor is killed, and waited for.
 */
async function reapLeftovers(log: Logger): Promise<void> {
  const { killed, survivors } = await reapJobProcesses(DEFAULT_KILL_TIMEOUT);
  if (killed.length > 0) log.warn('job processes still running at exit were killed', { killed });
  if (survivors.length > 0) log.error('job processes did not exit after SIGKILL', { survivors });
}

async function runCommand(
  name: WorkerCommand | 'dispatch',
  args: unknown[],
  flags: Flags,
  source: ProgramSource,
  withFile: boolean,
  log: Logger,
): Promise<number> {
  try {
    if (name === 'dispatch') return await createDispatch(flags, serverFlags(flags), log);

    const more = withFile ? flags._.map(String) : [];
    if (more.length > 0) {
      if (name === 'connect') {
        throw new InvalidOptionError('<file>', 'connect runs one agent file; give only one');
      }
      return await runSeveral(name, [String(args[0]), ...more], flags, log);
    }

    let options = source.options;
    let agentFile = process.argv[1];
    let agentModule: URL | undefined;
    if (!options) {
      const loaded = await loadAgentFile(String(args[0]));
      options = loaded.options;
      agentFile = loaded.path;
      agentModule = loaded.module;
    }
    const room = name === 'connect' ? requiredString(flags, 'room') : undefined;
    const inspector = await maybeInspector(name, flags, log, options);
    try {
      return await runWorker({
        command: name,
        options,
        agentFile,
        log,
        health: name === 'start' || flags.port !== undefined,
        watch: name === 'dev' && flags.watch !== false,
        room:
          room === undefined
            ? undefined
            : { name: room, participantIdentity: optionalString(flags, 'participant-identity') },
        config: {
          mode: name === 'start' ? 'production' : 'development',
          overrides: {
            ...agentOverrides(flags),
            loadThreshold: numberFlag(flags, 'load-threshold'),
            maxJobs: numberFlag(flags, 'max-jobs'),
            host: optionalString(flags, 'host'),
            port: numberFlag(flags, 'port'),
            agentModule,
          },
          inspect: inspector?.inspect,
        },
      });
    } finally {
      await inspector?.close();
    }
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

/**
 * `start`/`dev` with several files: every file is loaded first (one that fails is a usage
 * error naming it, before anything connects), then one `WorkerGroup` serves them all.
 * `--max-jobs`/`--load-threshold` are the process-wide limits; the other flags apply to every
 * agent.
 */
async function runSeveral(
  name: 'start' | 'dev',
  files: readonly string[],
  flags: Flags,
  log: Logger,
): Promise<number> {
  const agents: { options: WorkerOptions; file: string }[] = [];
  for (const file of files) {
    const loaded = await loadAgentFile(file);
    // Each agent's job processes import its own file.
    agents.push({
      options: new WorkerOptions({ ...loaded.options, agentModule: loaded.module }),
      file: loaded.path,
    });
  }
  const inspector = await maybeInspector(name, flags, log, ...agents.map((a) => a.options));
  try {
    return await runGroup({
      agents,
      log,
      health: name === 'start' || flags.port !== undefined,
      watch: name === 'dev' && flags.watch !== false,
      group: {
        maxJobs: numberFlag(flags, 'max-jobs'),
        loadThreshold: numberFlag(flags, 'load-threshold'),
        host: optionalString(flags, 'host'),
        port: numberFlag(flags, 'port'),
      },
      config: {
        mode: name === 'start' ? 'production' : 'development',
        overrides: {
          ...agentOverrides(flags),
        },
        inspect: inspector?.inspect,
        agentLabels: agents.map((a) => a.file),
      },
    });
  } finally {
    await inspector?.close();
  }
}

/** `dev` (or `--inspect`) serves the live inspector; the module is only loaded then. */
async function maybeInspector(
  name: string,
  flags: Flags,
  log: Logger,
  ...options: WorkerOptions[]
) {
  if (name !== 'dev' && flags.inspect === undefined) return undefined;
  const { startCliInspector } = await import('./inspector.ts');
  return startCliInspector(name, flags.inspect, log, [
    optionalString(flags, 'api-secret'),
    process.env.LIVEKIT_API_SECRET,
    ...options.map((o) => o.apiSecret),
  ]);
}

/**
 * The server and credentials flags, which every command takes. Values mri parsed as numbers (an
 * all-digit secret) are the strings the user typed.
 */
function serverFlags(flags: Flags) {
  return {
    wsUrl: optionalString(flags, 'url'),
    apiKey: optionalString(flags, 'api-key'),
    apiSecret: optionalString(flags, 'api-secret'),
  };
}

/** What every agent of a worker command takes from the flags: the server and the pool size. */
function agentOverrides(flags: Flags) {
  return {
    ...serverFlags(flags),
    drainTimeout: numberFlag(flags, 'drain-timeout'),
    numIdleProcesses: numberFlag(flags, 'num-idle-processes'),
    jobsPerProcess: numberFlag(flags, 'jobs-per-process'),
  };
}

function optionalString(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  return v === undefined || v === true ? undefined : String(v);
}

function requiredString(flags: Flags, name: string): string {
  const v = optionalString(flags, name);
  if (v === undefined || v === '') throw new InvalidOptionError(`--${name}`, 'required');
  return v;
}

function numberFlag(flags: Flags, name: string): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : v === true || v === '' ? NaN : Number(v);
  // `Infinity` is a number here (e.g. `--load-threshold Infinity`); ranges are the options' job.
  if (Number.isNaN(n))
    throw new InvalidOptionError(`--${name}`, `expected a number, got ${String(v)}`);
  return n;
}

/** Applies `--log-level`/`LOG_LEVEL` and `--log-format`/`LOG_FORMAT`; a string is a usage error. */
function configureFromFlags(
  flags: Flags,
  defaultFormat: LogFormat,
): { level: LogLevelName; format: LogFormat } | string {
  const raw = flags['log-level'] ?? process.env.LOG_LEVEL ?? 'INFO';
  const level = parseLogLevel(String(raw));
  if (!level) {
    return `Invalid --log-level ${JSON.stringify(raw)}: use DEBUG, INFO, WARNING, ERROR or CRITICAL`;
  }
  const rawFormat = String(flags['log-format'] ?? process.env.LOG_FORMAT ?? defaultFormat);
  const format = rawFormat.toLowerCase();
  if (format !== 'json' && format !== 'pretty') {
    return `Invalid --log-format ${JSON.stringify(rawFormat)}: use json or pretty`;
  }
  configureLogging({ level, format });
  return { level, format };
}

/**
 * Parses without running, turning sade's usage errors (unknown flag or command, missing
 * argument; sade exits 1 for them) into exit code 2.
 */
function parseOrExit(
  prog: ReturnType<typeof sade>,
  argv: string[],
): { name: string; args: unknown[] } | undefined {
  // Put back as it was below; Node's process.exit does not use `this`.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const realExit = process.exit;
  process.exit = (code?: number) => realExit(code === 1 ? EXIT_USAGE : code);
  try {
    return prog.parse(argv, {
      lazy: true,
      unknown: (flag: string) => `Unknown flag: ${flag}`,
    } as never);
  } finally {
    process.exit = realExit;
  }
}

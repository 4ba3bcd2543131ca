/**
 * One structured logger for the worker and its job processes, on top of loglevel. Records carry
 * fields (`workerId`, `agentName`, `jobId`, `roomName`, `pid`, …); secrets are never printed.
 *
 * Global state: the framework prints through its own named loglevel logger (`agentstate`) and
 * never touches loglevel's root logger or any logger the user did not hand it through
 * `configureLogging`. The settings live on a `globalThis` symbol so that two copies of this
 * module (the user's `agentstate` import and the runtime's own) share them.
 */
import loglevel from 'loglevel';
import {
  colorWanted,
  jsonLine,
  prettyLine,
  type LogFields,
  type LogFormat,
  type LogLevelName,
  type LogRecord,
} from './format.ts';

export type { LogFields, LogFormat, LogLevelName, LogRecord } from './format.ts';

/** The record functions are plain functions, not methods: `(ok ? log.info : log.warn)(…)` is fine. */
export interface Logger {
  debug: (message: string, fields?: LogFields) => void;
  info: (message: string, fields?: LogFields) => void;
  warn: (message: string, fields?: LogFields) => void;
  error: (message: string, fields?: LogFields) => void;
  /**
   * A logger whose records also carry `fields`. A field whose value is a function is called for
   * every record, for values learnt later (the worker id, known once registered).
   */
  child(fields: LogFields): Logger;
}

/** What a user may configure; every key is optional and only what is given changes. */
export interface LoggingConfig {
  /** DEBUG, INFO, WARNING, ERROR or CRITICAL (case-insensitive; CRITICAL shows errors too). */
  level?: LogLevelName | (string & {});
  /** `json`: one object per line; `pretty`: coloured, aligned lines. */
  format?: LogFormat;
  /** Colour pretty lines. Default: when stdout is a terminal (NO_COLOR / FORCE_COLOR respected). */
  color?: boolean;
  /** Receives every record instead of the console (structured, already redacted). `null` removes it. */
  sink?: ((record: LogRecord) => void) | null;
  /** Print formatted lines through this loglevel logger of yours instead of ours. `null` reverts. */
  logger?: loglevel.Logger | null;
  /** A loglevel method factory for the framework's own `agentstate` logger. `null` reverts. */
  methodFactory?: loglevel.MethodFactory | null;
}

type Method = 'debug' | 'info' | 'warn' | 'error';
type Forwarder = (level: Method, message: string, fields: LogFields) => void;

interface LogState {
  own: loglevel.Logger;
  ownFactory: loglevel.MethodFactory;
  target: loglevel.Logger | undefined;
  level: LogLevelName;
  format: LogFormat;
  color: boolean;
  sink: ((record: LogRecord) => void) | undefined;
  forward: Forwarder | undefined;
  /** Where every printed record also goes (OTLP logs, `../telemetry/otel-logs.ts`). */
  exporter: ((record: LogRecord) => void) | undefined;
  secrets: Set<string>;
}

/** Names the level a job process starts with, set by its host from the worker's level. */
export const LOG_LEVEL_ENV = 'AGENTSTATE_LOG_LEVEL';

const RANK: Record<LogLevelName, number> = { DEBUG: 1, INFO: 2, WARNING: 3, ERROR: 4, CRITICAL: 4 };
const METHOD_RANK: Record<Method, number> = { debug: 1, info: 2, warn: 3, error: 4 };
const METHOD_LEVEL: Record<Method, LogLevelName> = {
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
};
const LOGLEVEL_OF: Record<LogLevelName, loglevel.LogLevelDesc> = {
  DEBUG: 'debug',
  INFO: 'info',
  WARNING: 'warn',
  ERROR: 'error',
  CRITICAL: 'error',
};

const STATE = Symbol.for('agentstate.log.state');
const state: LogState = ((globalThis as { [STATE]?: LogState })[STATE] ??= initialState());

function initialState(): LogState {
  const own = loglevel.getLogger('agentstate');
  const level =
    parseLogLevel(process.env[LOG_LEVEL_ENV] ?? '') ??
    parseLogLevel(process.env.LOG_LEVEL ?? '') ??
    'INFO';
  own.setLevel(LOGLEVEL_OF[level], false);
  const secrets = new Set<string>();
  // A job process inherits the worker's environment; its secret must not leak from there either.
  addSecret(secrets, process.env.LIVEKIT_API_SECRET);
  return {
    own,
    ownFactory: own.methodFactory,
    target: undefined,
    level,
    format: process.env.AGENTSTATE_LOG_FORMAT === 'json' ? 'json' : 'pretty',
    color: colorWanted(process.env, process.stdout.isTTY),
    sink: undefined,
    forward: undefined,
    exporter: undefined,
    secrets,
  };
}

/** Parses `--log-level`/`LOG_LEVEL` values case-insensitively; `undefined` if unknown. */
export function parseLogLevel(value: string): LogLevelName | undefined {
  const up = value.trim().toUpperCase();
  if (up === 'WARN') return 'WARNING';
  return up in RANK ? (up as LogLevelName) : undefined;
}

/** Changes what is logged and where; see {@link LoggingConfig}. Throws on an unknown level. */
export function configureLogging(config: LoggingConfig): void {
  if (config.level !== undefined) {
    const level = parseLogLevel(config.level);
    if (!level) {
      throw new RangeError(
        `unknown log level ${JSON.stringify(config.level)}: use DEBUG, INFO, WARNING, ERROR or CRITICAL`,
      );
    }
    state.level = level;
    state.own.setLevel(LOGLEVEL_OF[level], false);
  }
  if (config.format !== undefined) state.format = config.format;
  if (config.color !== undefined) state.color = config.color;
  if (config.sink !== undefined) state.sink = config.sink ?? undefined;
  if (config.logger !== undefined) state.target = config.logger ?? undefined;
  if (config.methodFactory !== undefined) {
    state.own.methodFactory = config.methodFactory ?? state.ownFactory;
    state.own.rebuild();
  }
}

export function getLogLevel(): LogLevelName {
  return state.level;
}

/**
 * Sends every record to `fn` instead of printing it: job processes forward their records to
 * the worker over IPC, where the worker's logger (and the user's sink) prints them. It wins over
 * a user sink configured inside the job process, so no record bypasses the worker.
 */
export function setLogSink(fn: Forwarder | undefined): void {
  state.forward = fn;
}

/**
 * Sends every record this process prints (its own, and its job processes' that arrive over IPC)
 * to `fn` as well, already redacted; `undefined` stops it. For OTLP logs.
 */
export function setLogExporter(fn: ((record: LogRecord) => void) | undefined): void {
  state.exporter = fn;
}

/** Registers a value (an API secret) that must never appear in a log line, whatever the field. */
export function registerSecret(value: string | undefined): void {
  addSecret(state.secrets, value);
}

function addSecret(set: Set<string>, value: string | undefined): void {
  // Very short values would blank out ordinary words; no real secret is that short.
  if (value !== undefined && value.length >= 6) set.add(value);
}

const SECRET_KEYS = /secret|token|password|authorization|apikey|credential/i;

/**
 * Whether a field named `key` holds a secret (its value is never shown). `apiKey` is an
 * identifier, not a secret. Shared by the logs and the inspector so the two cannot drift.
 */
export function isSecretKey(key: string): boolean {
  return key !== 'apiKey' && SECRET_KEYS.test(key);
}
const JWT = /eyJ[\w-]+\.[\w-]+\.[\w-]+/g;

function scrub(s: string): string {
  let out = s.replace(JWT, '[redacted]');
  for (const secret of state.secrets) out = out.split(secret).join('[redacted]');
  return out;
}

/** Removes secrets from fields: keys that name secrets, JWT-shaped strings, registered secrets. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrub(value);
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    return { name: value.name, message: redact(value.message, depth + 1) };
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = isSecretKey(k) ? '[redacted]' : redact(v, depth + 1);
  }
  return out;
}

/** Late-bound fields are resolved; absent ones are left out rather than printed as `undefined`. */
function resolveFields(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, raw] of Object.entries(fields)) {
    const v: unknown = typeof raw === 'function' ? (raw as () => unknown)() : raw;
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function emit(method: Method, message: string, fields: LogFields): void {
  const clean = redact(resolveFields(fields)) as LogFields;
  const msg = scrub(message);
  if (state.forward) {
    state.forward(method, msg, clean);
    return;
  }
  const record: LogRecord = {
    timestamp: new Date().toISOString(),
    level: METHOD_LEVEL[method],
    message: msg,
    fields: clean,
  };
  if (state.exporter) {
    try {
      state.exporter(record);
    } catch {
      // An exporter's failure is its own; the record is still printed.
    }
  }
  if (state.sink) {
    state.sink(record);
    return;
  }
  const line = state.format === 'json' ? jsonLine(record) : prettyLine(record, state.color);
  const target = state.target ?? state.own;
  target[method](line);
}

function enabled(method: Method): boolean {
  return METHOD_RANK[method] >= RANK[state.level];
}

/** Creates a logger whose records carry `fields`. */
export function createLogger(fields: LogFields = {}): Logger {
  const at = (method: Method) => (m: string, f?: LogFields) => {
    if (enabled(method)) emit(method, m, f ? { ...fields, ...f } : fields);
  };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => createLogger({ ...fields, ...more }),
  };
}

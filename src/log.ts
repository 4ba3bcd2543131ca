/**
 * One structured logger for the worker and its job processes, on top of loglevel. Records carry
 * fields (`workerId`, `jobId`, …); values that look like secrets are never printed.
 * The framework uses its own named loglevel logger and never touches loglevel's root logger.
 */
import loglevel from 'loglevel';

export type LogLevelName = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL';
export type LogFields = Record<string, unknown>;
export type LogFormat = 'json' | 'pretty';

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger whose records also carry `fields`. */
  child(fields: LogFields): Logger;
}

const base = loglevel.getLogger('agentstate');
let format: LogFormat = process.env.AGENTSTATE_LOG_FORMAT === 'json' ? 'json' : 'pretty';
/** Where records go; job processes replace it to forward records over IPC. */
let sink: ((level: string, message: string, fields: LogFields) => void) | undefined;

const LEVELS: Record<LogLevelName, loglevel.LogLevelDesc> = {
  DEBUG: 'debug',
  INFO: 'info',
  WARNING: 'warn',
  ERROR: 'error',
  CRITICAL: 'error',
};

/** Parses `--log-level`/`LOG_LEVEL` values case-insensitively; `undefined` if unknown. */
export function parseLogLevel(value: string): LogLevelName | undefined {
  const up = value.trim().toUpperCase();
  if (up === 'WARN') return 'WARNING';
  return up in LEVELS ? (up as LogLevelName) : undefined;
}

export function setLogLevel(level: LogLevelName): void {
  base.setLevel(LEVELS[level], false);
}

export function setLogFormat(f: LogFormat): void {
  format = f;
}

/** Sends every record to `fn` instead of stdout (used by job processes to forward over IPC). */
export function setLogSink(fn: typeof sink): void {
  sink = fn;
}

base.setLevel(LEVELS[parseLogLevel(process.env.LOG_LEVEL ?? '') ?? 'INFO'], false);

const SECRET_KEYS = /secret|token|password|authorization|apikey/i;
const JWT = /eyJ[\w-]+\.[\w-]+\.[\w-]+/g;

/** Removes secrets from fields: keys that name secrets, and anything shaped like a JWT. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.replace(JWT, '[redacted]');
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    return { name: value.name, message: redact(value.message, depth + 1) };
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEYS.test(k) && k !== 'apiKey' ? '[redacted]' : redact(v, depth + 1);
  }
  return out;
}

const COLORS: Record<string, string> = { debug: '90', info: '36', warn: '33', error: '31' };

function emit(
  level: 'debug' | 'info' | 'warn' | 'error',
  message: string,
  fields: LogFields,
): void {
  // Absent fields are left out rather than printed as `undefined`.
  const clean = redact(
    Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)),
  ) as LogFields;
  const msg = redact(message) as string;
  if (sink) {
    sink(level, msg, clean);
    return;
  }
  const method = base[level].bind(base);
  if (format === 'json') {
    method(
      JSON.stringify({
        timestamp: new Date().toISOString(),
        level: levelName(level),
        message: msg,
        ...clean,
      }),
    );
    return;
  }
  const time = new Date().toISOString().slice(11, 23);
  const extras = Object.entries(clean)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const tag = `\x1b[${COLORS[level]}m${levelName(level).padEnd(7)}\x1b[0m`;
  method(`${time} ${tag} ${msg}${extras ? `  \x1b[90m${extras}\x1b[0m` : ''}`);
}

function levelName(level: string): string {
  return level === 'warn' ? 'WARNING' : level.toUpperCase();
}

/** Creates a logger whose records carry `fields`. */
export function createLogger(fields: LogFields = {}): Logger {
  return {
    debug: (m, f) => base.getLevel() <= base.levels.DEBUG && emit('debug', m, { ...fields, ...f }),
    info: (m, f) => base.getLevel() <= base.levels.INFO && emit('info', m, { ...fields, ...f }),
    warn: (m, f) => base.getLevel() <= base.levels.WARN && emit('warn', m, { ...fields, ...f }),
    error: (m, f) => base.getLevel() <= base.levels.ERROR && emit('error', m, { ...fields, ...f }),
    child: (more) => createLogger({ ...fields, ...more }),
  };
}

/**
 * How a log record becomes a line: one JSON object (`start`), or a coloured, aligned line for a
 * person (`dev`). Pure functions; the logger decides where the line goes.
 */

export type LogLevelName = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL';
export type LogFields = Record<string, unknown>;
export type LogFormat = 'json' | 'pretty';

/** One record, as a custom sink receives it (already redacted). */
export interface LogRecord {
  /** ISO 8601, UTC. */
  timestamp: string;
  level: LogLevelName;
  message: string;
  fields: LogFields;
}

/** `{"timestamp", "level", "message", ...fields}`: record keys win over same-named fields. */
export function jsonLine(r: LogRecord): string {
  return JSON.stringify({
    ...r.fields,
    timestamp: r.timestamp,
    level: r.level,
    message: r.message,
  });
}

const COLORS: Record<LogLevelName, string> = {
  DEBUG: '90',
  INFO: '36',
  WARNING: '33',
  ERROR: '31',
  CRITICAL: '35',
};

/** Width the message is padded to, so the fields after it line up on most lines. */
const MESSAGE_COLUMN = 36;

/** `12:00:01.234 INFO     message                         workerId=AW_… jobId=AJ_…`. */
export function prettyLine(r: LogRecord, color: boolean): string {
  const paint = (code: string, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const time = r.timestamp.slice(11, 23);
  // An empty agent name (automatic dispatch) is noise to a reader; JSON lines keep it.
  const extras = Object.entries(r.fields)
    .filter(([, v]) => v !== '')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const level = paint(COLORS[r.level], r.level.padEnd(8));
  if (!extras) return `${paint('90', time)} ${level} ${r.message}`;
  return `${paint('90', time)} ${level} ${r.message.padEnd(MESSAGE_COLUMN)} ${paint('90', extras)}`;
}

/** Colour only for a terminal, unless NO_COLOR / FORCE_COLOR say otherwise (no-color.org). */
export function colorWanted(env: NodeJS.ProcessEnv, isTTY: boolean | undefined): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  return isTTY === true;
}

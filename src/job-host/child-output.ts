/**
 * What a job process prints, relayed by its host. tinypool pipes a child's stdout and stderr
 * straight into ours; the host takes those pipes over so that third-party JSON logs become our
 * records: `@livekit/rtc-node` logs with its own pino instance (`"name":"lk-rtc"`, at debug level
 * unless NODE_ENV=production), which would otherwise print raw JSON into `agent dev`'s coloured
 * output. Its lines go through our logger, at the level the user chose, tagged `source: 'lk-rtc'`
 * with the job's fields; every other line is passed through unchanged.
 */
import type { ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { LogFields, Logger } from '../log/logger.ts';

/** pino's numeric levels, onto ours. */
function levelOf(n: unknown): 'debug' | 'info' | 'warn' | 'error' {
  if (typeof n !== 'number' || n < 30) return 'debug';
  if (n < 40) return 'info';
  if (n < 50) return 'warn';
  return 'error';
}

const PINO_HOUSEKEEPING = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'v']);

/** A line from a pino logger we know, as a record; `undefined` for anything else. */
export function thirdPartyRecord(
  line: string,
): { level: 'debug' | 'info' | 'warn' | 'error'; message: string; fields: LogFields } | undefined {
  if (!line.startsWith('{') || !line.includes('"lk-rtc"')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!parsed || typeof parsed !== 'object') return undefined;
  const rec = parsed as Record<string, unknown>;
  if (rec.name !== 'lk-rtc') return undefined;
  const fields: LogFields = { source: 'lk-rtc' };
  for (const [k, v] of Object.entries(rec)) if (!PINO_HOUSEKEEPING.has(k)) fields[k] = v;
  return { level: levelOf(rec.level), message: messageOf(rec.msg), fields };
}

/**
 * Takes over `child`'s output pipes from tinypool. The relay removes its own listeners when a
 * pipe ends, which it does once the child is gone (exited or killed), so the last lines a dying
 * process printed are still relayed.
 */
export function relayChildOutput(
  child: ChildProcess,
  log: () => Logger,
  /** Sees each stderr line first; a line it returns `true` for is not relayed. */
  takeStderrLine?: (line: string) => boolean,
): void {
  relay(child.stdout, process.stdout, log);
  relay(child.stderr, process.stderr, log, takeStderrLine);
}

function relay(
  from: Readable | null,
  to: Writable,
  log: () => Logger,
  take?: (line: string) => boolean,
): void {
  if (!from) return;
  from.unpipe(to);
  let pending = '';
  const onLine = (line: string) => {
    if (take?.(line)) return;
    const rec = thirdPartyRecord(line);
    if (rec) log()[rec.level](rec.message, rec.fields);
    else to.write(`${line}\n`);
  };
  const onData = (chunk: Buffer | string) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  };
  const onEnd = () => {
    from.off('data', onData);
    from.off('end', onEnd);
    from.off('close', onEnd);
    if (pending) onLine(pending);
    pending = '';
  };
  from.on('data', onData);
  from.on('end', onEnd);
  from.on('close', onEnd);
}

/** pino's `msg` is a string; anything else is shown as JSON rather than `[object Object]`. */
function messageOf(msg: unknown): string {
  if (msg === undefined || msg === null) return '';
  return typeof msg === 'string' ? msg : JSON.stringify(msg);
}

/**
 * The public logging configuration: level, format, a user sink, a user's own loglevel logger
 * or method factory — and that the framework never touches loglevel's root logger.
 */
import loglevel from 'loglevel';
import { afterEach, describe, expect, it } from 'vitest';
import { configureLogging, createLogger, getLogLevel, type LogRecord } from '../../src/index.ts';
import { prettyLine } from '../../src/log/format.ts';
import { registerSecret } from '../../src/log/logger.ts';

afterEach(() =>
  configureLogging({
    level: 'INFO',
    format: 'pretty',
    sink: null,
    logger: null,
    methodFactory: null,
  }),
);

describe('configureLogging', () => {
  it('sends structured, redacted records to a sink, filtered by level', () => {
    const records: LogRecord[] = [];
    configureLogging({ level: 'warning', sink: (r) => records.push(r) });
    expect(getLogLevel()).toBe('WARNING');
    const log = createLogger({ agentName: 'a' }).child({ workerId: () => 'AW_late' });
    log.info('dropped');
    log.warn('kept', { token: 'abc', note: 'x eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl y' });
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      level: 'WARNING',
      message: 'kept',
      fields: { agentName: 'a', workerId: 'AW_late', token: '[redacted]', note: 'x [redacted] y' },
    });
  });

  it('late-bound fields that are undefined are left out', () => {
    const records: LogRecord[] = [];
    configureLogging({ sink: (r) => records.push(r) });
    createLogger({ workerId: () => undefined }).info('before registration');
    expect(records[0]?.fields).toEqual({});
  });

  it('scrubs registered secrets wherever they appear', () => {
    const records: LogRecord[] = [];
    configureLogging({ sink: (r) => records.push(r) });
    registerSecret('hunter2-secret-value');
    createLogger().info('url ws://x?s=hunter2-secret-value', {
      nested: { v: 'hunter2-secret-value' },
    });
    expect(JSON.stringify(records)).not.toContain('hunter2-secret-value');
  });

  it("prints through the user's own loglevel logger, leaving its level alone", () => {
    const mine = loglevel.getLogger('my-app');
    mine.setLevel('trace');
    const lines: unknown[] = [];
    const original = mine.methodFactory;
    mine.methodFactory = () => (msg: unknown) => lines.push(msg);
    mine.rebuild();
    configureLogging({ logger: mine, format: 'json' });
    createLogger().info('hello', { a: 1 });
    expect(JSON.parse(String(lines[0]))).toMatchObject({ level: 'INFO', message: 'hello', a: 1 });
    expect(mine.getLevel()).toBe(mine.levels.TRACE);
    mine.methodFactory = original;
    mine.rebuild();
  });

  it("accepts a method factory for the framework's logger and never touches the root logger", () => {
    const rootFactory = loglevel.methodFactory;
    const rootLevel = loglevel.getLevel();
    const seen: string[] = [];
    configureLogging({
      methodFactory: (method) => (msg: unknown) => seen.push(`${method}:${String(msg)}`),
      format: 'json',
      level: 'debug',
    });
    createLogger().debug('dbg');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/^debug:\{.*"message":"dbg"/);
    expect(loglevel.methodFactory).toBe(rootFactory);
    expect(loglevel.getLevel()).toBe(rootLevel);
  });

  it('rejects an unknown level', () => {
    expect(() => configureLogging({ level: 'LOUD' })).toThrow(/unknown log level "LOUD"/);
  });
});

describe('pretty lines', () => {
  it('are aligned, coloured only when asked, and skip the empty agent name', () => {
    const r: LogRecord = {
      timestamp: '2026-01-01T12:00:01.234Z',
      level: 'INFO',
      message: 'job launched',
      fields: { agentName: '', jobId: 'AJ_1' },
    };
    expect(prettyLine(r, false)).toBe(
      `12:00:01.234 INFO     ${'job launched'.padEnd(36)} jobId=AJ_1`,
    );
    expect(prettyLine(r, true)).toContain('\x1b[36mINFO');
  });
});

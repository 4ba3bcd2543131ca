import { describe, expect, it } from 'vitest';
import { thirdPartyRecord } from '../../src/job-host/child-output.ts';

describe('job process output relay', () => {
  it("turns rtc-node's pino lines into records at the matching level", () => {
    const line = JSON.stringify({
      level: 20,
      time: 1,
      pid: 7,
      hostname: 'h',
      name: 'lk-rtc',
      msg: 'Connect callback received',
      room: 'r1',
    });
    expect(thirdPartyRecord(line)).toEqual({
      level: 'debug',
      message: 'Connect callback received',
      fields: { source: 'lk-rtc', room: 'r1' },
    });
    expect(thirdPartyRecord(JSON.stringify({ level: 30, name: 'lk-rtc', msg: 'x' }))?.level).toBe(
      'info',
    );
    expect(thirdPartyRecord(JSON.stringify({ level: 40, name: 'lk-rtc', msg: 'x' }))?.level).toBe(
      'warn',
    );
    expect(thirdPartyRecord(JSON.stringify({ level: 60, name: 'lk-rtc', msg: 'x' }))?.level).toBe(
      'error',
    );
  });

  it('passes every other line through untouched', () => {
    expect(thirdPartyRecord('hello from the user')).toBeUndefined();
    expect(thirdPartyRecord('{"level":30,"name":"someone-else","msg":"lk-rtc"}')).toBeUndefined();
    expect(thirdPartyRecord('{"name":"lk-rtc", broken')).toBeUndefined();
  });
});

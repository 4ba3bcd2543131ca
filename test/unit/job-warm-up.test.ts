import { describe, expect, it } from 'vitest';
import { JobProcess } from '../../src/job-process/process.ts';
import { warmJobRuntime } from '../../src/job-process/warm-up.ts';

describe('job process warm-up', () => {
  it("rehearses a job's start, starts rtc-node's native runtime and its FFI messages before any job arrives", () => {
    const before = (globalThis as { _ffiClientInstance?: unknown })._ffiClientInstance;
    expect(warmJobRuntime(new JobProcess(1))).toEqual({
      context: true,
      performance: true,
      nativeRuntime: true,
      ffiMessages: true,
    });
    // rtc-node keeps its one FFI client on globalThis: the room a job connects later uses it.
    const after = (globalThis as { _ffiClientInstance?: unknown })._ffiClientInstance;
    expect(after).toBeDefined();
    if (before) expect(after).toBe(before);
  });
});

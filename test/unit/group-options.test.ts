/** The process-wide policy of a `WorkerGroup`: defaults and validation naming the option. */
import { describe, expect, it } from 'vitest';
import { InvalidOptionError, WorkerGroup, WorkerGroupOptions } from '../../src/index.ts';

function invalid(fn: () => unknown): InvalidOptionError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidOptionError);
    return err as InvalidOptionError;
  }
  throw new Error('expected an InvalidOptionError');
}

describe('WorkerGroupOptions', () => {
  it('has no job cap, a 0.7 machine threshold and the health server on 0.0.0.0:8081 by default', () => {
    expect(new WorkerGroupOptions()).toMatchObject({
      maxJobs: Infinity,
      loadThreshold: 0.7,
      loadFnc: undefined,
      host: '0.0.0.0',
      port: 8081,
    });
  });

  it('honours Infinity and an explicit 0', () => {
    expect(new WorkerGroupOptions({ loadThreshold: Infinity, port: 0 })).toMatchObject({
      loadThreshold: Infinity,
      port: 0,
    });
    expect(new WorkerGroupOptions({ loadThreshold: 0 }).loadThreshold).toBe(0);
  });

  it.each([
    ['group.maxJobs', { maxJobs: 0 }],
    ['group.maxJobs', { maxJobs: 1.5 }],
    ['group.loadThreshold', { loadThreshold: 1.2 }],
    ['group.loadThreshold', { loadThreshold: Number.NaN }],
    ['group.loadFnc', { loadFnc: 0.5 as never }],
    ['group.port', { port: 70_000 }],
    ['group.host', { host: 8 as never }],
  ])('rejects an invalid %s with an error naming it', (option, init) => {
    expect(invalid(() => new WorkerGroupOptions(init)).option).toBe(option);
  });

  it('needs at least one agent', () => {
    expect(invalid(() => new WorkerGroup([])).option).toBe('agents');
  });
});
